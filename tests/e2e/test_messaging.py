"""Messaging end to end: send, idempotency, the governor, the host's failures, inbound messages,
delivery acks, disconnect and status refresh, through the gateway, the simulator and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import Gateway, Simulator, as_role
from tests.e2e.conftest import FAST_LEASE_S, SLOW_HOST_MS, FastLinked
from tests.e2e.flows import assert_error, connected_user, rows_of, started_user
from tests.waiting import wait_until

TO = "5511987654321"


def send(
    gateway: Gateway, token: str, body: dict[str, Any] | None = None, key: str | None = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    payload = body if body is not None else {"phone": TO, "message": "Olá!"}
    return gateway.call("POST", "send-message", token, json=payload, headers=headers)


def message_row(database: str, message_id: str) -> dict[str, Any]:
    with psycopg.connect(database) as conn:
        cursor = conn.execute("select * from whatsapp_messages where id = %s", (message_id,))
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


# --- sending ---------------------------------------------------------------------------------


def test_a_sent_message_is_stored_sent_then_read_after_the_hosts_acks(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, name = connected_user(gateway, simulator, "send")
    answer = send(
        gateway, token, {"phone": "+55 (11) 98765-4321", "message": "Olá!", "contactName": "João"}
    )
    assert answer.status_code == 200, answer.text
    message = answer.json()["message"]
    assert set(message) == {
        "id",
        "status",
        "to",
        "wpp_message_id",
        "created_at",
        "send_at",
        "template",
        "media",
        "body",
        "group",
        "reply_to",
        "edited_at",
        "deleted_at",
    }
    assert message["send_at"] is None and message["template"] is None and message["media"] is None
    assert message["body"] == "Olá!" and message["group"] is None and message["reply_to"] is None
    assert message["status"] == "sent" and message["to"] == TO
    assert message["wpp_message_id"].startswith(f"true_{TO}@c.us_")
    outbox = simulator.outbox(name)
    assert [m["id"] for m in outbox] == [message["wpp_message_id"]]
    row = wait_until(lambda: message_row(database, message["id"]), lambda r: r["status"] == "read")
    assert row["status"] == "read" and row["body"] == "Olá!" and row["contact_name"] == "João"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "12345", "message": "x"}, 422, "invalid_phone"),
        ({"phone": "55 11 9876x4321", "message": "x"}, 422, "invalid_phone"),
        ({"phone": TO, "message": ""}, 400, "invalid_request"),
        ({"phone": TO}, 400, "invalid_request"),
        ({"message": "x"}, 400, "invalid_request"),
        ({"phone": TO, "message": "x" * 4097}, 422, "message_too_long"),
        ({"phone": TO, "message": "x", "isGroup": True}, 400, "invalid_request"),
        ({"phone": TO, "message": "x", "contactName": 7}, 400, "invalid_request"),
    ],
)
def test_bad_sends_are_refused_and_nothing_is_sent(
    gateway: Gateway, simulator: Simulator, body: dict[str, Any], status: int, code: str
) -> None:
    _, token, name = connected_user(gateway, simulator, "badsend")
    assert_error(send(gateway, token, body), status, code)
    assert simulator.outbox(name) == []


def test_oversized_and_non_json_bodies(gateway: Gateway, simulator: Simulator) -> None:
    _, token, _ = connected_user(gateway, simulator, "bigsend")
    headers = {"content-type": "application/json"}
    # The body may be as big as a function URL takes (a file inline); a text is limited by itself.
    long_text = json.dumps({"phone": TO, "message": "x" * (65 * 1024)})
    assert_error(
        gateway.call("POST", "send-message", token, data=long_text, headers=headers),
        422,
        "message_too_long",
    )
    over_lambda = json.dumps({"phone": TO, "message": "x" * (6 * 1024 * 1024)})
    answer = gateway.call("POST", "send-message", token, data=over_lambda, headers=headers)
    assert answer.status_code == 413
    assert_error(
        gateway.call("POST", "send-message", token, data="nope", headers=headers),
        400,
        "invalid_json",
    )
    assert_error(gateway.call("POST", "send-message", token), 400, "invalid_json")


def test_a_session_that_is_not_connected_is_refused_before_the_host(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user = gateway.new_user("nosession")
    token = gateway.token_for(user)
    assert_error(send(gateway, token), 409, "session_not_connected")
    pairing = gateway.call("POST", "start-session", token).json()["session"]
    assert_error(send(gateway, token), 409, "session_not_connected")
    assert simulator.outbox(pairing["name"]) == []
    assert rows_of(database, user.id, "outbound") == []


def test_an_unknown_number_is_not_taken_at_the_hosts_word_until_its_lease_ends(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """The host's 400 "does not exist" may come with the message sent (its lookup failed):
    unknown until an ack or the end of the lease (test_messaging_real_host, row 5)."""
    user, token, name = connected_user(gateway, simulator, "unknownto")
    assert_error(
        send(gateway, token, {"phone": "5511900000000", "message": "x"}), 502, "host_error"
    )
    [row] = rows_of(database, user.id, "outbound")
    assert (row["status"], row["error_code"]) == ("queued", "unknown_recipient")
    assert simulator.outbox(name) == []


def test_the_hosts_disconnected_answer_repairs_the_stored_status(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, session = started_user(gateway, "stale")
    with psycopg.connect(database, autocommit=True) as conn:  # the row says connected; the host not
        conn.execute(
            "update whatsapp_sessions set status = 'connected' where id = %s", (session["id"],)
        )
    assert_error(send(gateway, token), 409, "session_not_connected")
    now = gateway.call("GET", "status", token).json()["session"]
    assert now["status"] == "disconnected"
    [row] = rows_of(database, user.id, "outbound")
    assert row["status"] == "failed" and row["error_code"] == "session_not_connected"


# --- idempotency ----------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_result_without_sending_again(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "idem")
    key = str(uuid.uuid4())
    first = send(gateway, token, key=key)
    second = send(gateway, token, key=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["message"]["id"] == first.json()["message"]["id"]
    assert second.json()["message"]["wpp_message_id"] == first.json()["message"]["wpp_message_id"]
    assert len(simulator.outbox(name)) == 1


def test_the_same_key_with_another_body_is_a_conflict(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "idemconflict")
    key = str(uuid.uuid4())
    assert send(gateway, token, key=key).status_code == 200
    other = send(gateway, token, {"phone": TO, "message": "something else"}, key=key)
    assert_error(other, 409, "idempotency_conflict")
    assert len(simulator.outbox(name)) == 1


def test_keys_are_per_user(gateway: Gateway, simulator: Simulator) -> None:
    _, alice, alice_session = connected_user(gateway, simulator, "keyalice")
    _, bob, bob_session = connected_user(gateway, simulator, "keybob")
    key = str(uuid.uuid4())
    assert send(gateway, alice, key=key).status_code == 200
    assert send(gateway, bob, {"phone": TO, "message": "other"}, key=key).status_code == 200
    assert len(simulator.outbox(alice_session)) == len(simulator.outbox(bob_session)) == 1


def test_concurrent_requests_with_one_key_send_once(gateway: Gateway, simulator: Simulator) -> None:
    _, token, name = connected_user(gateway, simulator, "concurrent")
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: send(gateway, token, key=key), range(16)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    ids = {a.json()["message"]["id"] for a in answers}
    assert len(ids) == 1
    # Later answers replay the stored row, which the host's acks may have moved on.
    assert {a.json()["message"]["status"] for a in answers} <= {
        "queued",
        "sent",
        "delivered",
        "read",
    }
    assert len({a.json()["message"]["wpp_message_id"] for a in answers} - {None}) == 1
    assert len(simulator.outbox(name)) == 1


def test_a_bad_idempotency_key_is_refused(gateway: Gateway, simulator: Simulator) -> None:
    _, token, name = connected_user(gateway, simulator, "badkey")
    assert_error(send(gateway, token, key="x" * 256), 400, "invalid_request")
    assert simulator.outbox(name) == []


# --- the governor ---------------------------------------------------------------------------


def test_the_governor_limits_a_burst_with_retry_after(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "burst")
    answers = [send(gateway, token, {"phone": TO, "message": f"n{i}"}) for i in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert_error(answers[10], 429, "rate_limited")
    assert int(answers[10].headers["Retry-After"]) >= 1
    assert len(simulator.outbox(name)) == 10
    replay_key = str(uuid.uuid4())
    assert_error(send(gateway, token, key=replay_key), 429, "rate_limited")


# --- the host failing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "send_state", "retry_within_s"),
    [
        # The host answers an error: nothing was sent, a retry sends at once.
        ({"error_rate": 1.0}, "retryable", 0.0),
        # The host hangs up mid-request: it may have sent. No ack ever comes for it; once the
        # lease is over, a retry sends it.
        ({"down": True, "routes": ["send-message"]}, "unknown", FAST_LEASE_S + 4),
    ],
    ids=["failing", "hanging-up"],
)
def test_a_host_error_and_a_retry_that_sends_once(
    fast_gateway: Gateway,
    fast_linked: FastLinked,
    simulator: Simulator,
    database: str,
    faults: dict[str, Any],
    send_state: str,
    retry_within_s: float,
) -> None:
    user, token, name, key = fast_linked
    with simulator.faulty(**faults):
        assert_error(send(fast_gateway, token, key=key), 502, "host_error")
    [row] = rows_of(database, user.id, "outbound")
    assert row["send_state"] == send_state and simulator.outbox(name) == []
    retried = wait_until(
        lambda: send(fast_gateway, token, key=key),
        lambda a: a.json()["message"]["status"] == "sent",
        retry_within_s,
    )
    assert retried.status_code == 200 and retried.json()["message"]["status"] == "sent"
    assert len(simulator.outbox(name)) == 1
    assert send(fast_gateway, token, key=key).json()["message"]["id"] == str(row["id"])
    assert len(simulator.outbox(name)) == 1


def test_a_slow_host_is_a_timeout_and_the_late_ack_completes_the_send(
    fast_gateway: Gateway, fast_linked: FastLinked, simulator: Simulator, database: str
) -> None:
    user, token, name, key = fast_linked
    with simulator.faulty(latency_ms=SLOW_HOST_MS, routes=["send-message"]):
        assert_error(send(fast_gateway, token, key=key), 504, "host_timeout")
        in_flight = send(fast_gateway, token, key=key)  # within the lease: no second send
    assert in_flight.status_code == 200 and in_flight.json()["message"]["status"] == "queued"
    [row] = rows_of(database, user.id, "outbound")
    settled = wait_until(
        lambda: message_row(database, row["id"]),
        lambda r: r["wpp_message_id"] is not None,
        SLOW_HOST_MS / 1000 + 5,
    )
    assert settled["wpp_message_id"] == simulator.outbox(name)[0]["id"]
    done = send(fast_gateway, token, key=key)
    assert done.status_code == 200 and done.json()["message"]["wpp_message_id"]
    assert len(simulator.outbox(name)) == 1


# --- inbound messages and acks --------------------------------------------------------------


def test_incoming_messages_are_stored_once_even_when_delivered_twice(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "inbound")
    # One report a message (no ciphertext first): the test counts the deliveries.
    with simulator.configured(delivery_mode="shuffle+duplicate", ciphertext_first=False):
        for i in range(3):
            simulator.control(
                "POST",
                f"{name}/incoming",
                {"from": "5511912340000", "body": f"oi {i}", "notifyName": "Ana"},
            )
        rows = wait_until(lambda: rows_of(database, user.id, "inbound"), lambda r: len(r) >= 3)
        deliveries = wait_until(
            lambda: [
                result
                for e in simulator.control("GET", f"{name}/events").json()["events"]
                if e["event"] == "onmessage"
                for result in e["results"]
            ],
            lambda results: len(results) >= 6,
        )
    assert sorted(r["body"] for r in rows) == ["oi 0", "oi 1", "oi 2"]
    assert all(r["phone"] == "5511912340000" and r["status"] == "received" for r in rows)
    assert all(r["contact_name"] == "Ana" and r["origin"] == "client" for r in rows)
    assert deliveries.count("200") == 6  # each event delivered twice, each stored once
    assert len(rows_of(database, user.id, "inbound")) == 3


def test_group_messages_are_kept_and_status_messages_ignored_by_default(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "groups")
    simulator.control(
        "POST", f"{name}/incoming", {"from": "5511912340000", "body": "g", "group": True}
    )
    simulator.control("POST", f"{name}/incoming", {"from": "status@broadcast", "body": "s"})
    simulator.control("POST", f"{name}/incoming", {"from": "5511912340001", "body": "direct"})
    simulator.control("POST", f"{name}/incoming", {"from": "5511912340001", "body": "again"})

    def kept() -> list[tuple[str, bool]]:
        rows = rows_of(database, user.id, "inbound")
        return sorted((r["body"], r["group_id"] is not None) for r in rows)

    expected = [("again", False), ("direct", False), ("g", True)]
    assert wait_until(kept, lambda rows: rows == expected)
    assert wait_until(lambda: simulator.delivered(name))
    assert kept() == expected


def test_messages_from_the_owners_own_number_are_kept_apart(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "owner")
    simulator.control("POST", f"{name}/incoming", {"from": "5511912340002", "body": "client"})
    wait_until(lambda: rows_of(database, user.id, "inbound"), lambda r: len(r) == 1)
    own = simulator.state(name)["wid"].split("@")[0]
    simulator.control("POST", f"{name}/incoming", {"from": own, "body": "note to self"})
    # Each first reported undecrypted, then with its text.
    origins = wait_until(
        lambda: {r["body"]: r["origin"] for r in rows_of(database, user.id, "inbound")},
        lambda found: "[ciphertext]" not in found and len(found) == 2,
    )
    assert origins == {"client": "client", "note to self": "owner"}


def test_acks_shuffled_and_duplicated_end_at_read(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, _ = connected_user(gateway, simulator, "acks")
    with simulator.configured(
        delivery_mode="shuffle+duplicate", ack_received_ms=50, ack_read_ms=50
    ):
        ids = [
            send(gateway, token, {"phone": TO, "message": f"m{i}"}).json()["message"]["id"]
            for i in range(4)
        ]
        rows = wait_until(
            lambda: [message_row(database, i) for i in ids],
            lambda rs: all(r["status"] == "read" for r in rs),
            5,
        )
    assert [r["status"] for r in rows] == ["read"] * 4


def test_acks_never_move_a_message_backwards(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, name = connected_user(gateway, simulator, "backwards")
    with simulator.configured(auto_ack=False):
        message = send(gateway, token).json()["message"]

    def delivered_acks() -> list[str]:
        events = simulator.control("GET", f"{name}/events").json()["events"]
        return [r for e in events if e["event"] == "onack" for r in e["results"]]

    # One at a time: the host posts its webhooks without waiting, so acks sent together may
    # arrive in any order, and a failure that lands first is final.
    for count, ack in enumerate((3, 2, 1, -1), start=1):
        simulator.control("POST", f"{name}/ack", {"id": message["wpp_message_id"], "ack": ack})
        wait_until(delivered_acks, lambda r, n=count: len(r) == n)
    assert delivered_acks() == ["200"] * 4
    assert message_row(database, message["id"])["status"] == "read"


# --- disconnect and refresh -----------------------------------------------------------------


def test_disconnect_logs_out_on_the_host_and_is_idempotent(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "logout")
    first = gateway.call("POST", "disconnect", token)
    assert first.status_code == 200, first.text
    assert first.json()["session"]["status"] == "disconnected"
    assert simulator.state(name).get("status") in (None, "CLOSED")
    again = gateway.call("POST", "disconnect", token)
    assert again.status_code == 200 and again.json()["session"]["status"] == "disconnected"
    assert_error(send(gateway, token), 409, "session_not_connected")


def test_disconnect_while_pairing_leaves_the_pairing_browser_to_its_autoclose(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, session = started_user(gateway, "closepairing")
    answer = gateway.call("POST", "disconnect", token)
    assert answer.status_code == 200
    assert answer.json()["session"]["status"] == "disconnected"
    assert answer.json()["session"]["qr"] is None
    # close-session would fail on a real host and leave the browser running all the same.
    assert simulator.state(session["name"]).get("status") == "QRCODE"


def test_disconnect_without_a_session(gateway: Gateway) -> None:
    token = gateway.token_for(gateway.new_user("nothing"))
    answer = gateway.call("POST", "disconnect", token)
    assert answer.status_code == 200 and answer.json() == {"session": None}


def test_status_refresh_repairs_a_row_that_disagrees_with_the_host(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, _ = connected_user(gateway, simulator, "refresh")
    with simulator.configured(delivery_mode="normal"):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                "update whatsapp_sessions set status = 'disconnected' where user_id = %s",
                (user.id,),
            )
        plain = gateway.call("GET", "status", token).json()["session"]
        assert plain["status"] == "disconnected"
        fresh = gateway.call("GET", "status", token, params={"refresh": "true"})
    assert fresh.status_code == 200 and fresh.json()["session"]["status"] == "connected"
    assert_error(
        gateway.call("GET", "status", token, params={"refresh": "maybe"}), 400, "invalid_request"
    )


# --- isolation ------------------------------------------------------------------------------


def test_a_user_cannot_send_from_or_read_another_users_session(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    alice, alice_token, alice_session = connected_user(gateway, simulator, "isoalice")
    bob = gateway.new_user("isobob")
    bob_token = gateway.token_for(bob)
    sent = send(gateway, alice_token).json()["message"]
    assert_error(send(gateway, bob_token), 409, "session_not_connected")
    assert len(simulator.outbox(alice_session)) == 1
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", bob.id)
        assert conn.execute("select id from whatsapp_messages").fetchall() == []
        as_role(conn, "authenticated", alice.id)
        mine = conn.execute("select id from whatsapp_messages").fetchall()
        assert [str(r[0]) for r in mine] == [sent["id"]]
