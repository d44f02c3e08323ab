"""The database round trips each function's operation takes, counted by the store's transport
(``runtime.store().round_trips``) around one in-process call of the handler. Exact counts: a
round trip added on any of these paths fails here (``make bench`` measures what they cost)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from local.function_url import LambdaContext, build_event
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user
from tests.host_events import onmessage
from wa_gateway import runtime
from wa_gateway.sessions.accounts import session_name_for


def event(
    method: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_headers = [("host", "localhost"), *(headers or {}).items()]
    if token:
        all_headers.append(("authorization", f"Bearer {token}"))
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        all_headers.append(("content-type", "application/json"))
    return build_event(method=method, path="/", raw_query="", headers=all_headers, body=raw)


def round_trips(handler: Handler, function: str, request: dict[str, Any]) -> tuple[int, Any]:
    """(database round trips the call took, its JSON answer); the call must succeed."""
    before = runtime.store().round_trips
    result = handler(request, LambdaContext(function, request["requestContext"]["requestId"]))
    trips = runtime.store().round_trips - before
    assert result["statusCode"] == 200, result
    return trips, json.loads(result["body"])


def webhook(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    return event("POST", body=body, headers={"x-verify": gateway.local_secrets.verify_token})


def test_status_reads_in_one_round_trip(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "trips-status")
    trips, body = round_trips(handlers["status"], "status", event("GET", token=token))
    assert body["session"]["status"] == "connected"
    assert trips == 1

    stranger = gateway.token_for(gateway.new_user("trips-nobody"))
    trips, body = round_trips(handlers["status"], "status", event("GET", token=stranger))
    assert body["session"] is None
    assert trips == 1


def test_start_session_takes_two_round_trips_and_one_when_idempotent(
    handlers: dict[str, Handler], gateway: Gateway
) -> None:
    token = gateway.token_for(gateway.new_user("trips-start"))
    start = handlers["start-session"]
    # Begin the start (one call decides and locks), then store the host's answer.
    trips, first = round_trips(start, "start-session", event("POST", token=token, body={}))
    assert first["session"]["status"] == "pairing"
    assert trips == 2
    # Pairing with a QR that has not expired: the same QR, decided by one call.
    trips, again = round_trips(start, "start-session", event("POST", token=token, body={}))
    assert again["session"]["qr"] == first["session"]["qr"]
    assert trips == 1


def test_start_session_for_a_linked_session_takes_one_round_trip(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "trips-linked-start")
    trips, body = round_trips(
        handlers["start-session"], "start-session", event("POST", token=token, body={})
    )
    assert body["session"]["status"] == "connected"
    assert trips == 1


def test_send_message_takes_two_round_trips(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "trips-send")
    request = event(
        "POST",
        token=token,
        body={"phone": "+55 11 98765-4321", "message": "Round trips"},
        headers={"idempotency-key": str(uuid.uuid4())},
    )
    # The outbox row and the governor in one call; the host's answer in the other.
    trips, body = round_trips(handlers["send-message"], "send-message", request)
    assert body["message"]["status"] == "sent"
    assert trips == 2
    # A replay of the same key is answered from the outbox by one call, without the host.
    trips, again = round_trips(handlers["send-message"], "send-message", request)
    assert again["message"]["id"] == body["message"]["id"]
    assert trips == 1


@pytest.fixture(scope="module")
def linked(gateway: Gateway, simulator: Simulator) -> tuple[str, str]:
    """A linked session for the webhook tests: (access token, session name)."""
    _, token, name = connected_user(gateway, simulator, "trips-webhook")
    return token, name


def test_each_webhook_event_takes_one_round_trip(
    handlers: dict[str, Handler], gateway: Gateway, linked: tuple[str, str]
) -> None:
    token, name = linked
    qr_webhook = handlers["qr-webhook"]

    pairing_token = gateway.token_for(gateway.new_user("trips-qr"))
    _, started = round_trips(
        handlers["start-session"], "start-session", event("POST", token=pairing_token, body={})
    )
    pairing = started["session"]["name"]
    qrcode = {"event": "qrcode", "session": pairing, "urlcode": f"2@{uuid.uuid4().hex},k,i,a"}
    assert round_trips(qr_webhook, "qr-webhook", webhook(gateway, qrcode))[0] == 1

    status_find = {"event": "status-find", "session": name, "status": "inChat"}
    assert round_trips(qr_webhook, "qr-webhook", webhook(gateway, status_find))[0] == 1

    inbound = onmessage(name, f"false_5511987654321@c.us_{uuid.uuid4().hex[:20].upper()}")
    assert round_trips(qr_webhook, "qr-webhook", webhook(gateway, inbound))[0] == 1

    _, sent = round_trips(
        handlers["send-message"],
        "send-message",
        event("POST", token=token, body={"phone": "5511987654321", "message": "Ack me"}),
    )
    wpp_id = sent["message"]["wpp_message_id"]
    ack = {
        "event": "onack",
        "session": name,
        "id": {"fromMe": True, "remote": "5511987654321@c.us", "_serialized": wpp_id},
        "ack": 3,
        "body": "Ack me",
        "to": "5511987654321@c.us",
    }
    assert round_trips(qr_webhook, "qr-webhook", webhook(gateway, ack))[0] == 1

    # An event for a session nobody has still costs its one call, and no more.
    unknown = {
        "event": "status-find",
        "session": session_name_for(str(uuid.uuid4())),
        "status": "inChat",
    }
    assert round_trips(qr_webhook, "qr-webhook", webhook(gateway, unknown))[0] == 1


def test_disconnect_takes_two_round_trips(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "trips-disconnect")
    disconnect = handlers["disconnect"]
    # The session and its host token in one call, the logout on the host, then the new state.
    trips, body = round_trips(disconnect, "disconnect", event("POST", token=token))
    assert body["session"]["status"] == "disconnected"
    assert trips == 2
    # Again: harmless, and no dearer.
    trips, body = round_trips(disconnect, "disconnect", event("POST", token=token))
    assert body["session"]["status"] == "disconnected"
    assert trips == 2


def test_a_purge_with_little_to_do_takes_one_round_trip(handlers: dict[str, Handler]) -> None:
    """The pool and the first batch of every task come in one call; each host of the pool
    then has its health recorded (one more each), and only full batches ask for more."""
    before = runtime.store().round_trips
    report = handlers["purge"]({"source": "schedule", "job": "purge"}, LambdaContext("purge", "r1"))
    trips = runtime.store().round_trips - before
    assert report["complete"] is True and report["batches"] == 1
    assert trips == 1 + report["hosts_checked"]


def test_a_refresh_reconciles_its_session_in_two_round_trips(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator
) -> None:
    """Its lease and what to ask the host (one), then all that was found, applied (one)."""
    _, token, _ = connected_user(gateway, simulator, "trips-refresh")
    headers = [("host", "localhost"), ("authorization", f"Bearer {token}")]
    request = build_event(
        method="GET", path="/", raw_query="refresh=true", headers=headers, body=None
    )
    trips, body = round_trips(handlers["status"], "status", request)
    assert body["session"]["status"] == "connected"
    assert trips == 2


def test_a_reconcile_pass_takes_one_round_trip_per_session_and_one_per_batch(
    handlers: dict[str, Handler], linked: tuple[str, str]
) -> None:
    """And one per chat whose findings it writes (what a chat held is kept as it is read)."""
    before = runtime.store().round_trips
    report = handlers["reconcile"](
        {"source": "schedule", "job": "reconcile"},
        LambdaContext("reconcile", "r1", timeout_ms=240_000),
    )
    trips = runtime.store().round_trips - before
    assert report["checked"] >= 1 and not report["errors"] and not report["deferred"]
    batches = report["checked"] // 50 + 1
    assert trips == batches + report["checked"] + report["chats_applied"]
