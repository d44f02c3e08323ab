"""API keys and event delivery end to end: keys made and revoked through the api-keys function
and used on the other functions; incoming messages delivered to a test endpoint, signed (checked
with the Standard Webhooks library), retried, in order, kept as failed, replayed; a dead worker's
lease; a slow endpoint beside a fast one. Through the gateway, the simulator and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from local.endpoint_receiver import EndpointReceiver, Received
from tests.conftest import DELIVERY_RETRY_FOR_S as RETRY_FOR_S
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.waiting import wait_until
from wa_gateway.delivery.store import DeliveryCalls
from wa_gateway.store import PostgresTransport


def make_key(gateway: Gateway, token: str, scopes: list[str], name: str = "backend") -> Any:
    answer = gateway.call("POST", "api-keys", token, json={"name": name, "scopes": scopes})
    assert answer.status_code == 201, answer.text
    return answer.json()["key"]


def add_endpoint(gateway: Gateway, token: str, url: str, events: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    answer = gateway.call("POST", "api-keys", token, path="/endpoints", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["endpoint"]


def incoming(simulator: Simulator, session: str, body: str, phone: str = "5511912345678") -> None:
    """A message arrives, and its webhook is answered (the host posts its webhooks without
    waiting: two messages' events may otherwise reach the gateway the other way round). It
    comes decrypted at once: a contact's first message, reported undecrypted first, is
    announced only once its text is stored (``test_keys_and_delivery_sql.py``), and under
    load that second report can come after the next message; these tests are about the
    endpoints' order alone."""
    with simulator.configured(ciphertext_first=False):
        simulator.control("POST", f"{session}/incoming", {"from": phone, "body": body})
    wait_until(lambda: simulator.delivered(session), within_s=5)


def bodies(received: list[Received]) -> list[str]:
    return [r.json["data"]["body"] for r in received if r.json["type"] == "message.received"]


def deliveries(gateway: Gateway, token: str, endpoint_id: str, **params: str) -> list[Any]:
    answer = gateway.call(
        "GET", "api-keys", token, path=f"/endpoints/{endpoint_id}/deliveries", params=params
    )
    assert answer.status_code == 200, answer.text
    result: list[Any] = answer.json()["deliveries"]
    return result


# --- keys ------------------------------------------------------------------------------------


def test_a_send_key_sends_and_cannot_read_and_a_revoked_key_is_refused_at_once(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, session = connected_user(gateway, simulator, "keysend")
    key = make_key(gateway, token, ["send"])
    secret = key["secret"]
    assert secret.startswith("wak_") and len(secret) == 47 and key["prefix"] == secret[:10]
    assert set(key) == {"id", "name", "prefix", "scopes", "created_at", "last_used_at", "secret"}

    for n in range(3):  # the first learns the key's owner, the rest ride on their own call
        sent = gateway.call(
            "POST", "send-message", secret, json={"phone": "5511987654321", "message": f"k{n}"}
        )
        assert sent.status_code == 200, sent.text
    assert [m["body"] for m in simulator.outbox(session)][-3:] == ["k0", "k1", "k2"]
    with psycopg.connect(database) as conn:
        owners = conn.execute(
            "select distinct user_id::text from whatsapp_messages where body like 'k_'"
            " and whatsapp_session_id = (select id from whatsapp_sessions where session_id = %s)",
            (session,),
        ).fetchall()
    assert owners == [(user.id,)]
    assert_error(gateway.call("GET", "status", secret), 403, "insufficient_scope")
    assert_error(gateway.call("POST", "start-session", secret), 403, "insufficient_scope")
    assert_error(gateway.call("GET", "api-keys", secret), 403, "insufficient_scope")

    listed = gateway.call("GET", "api-keys", token).json()["keys"]
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    revoked = gateway.call("DELETE", "api-keys", token, path=f"/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["key"]["id"] == key["id"]
    assert_error(
        gateway.call("POST", "send-message", secret, json={"phone": "5511987654321",
                                                          "message": "after"}),
        401,
        "invalid_token",
    )  # fmt: skip
    assert "after" not in [m["body"] for m in simulator.outbox(session)]
    assert_error(gateway.call("DELETE", "api-keys", token, path=f"/{key['id']}"), 404, "not_found")


def test_a_read_key_reads_its_owners_session_under_rls(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, session = connected_user(gateway, simulator, "keyread")
    key = make_key(gateway, token, ["read", "sessions"])["secret"]
    for _ in range(2):
        status = gateway.call("GET", "status", key)
        assert status.status_code == 200, status.text
        assert status.json()["session"]["name"] == session
    other = make_key(gateway, gateway.token_for(gateway.new_user("keyother")), ["read"])["secret"]
    assert gateway.call("GET", "status", other).json()["session"] is None
    assert_error(
        gateway.call("POST", "send-message", key, json={"phone": "5511987654321", "message": "x"}),
        403,
        "insufficient_scope",
    )


# --- delivery --------------------------------------------------------------------------------


def test_an_incoming_message_reaches_the_endpoint_signed(
    delivering: Gateway, simulator: Simulator, receiver: EndpointReceiver
) -> None:
    _, token, session = connected_user(delivering, simulator, "hook")
    endpoint = add_endpoint(delivering, token, f"{receiver.url}/signed", ["message.received"])
    assert endpoint["secret"].startswith("whsec_")
    sent_at = time.time()
    incoming(simulator, session, "olá, backend")
    [got] = wait_until(lambda: receiver.received("/signed"), within_s=5)
    assert got.at - sent_at < 3
    event = Webhook(endpoint["secret"]).verify(got.body, dict(got.headers))
    assert event["type"] == "message.received"
    data = event["data"]
    assert data["body"] == "olá, backend" and data["phone"] == "5511912345678"
    assert data["session"] == session and data["direction"] == "inbound"
    assert got.headers["webhook-id"].startswith("msg_")
    with pytest.raises(Exception):  # noqa: B017 - the library's own error type
        Webhook(add_endpoint(delivering, token, f"{receiver.url}/x")["secret"]).verify(
            got.body, dict(got.headers)
        )
    [row] = wait_until(lambda: deliveries(delivering, token, endpoint["id"], status="delivered"))
    assert row["attempts"] == 1 and row["last_status"] == 200 and row["type"] == "message.received"


def test_an_endpoint_failing_three_times_gets_the_event_again_then_the_rest_in_order(
    delivering: Gateway, simulator: Simulator, receiver: EndpointReceiver
) -> None:
    _, token, session = connected_user(delivering, simulator, "retry")
    add_endpoint(delivering, token, f"{receiver.url}/retry", ["message.received"])
    receiver.script("/retry", [500, 500, 500])
    incoming(simulator, session, "first")
    wait_until(lambda: len(receiver.received("/retry")) >= 1, within_s=5)
    for text in ("second", "third"):
        incoming(simulator, session, text)
    wait_until(lambda: len(receiver.received("/retry")) >= 6, within_s=RETRY_FOR_S + 5)
    got = receiver.received("/retry")
    assert bodies(got) == ["first"] * 4 + ["second", "third"]
    assert [r.status for r in got] == [500, 500, 500, 200, 200, 200]
    assert len({r.headers["webhook-id"] for r in got[:4]}) == 1


def test_an_endpoint_down_longer_keeps_failed_deliveries_that_replay_delivers_in_order(
    delivering: Gateway, simulator: Simulator, receiver: EndpointReceiver
) -> None:
    _, token, session = connected_user(delivering, simulator, "down")
    endpoint = add_endpoint(delivering, token, f"{receiver.url}/down", ["message.received"])
    receiver.script("/down", [503] * 1000)
    since = datetime.now(UTC).isoformat()
    for text in ("a", "b", "c"):
        incoming(simulator, session, text)
    failed = wait_until(
        lambda: deliveries(delivering, token, endpoint["id"], status="failed"),
        lambda rows: len(rows) == 3,
        within_s=RETRY_FOR_S + 8,
    )
    head = failed[-1]  # newest first
    assert head["attempts"] >= 2 and head["last_status"] == 503 and head["next_attempt_at"] is None
    listed = delivering.call("GET", "api-keys", token, path="/endpoints").json()["endpoints"]
    assert [(e["failed"], e["pending"]) for e in listed] == [(3, 0)]

    receiver.script("/down", [])  # up again
    with receiver._lock:
        receiver._scripts["/down"].clear()
    before = len(receiver.received("/down"))
    replay = delivering.call(
        "POST", "api-keys", token, path=f"/endpoints/{endpoint['id']}/replay", json={"since": since}
    )
    assert replay.status_code == 200 and replay.json() == {"replayed": 3}
    wait_until(lambda: len(receiver.received("/down")) >= before + 3, within_s=5)
    assert bodies(receiver.received("/down")[before:]) == ["a", "b", "c"]
    assert len(deliveries(delivering, token, endpoint["id"], status="delivered")) == 3


def test_a_worker_that_dies_mid_delivery_leaves_its_lease_and_the_next_delivers(
    delivering: Gateway, simulator: Simulator, receiver: EndpointReceiver
) -> None:
    database = delivering.dsn
    _, token, session = connected_user(delivering, simulator, "dead")
    endpoint = add_endpoint(delivering, token, f"{receiver.url}/dead", ["message.received"])
    incoming(simulator, session, "before")
    wait_until(lambda: receiver.received("/dead"), within_s=5)
    transport = PostgresTransport(database)
    try:
        # A worker claims the endpoint as the next message comes in, then dies (its Lambda
        # timed out, say) before posting or recording anything. The gateway's own workers (one
        # kicked by an event, or its pass each minute) may claim it first: then their lease is
        # waited out and the endpoint claimed again.
        with psycopg.connect(database, autocommit=True) as conn:

            def claim_when_free() -> list[Any]:
                wait_until(lambda: conn.execute(
                    "select lease_until is null from whatsapp_endpoints where id = %s",
                    (endpoint["id"],)).fetchone()[0])  # fmt: skip
                conn.execute(
                    "update whatsapp_endpoints set next_due_at = now() where id = %s",
                    (endpoint["id"],),
                )
                return DeliveryCalls(transport).claim(limit=10, batch=5, lease_s=3)

            [claim] = wait_until(claim_when_free, within_s=20)
        assert claim.endpoint_id == endpoint["id"] and claim.deliveries == ()
    finally:
        transport.close()
    leased_until = time.time() + 3
    incoming(simulator, session, "after the death")
    time.sleep(1)
    assert bodies(receiver.received("/dead")) == ["before"]  # the lease holds it
    wait_until(
        lambda: bodies(receiver.received("/dead")),
        lambda b: b == ["before", "after the death"],
        within_s=10,
    )
    assert receiver.received("/dead")[-1].at >= leased_until - 0.5


def test_a_slow_endpoint_does_not_slow_another_users(
    delivering: Gateway, simulator: Simulator, receiver: EndpointReceiver
) -> None:
    _, slow_token, slow_session = connected_user(delivering, simulator, "slow")
    _, fast_token, fast_session = connected_user(delivering, simulator, "fast")
    add_endpoint(delivering, slow_token, f"{receiver.url}/slow", ["message.received"])
    add_endpoint(delivering, fast_token, f"{receiver.url}/fast", ["message.received"])
    receiver.delay("/slow", 1.2)  # under the 2 s timeout: slow, not failing
    for n in range(4):
        incoming(simulator, slow_session, f"slow {n}")
    sent_at = []
    for n in range(4):
        sent_at.append(time.time())
        incoming(simulator, fast_session, f"fast {n}")
    wait_until(lambda: len(receiver.received("/fast")) >= 4, within_s=5)
    fast = receiver.received("/fast")
    assert bodies(fast) == [f"fast {n}" for n in range(4)]
    assert max(r.at - at for r, at in zip(fast, sent_at, strict=True)) < 2  # not queued behind
    fast_done = max(r.at for r in fast)
    wait_until(lambda: len(receiver.received("/slow")) >= 4, within_s=15)
    assert bodies(receiver.received("/slow")) == [f"slow {n}" for n in range(4)]
    assert max(r.at for r in receiver.received("/slow")) > fast_done  # it was still at it
