"""The walking skeleton end to end, through the gateway, the simulator and real PostgreSQL:
sign in, start a session, see the QR, scan it, connected; and everything refused on the way."""

from __future__ import annotations

import base64
import json
from typing import Any

import psycopg
import pytest
import requests

from local import devdb
from tests.conftest import Gateway, Simulator, as_role
from tests.e2e.flows import assert_error, started_user, wait_for_status
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.sessions.accounts import session_name_for

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sign_in_token(gateway: Gateway, email: str) -> str:
    answer = gateway.sign_in(email)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_alice_links_her_whatsapp_and_bob_sees_none_of_it(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    # 1. sign in
    signed_in = gateway.sign_in("alice@example.com").json()
    token = signed_in["access_token"]
    alice_id = signed_in["user"]["id"]
    assert signed_in["token_type"] == "bearer" and signed_in["expires_in"] > 0
    assert alice_id == devdb.dev_user_id("alice@example.com")

    # 2. start: pairing, with a QR rendered from the host's raw string
    started = gateway.call("POST", "start-session", token)
    assert started.status_code == 200, started.text
    session = started.json()["session"]
    assert session["name"] == session_name_for(alice_id)
    assert session["status"] == "pairing"
    qr = session["qr"]
    assert qr["raw"].startswith("2@") and qr["expires_at"].endswith("Z")
    assert 50 <= qr["expires_in"] <= 60  # the first QR of an attempt: 60 s
    assert qr["data_url"].startswith("data:image/png;base64,")
    assert base64.b64decode(qr["data_url"].split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert simulator.state(session["name"])["status"] == "QRCODE"

    # starting again while pairing returns the same QR
    again = gateway.call("POST", "start-session", token).json()["session"]
    assert again["qr"]["raw"] == qr["raw"] and again["id"] == session["id"]

    # 3. the phone scans; within a second status says connected
    simulator.control("POST", f"{session['name']}/scan")
    connected = wait_for_status(gateway, token, "connected", within_s=1.0)
    assert connected["status"] == "connected"
    assert connected["qr"] is None

    # a start while connected touches nothing on the host
    calls_before = simulator.state(session["name"])["start_calls"]
    assert calls_before >= 1
    still = gateway.call("POST", "start-session", token).json()["session"]
    assert still["status"] == "connected"
    assert simulator.state(session["name"])["start_calls"] == calls_before

    # 4. bob sees no session, and cannot read alice's rows through the database either
    bob_token = sign_in_token(gateway, "bob@example.com")
    assert gateway.call("GET", "status", bob_token).json() == {"session": None}
    bob_id = devdb.dev_user_id("bob@example.com")
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", bob_id)
        rows = conn.execute("select id from whatsapp_sessions").fetchall()
        mine = conn.execute(
            "select count(*) from whatsapp_sessions where user_id = %s", (alice_id,)
        )
        assert rows == [] and mine.fetchone() == (0,)


def test_the_host_token_is_stored_encrypted(gateway: Gateway, database: str) -> None:
    user = gateway.new_user("crypt")
    token = gateway.token_for(user)
    assert gateway.call("POST", "start-session", token).status_code == 200
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select host_token from whatsapp_session_secrets k join whatsapp_sessions s"
            " on s.id = k.session_id where s.user_id = %s",
            (user.id,),
        ).fetchone()
    assert row is not None
    assert row[0].startswith("v1.") and "$2b$" not in row[0]


def test_a_qr_that_times_out_ends_disconnected_and_a_new_start_gets_a_new_qr(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, first = started_user(gateway, "expire")
    simulator.control("POST", f"{first['name']}/expire")
    gone = wait_for_status(gateway, token, "disconnected")
    assert gone["status"] == "disconnected" and gone["qr"] is None
    # The host answers a restart with CLOSED (and its old QR) at once, as wppconnect-server
    # does when the session object exists; the new QR follows by webhook.
    second = gateway.call("POST", "start-session", token).json()["session"]
    assert second["status"] in ("starting", "pairing")
    fresh = wait_for_status(gateway, token, "pairing", with_qr=True)
    assert fresh["status"] == "pairing" and fresh["qr"]["raw"] != first["qr"]["raw"]


def test_pairing_by_code(gateway: Gateway, simulator: Simulator) -> None:
    user = gateway.new_user("code")
    token = gateway.token_for(user)
    answer = gateway.call(
        "POST", "start-session", token, json={"method": "code", "phone": "+55 11 98888-7777"}
    )
    assert answer.status_code == 200, answer.text
    session = answer.json()["session"]
    assert session["status"] == "pairing" and session["qr"] is None
    assert session["pairing_code"] and len(session["pairing_code"]) >= 8
    simulator.control("POST", f"{session['name']}/scan")
    assert wait_for_status(gateway, token, "connected")["status"] == "connected"


@pytest.mark.parametrize("name", ["start-session", "status", "qr-webhook"])
def test_every_function_answers_health_without_auth(gateway: Gateway, name: str) -> None:
    answer = gateway.call("GET", name, path="/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["function"] == name and body["version"]


# --- refused requests ------------------------------------------------------------------------


def test_no_token_and_a_bad_token_are_refused(gateway: Gateway) -> None:
    assert_error(gateway.call("POST", "start-session"), 401, "missing_token")
    assert_error(gateway.call("GET", "status", "not.a.jwt"), 401, "invalid_token")
    user = gateway.new_user("expired")
    expired = gateway.token_for(user, lifetime_s=-120)
    assert_error(gateway.call("GET", "status", expired), 401, "token_expired")


def test_bad_bodies_are_refused_before_anything_is_written(gateway: Gateway, database: str) -> None:
    user = gateway.new_user("badbody")
    token = gateway.token_for(user)
    headers = {"content-type": "application/json"}
    assert_error(
        gateway.call("POST", "start-session", token, data="{nope", headers=headers),
        400,
        "invalid_json",
    )
    assert_error(
        gateway.call("POST", "start-session", token, data="[1]", headers=headers),
        400,
        "invalid_json",
    )
    assert_error(
        gateway.call("POST", "start-session", token, json={"method": "sms"}), 400, "invalid_request"
    )
    assert_error(
        gateway.call("POST", "start-session", token, json={"method": "code", "phone": "12"}),
        422,
        "invalid_phone",
    )
    assert_error(
        gateway.call("POST", "start-session", token, data="x" * (70 * 1024), headers=headers),
        413,
        "payload_too_large",
    )
    with psycopg.connect(database) as conn:
        count = conn.execute(
            "select count(*) from whatsapp_sessions where user_id = %s", (user.id,)
        ).fetchone()
    assert count == (0,)


def test_unknown_paths_and_methods_are_not_found(gateway: Gateway) -> None:
    user = gateway.new_user("paths")
    token = gateway.token_for(user)
    assert_error(gateway.call("GET", "start-session", token, path="/nope"), 404, "not_found")
    assert_error(gateway.call("DELETE", "status", token), 404, "not_found")


# --- the webhook -----------------------------------------------------------------------------


def post_event(
    gateway: Gateway, body: Any, *, verify: str | None = None, query: str = ""
) -> requests.Response:
    headers = {"content-type": "application/json"}
    if verify is not None:
        headers["x-verify"] = verify
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(
        f"{gateway.fn('qr-webhook')}{query}", data=data, headers=headers, timeout=10
    )


def started_session(gateway: Gateway, label: str) -> tuple[str, dict[str, Any]]:
    _, token, session = started_user(gateway, label)
    return token, session


def test_the_webhook_wants_a_proof(gateway: Gateway) -> None:
    token, session = started_session(gateway, "proof")
    name = session["name"]
    event = {"event": "status-find", "session": name, "status": "inChat"}
    assert_error(post_event(gateway, event), 401, "invalid_verify_token")
    assert_error(post_event(gateway, event, verify="wrong"), 401, "invalid_verify_token")
    other = session_proof(gateway.local_secrets.verify_token, "user_someone_else")
    assert_error(
        post_event(gateway, event, query=f"?session={name}&verify={other}"),
        401,
        "invalid_verify_token",
    )
    assert_error(post_event(gateway, "not json", verify="wrong"), 401, "invalid_verify_token")
    assert gateway.call("GET", "status", token).json()["session"]["status"] == "pairing"


def test_the_webhook_accepts_both_proofs(gateway: Gateway) -> None:
    secret = gateway.local_secrets.verify_token
    token, session = started_session(gateway, "proofs")
    name = session["name"]
    proof = session_proof(secret, name)
    ok = post_event(
        gateway,
        {"event": "status-find", "status": "qrReadSuccess"},  # no session in the body (#1931)
        query=f"?session={name}&verify={proof}",
    )
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    ok = post_event(
        gateway, {"event": "status-find", "session": name, "status": "inChat"}, verify=secret
    )
    assert ok.status_code == 200
    assert gateway.call("GET", "status", token).json()["session"]["status"] == "connected"


def test_the_webhook_refuses_bodies_that_are_not_objects(gateway: Gateway) -> None:
    secret = gateway.local_secrets.verify_token
    assert_error(post_event(gateway, "[1, 2]", verify=secret), 400, "invalid_json")
    assert_error(post_event(gateway, "{broken", verify=secret), 400, "invalid_json")
    assert_error(post_event(gateway, {"session": "x"}, verify=secret), 400, "invalid_request")


def test_the_webhook_acknowledges_events_it_ignores(gateway: Gateway) -> None:
    secret = gateway.local_secrets.verify_token
    for event in (
        {"event": "onpresencechanged", "session": "user_x", "state": "available"},
        {"event": "status-find", "session": "user_unknown", "status": "inChat"},
        {"event": "incomingcall", "session": "../../etc", "peerJid": "x"},
    ):
        answer = post_event(gateway, event, verify=secret)
        assert answer.status_code == 200 and answer.json() == {"ok": True}


def test_a_late_qr_does_not_pull_a_connected_session_back(gateway: Gateway) -> None:
    secret = gateway.local_secrets.verify_token
    token, session = started_session(gateway, "lateqr")
    name = session["name"]
    post_event(
        gateway, {"event": "status-find", "session": name, "status": "inChat"}, verify=secret
    )
    late = {"event": "qrcode", "session": name, "qrcode": "iVBOR", "urlcode": "2@late"}
    for _ in range(2):
        assert post_event(gateway, late, verify=secret).status_code == 200
    now = gateway.call("GET", "status", token).json()["session"]
    assert now["status"] == "connected" and now["qr"] is None


def test_a_late_event_of_an_earlier_attempt_changes_nothing(
    gateway: Gateway, simulator: Simulator
) -> None:
    token, first = started_session(gateway, "attempts")
    name = first["name"]
    # The first attempt's browser ends on the host, so the second start launches a new one
    # with its own webhook URL.
    simulator.control("POST", f"{name}/expire")
    wait_for_status(gateway, token, "disconnected")
    again = gateway.call("POST", "start-session", token).json()["session"]
    assert again["status"] in ("starting", "pairing")
    secret = gateway.local_secrets.verify_token

    def to_attempt(attempt: int, event: dict[str, Any]) -> None:
        proof = session_proof(secret, name, None, attempt)
        query = f"?session={name}&attempt={attempt}&verify={proof}"
        assert post_event(gateway, {**event, "session": name}, query=query).status_code == 200

    def status() -> str:
        return str(gateway.call("GET", "status", token).json()["session"]["status"])

    # What the host still posts to the first attempt's URL after the second began.
    to_attempt(1, {"event": "logoutsession", "message": "logged out", "connected": False})
    to_attempt(1, {"event": "status-find", "status": "browserClose"})
    assert status() in ("starting", "pairing")
    to_attempt(2, {"event": "status-find", "status": "inChat"})
    assert status() == "connected"
    to_attempt(1, {"event": "closesession", "message": "closed", "connected": False})
    assert status() == "connected"
