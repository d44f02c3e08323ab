"""The webhook under attack, through the gateway: no proof, a wrong proof, a proof for another
session, oversized bodies and a flood of events. 401, 400, 413 or 200 as the contract says, and
nothing stored that the caller could not prove it may store."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests

from local.gateway import handlers_in_process
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.security.inprocess import RowCounter, invoke
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.sessions.accounts import session_name_for

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def post(
    gateway: Gateway,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> requests.Response:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return requests.post(
        gateway.fn("qr-webhook"),
        data=data,
        headers={"content-type": "application/json", **(headers or {})},
        params=params,
        timeout=30,
    )


def state(database: str, session: str) -> tuple[Any, ...]:
    """What an event could change about a session: its row, messages and logged events."""
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select s.status, s.qr_code, s.phone_number,"
            " (select count(*) from whatsapp_messages m where m.whatsapp_session_id = s.id),"
            " (select count(*) from whatsapp_events e where e.whatsapp_session_id = s.id)"
            " from whatsapp_sessions s where s.session_id = %s",
            (session,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def damaging(session: str | None) -> list[dict[str, Any]]:
    """Events that would change a linked session if they were applied."""
    named = {"session": session} if session else {}
    return [
        {"event": "logoutsession", **named},
        {"event": "status-find", "status": "browserClose", **named},
        {"event": "qrcode", "urlcode": "2@forged,qr", **named},
        {
            "event": "onmessage",
            "id": f"false_5511912340000@c.us_{uuid.uuid4().hex}",
            "from": "5511912340000@c.us",
            "to": "5511999990000@c.us",
            "body": "forged",
            "type": "chat",
            **named,
        },
    ]


@pytest.fixture(scope="module")
def victim(gateway: Gateway, simulator: Simulator) -> str:
    return connected_user(gateway, simulator, "hooked")[2]


@pytest.fixture(scope="module")
def other(gateway: Gateway, simulator: Simulator) -> str:
    return connected_user(gateway, simulator, "hookother")[2]


def test_events_without_a_valid_proof_are_401_and_change_nothing(
    gateway: Gateway, database: str, victim: str, other: str
) -> None:
    secret = gateway.local_secrets.verify_token
    other_proof = {"session": other, "verify": session_proof(secret, other)}
    unproven: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),
        ({"x-verify": ""}, {}),
        ({"x-verify": secret + "x"}, {}),
        ({"x-verify": secret[:-1]}, {}),
        ({"x-verify": secret.upper() if secret != secret.upper() else secret.lower()}, {}),
        ({}, {"session": victim}),
        ({}, {"session": victim, "verify": ""}),
        ({}, {"session": victim, "verify": "0" * 64}),
        ({}, {"session": victim, "verify": session_proof("another-secret", victim)}),
        ({}, {"session": victim, "verify": other_proof["verify"]}),  # another session's proof
        ({}, {"verify": session_proof(secret, victim)}),  # no session named
        ({"x-verify": secret}, {"host": "not-a-host-id"}),
        ({}, {**other_proof, "host": str(uuid.uuid4())}),  # the proof binds no host
    ]
    before = state(database, victim), state(database, other)
    for headers, params in unproven:
        for body in damaging(victim):
            answer = post(gateway, body, headers=headers, params=params)
            assert_error(answer, 401, "invalid_verify_token")
    # A valid proof for `other` with a body naming the victim: refused, both unchanged.
    for body in damaging(victim):
        assert_error(post(gateway, body, params=other_proof), 401, "invalid_verify_token")
    assert (state(database, victim), state(database, other)) == before


def test_an_unproven_caller_learns_nothing_about_its_body(gateway: Gateway) -> None:
    for body in ("nope", "[1, 2]", "", '{"event": 7}', "\xff"):
        assert_error(post(gateway, body), 401, "invalid_verify_token")
    proven = {"x-verify": gateway.local_secrets.verify_token}
    assert_error(post(gateway, "nope", headers=proven), 400, "invalid_json")
    assert_error(post(gateway, "[1, 2]", headers=proven), 400, "invalid_json")
    assert_error(post(gateway, {"event": 7}, headers=proven), 400, "invalid_request")
    assert_error(post(gateway, {"session": "x"}, headers=proven), 400, "invalid_request")


def test_a_url_proof_applies_to_its_own_session_only(
    gateway: Gateway, database: str, victim: str, other: str
) -> None:
    secret = gateway.local_secrets.verify_token
    proof = {"session": other, "verify": session_proof(secret, other)}
    before_victim = state(database, victim)
    before_other = state(database, other)
    message = damaging(None)[3]  # an incoming message, naming no session in its body
    answer = post(gateway, message, params=proof)
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert state(database, victim) == before_victim
    after_other = state(database, other)
    assert after_other[3] == before_other[3] + 1 and after_other[4] == before_other[4] + 1


def test_oversized_bodies_are_refused_and_big_media_is_kept_as_its_caption(
    gateway: Gateway, database: str, victim: str
) -> None:
    proven = {"x-verify": gateway.local_secrets.verify_token}
    before = state(database, victim)
    huge = {**damaging(victim)[3], "body": "A" * (6 * 1024 * 1024)}
    answer = post(gateway, huge, headers=proven)
    assert answer.status_code == 413  # Lambda's own limit for a function URL request
    assert state(database, victim) == before

    # Within the limit, a media event carrying its file: stored once, as its caption.
    media = {
        **damaging(victim)[3],
        "type": "image",
        "caption": "a photo",
        "body": "/9j/" + "A" * (4 * 1024 * 1024),
    }
    assert post(gateway, media, headers=proven).json() == {"ok": True}
    with psycopg.connect(database) as conn:
        stored = conn.execute(
            "select m.body, length(e.payload::text) from whatsapp_messages m"
            " join whatsapp_events e on e.whatsapp_session_id = m.whatsapp_session_id"
            " where m.wpp_message_id = %s and e.payload ->> 'id' = %s",
            (media["id"], media["id"]),
        ).fetchall()
    assert len(stored) == 1
    body, logged_bytes = stored[0]
    assert body == "a photo" and logged_bytes < 20 * 1024


def test_the_functions_own_limit_answers_in_the_contract(gateway: Gateway) -> None:
    """Past Lambda's limit only an in-process call can reach the function's own check."""
    body = json.dumps({"event": "onmessage", "body": "A" * (6 * 1024 * 1024 + 1)})
    headers = {"content-type": "application/json", "x-verify": gateway.local_secrets.verify_token}
    event = {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/"}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": False,
    }
    with handlers_in_process(gateway.env) as handlers:
        result = invoke(handlers["qr-webhook"], event, "qr-webhook")
    assert result["statusCode"] == 413
    assert json.loads(result["body"])["error"]["code"] == "payload_too_large"
    headers["x-verify"] = "wrong"  # unproven: it learns nothing, not even the size
    with handlers_in_process(gateway.env) as handlers:
        result = invoke(handlers["qr-webhook"], event, "qr-webhook")
    assert result["statusCode"] == 401


def test_a_flood_of_unknown_events_is_answered_and_stores_nothing_new(
    gateway: Gateway, database: str, victim: str
) -> None:
    proven = {"x-verify": gateway.local_secrets.verify_token}
    kinds = [f"made-up-{i}" for i in range(5)]
    flood: list[tuple[dict[str, Any], dict[str, str]]] = []
    for i in range(300):
        kind = kinds[i % len(kinds)]
        flood.append(({"event": kind, "session": victim, "n": 1}, proven))  # 5 distinct events
        stranger = session_name_for(str(uuid.uuid4()))
        flood.append(({"event": kind, "session": stranger}, proven))  # no session
        flood.append(({"event": kind, "session": victim}, {"x-verify": "wrong"}))  # unproven
    rows = RowCounter(database, victim)
    try:
        before = rows()
        session_before = state(database, victim)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda item: post(gateway, item[0], headers=item[1]), flood))
        after = rows()
    finally:
        rows.close()
    assert [a.status_code for a in answers] == [200, 200, 401] * 300
    assert all(a.json() == {"ok": True} for a in answers[0::3])
    # Only the log grows, by each distinct event once; the session itself is as it was.
    assert {k: v for k, v in after.items() if not k.startswith("events")} == {
        k: v for k, v in before.items() if not k.startswith("events")
    }
    assert after[f"events of {victim}"] == before[f"events of {victim}"] + len(kinds)
    assert state(database, victim)[:4] == session_before[:4]
