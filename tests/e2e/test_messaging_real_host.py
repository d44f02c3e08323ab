"""Messaging against what wppconnect-server 2.10.4 really does (docs/host-conformance.md):
senders named by a privacy id (LID), WhatsApp's canonical ids in answers and acks, an
existence check that throws, acks from -7 to 5 and for incoming messages, events of no use,
and a phone that logged out while its webhook was lost. The simulator behaves so by default;
options a test names are the ones it is about."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import Gateway, Simulator
from tests.e2e.conftest import FAST_LEASE_S, SLOW_HOST_MS, FastLinked
from tests.e2e.flows import (
    assert_error,
    closed_on_the_host,
    connected_user,
    rows_of,
    wait_for_status,
)
from tests.faults.outbox import assert_outbox_consistent
from tests.waiting import wait_until

LID = "123456789012345"
LID_PHONE = "5511912345001"


def send(
    gateway: Gateway, token: str, phone: str, message: str = "Olá!", key: str | None = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"phone": phone, "message": message}
    return gateway.call("POST", "send-message", token, json=body, headers=headers)


def logged_events(database: str, session_name: str) -> list[str]:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select e.event from whatsapp_events e join whatsapp_sessions s"
            " on s.id = e.whatsapp_session_id where s.session_id = %s order by e.seq",
            (session_name,),
        ).fetchall()
    return [event for (event,) in found]


def lease_over(database: str, message_id: Any) -> bool:
    """Whether the send lease of ``message_id`` has run out by now (the send may have held
    its row again right before its host call, so the lease can end a little after
    ``FAST_LEASE_S`` from the row's creation)."""
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select now() > coalesce(lease_until, created_at + make_interval(secs => %s))"
            " from whatsapp_messages where id = %s",
            (FAST_LEASE_S, message_id),
        ).fetchone()
    return bool(found and found[0])


def delivered(simulator: Simulator, name: str, event: str) -> list[str]:
    """The answers the gateway gave to the host's deliveries of ``event``."""
    events = simulator.control("GET", f"{name}/events").json()["events"]
    return [r for e in events if e["event"] == event for r in e["results"]]


# --- 3. senders named by their LID ------------------------------------------------------------


def test_a_lid_sender_is_stored_with_the_lid_and_the_number_the_host_maps_it_to(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "lidsender")
    with simulator.configured(lid_senders=True, lid_numbers={LID_PHONE: LID}):
        for text in ("first", "second"):
            simulator.control("POST", f"{name}/incoming", {"from": LID_PHONE, "body": text})
        stored = wait_until(
            lambda: rows_of(database, user.id, "inbound"),
            lambda rs: len(rs) == 2 and all(r["phone"] for r in rs),
        )
    assert {(r["phone"], r["contact_lid"]) for r in stored} == {(LID_PHONE, LID)}
    with psycopg.connect(database) as conn:
        cached = conn.execute(
            "select c.lid, c.phone from whatsapp_contacts c join whatsapp_sessions s"
            " on s.id = c.whatsapp_session_id where s.session_id = %s",
            (name,),
        ).fetchall()
    assert cached == [(LID, LID_PHONE)]


def test_a_lid_sender_the_host_cannot_map_now_is_stored_with_the_lid_and_no_phone(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "lidfail")
    with (
        # One onmessage (no ciphertext report first): the test counts its deliveries.
        simulator.configured(
            lid_senders=True, lid_numbers={LID_PHONE: LID}, ciphertext_first=False
        ),
        simulator.faulty(error_rate=1.0, routes=["pn-lid"]),
    ):
        simulator.control("POST", f"{name}/incoming", {"from": LID_PHONE, "body": "oi"})
        [row] = wait_until(lambda: rows_of(database, user.id, "inbound"), lambda rs: len(rs) == 1)
        assert wait_until(lambda: delivered(simulator, name, "onmessage"), bool) == ["200"]
    assert row["phone"] is None and row["contact_lid"] == LID and row["body"] == "oi"


def test_a_reply_to_a_contact_known_only_by_lid_goes_to_the_lid(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "lidreply")
    answer = send(gateway, token, f"{LID}@lid", "reply")
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"]["to"] == f"{LID}@lid"
    assert [(m["to"], m["body"]) for m in simulator.outbox(name)] == [(f"{LID}@lid", "reply")]
    [row] = rows_of(database, user.id, "outbound")
    assert row["phone"] is None and row["contact_lid"] == LID and row["status"] != "failed"


def test_a_fifteen_digit_number_is_refused_because_the_host_would_send_it_to_a_lid(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "fifteen")
    answer = send(gateway, token, "+55 11 91234 567890")
    assert_error(answer, 422, "invalid_phone")
    assert "14 digits" in answer.json()["error"]["message"]
    assert simulator.outbox(name) == [] and rows_of(database, user.id, "outbound") == []


# --- 5. "number does not exist" is not proof --------------------------------------------------


@pytest.mark.parametrize("host_sends_anyway", [True, False])
def test_a_does_not_exist_answer_is_unknown_until_an_ack_or_the_lease_decides(
    fast_gateway: Gateway,
    fast_linked: FastLinked,
    simulator: Simulator,
    database: str,
    host_sends_anyway: bool,
) -> None:
    user, token, name, key = fast_linked
    with simulator.configured(number_check_fail_next=1, answer_after_error=host_sends_anyway):
        first = send(fast_gateway, token, "5511987650006", "maybe", key)
    assert_error(first, 502, "host_error")
    assert "may have sent" in first.json()["error"]["message"]
    if host_sends_anyway:
        # 2.10.4 sent it all the same: its ack completes the row, and a retry replays it.
        [sent] = wait_until(lambda: simulator.outbox(name))
        wait_until(
            lambda: rows_of(database, user.id, "outbound")[0]["wpp_message_id"],
            lambda wpp_id: wpp_id == sent["id"],
        )
        done = send(fast_gateway, token, "5511987650006", "maybe", key)
        assert done.status_code == 200 and done.json()["message"]["wpp_message_id"] == sent["id"]
        assert [m["body"] for m in simulator.outbox(name)] == ["maybe"]
    else:
        # A fixed server stopped at its 400: no ack comes, and the lease decides.
        [row] = rows_of(database, user.id, "outbound")
        wait_until(lambda: lease_over(database, row["id"]), within_s=FAST_LEASE_S + 2)
        assert_error(
            send(fast_gateway, token, "5511987650006", "maybe", key), 422, "unknown_recipient"
        )
        assert simulator.outbox(name) == []
    assert_outbox_consistent(database, user.id, simulator, name)


def test_a_number_with_no_account_is_unknown_recipient_once_its_lease_ends_without_an_ack(
    fast_gateway: Gateway, fast_linked: FastLinked, simulator: Simulator, database: str
) -> None:
    user, token, name, key = fast_linked
    assert_error(send(fast_gateway, token, "5511900000000", "x", key), 502, "host_error")
    [row] = rows_of(database, user.id, "outbound")
    assert (row["status"], row["error_code"]) == ("queued", "unknown_recipient")
    wait_until(lambda: lease_over(database, row["id"]), within_s=FAST_LEASE_S + 2)
    assert_error(send(fast_gateway, token, "5511900000000", "x", key), 422, "unknown_recipient")
    assert_error(send(fast_gateway, token, "5511900000000", "x", key), 422, "unknown_recipient")
    [row] = rows_of(database, user.id, "outbound")
    assert row["status"] == "failed" and row["error_code"] == "unknown_recipient"
    assert simulator.outbox(name) == []


# --- 6, 12. canonical ids ---------------------------------------------------------------------


def test_a_late_ack_naming_the_canonical_number_completes_a_timed_out_send(
    fast_gateway: Gateway, fast_linked: FastLinked, simulator: Simulator, database: str
) -> None:
    user, token, name, key = fast_linked
    with simulator.configured(canonical_br_ninth_digit=True):
        with simulator.faulty(latency_ms=SLOW_HOST_MS, routes=["send-message"]):
            assert_error(
                send(fast_gateway, token, "5531998877665", "late", key), 504, "host_timeout"
            )
        [row] = rows_of(database, user.id, "outbound")
        settled = wait_until(
            lambda: rows_of(database, user.id, "outbound")[0],
            lambda r: r["wpp_message_id"] is not None,
            SLOW_HOST_MS / 1000 + 5,
        )
        assert settled["id"] == row["id"] and settled["phone"] == "553198877665"
        wait_until(lambda: simulator.settled(name), bool, 5)
        # After the lease, a retry replays the send instead of sending it again.
        wait_until(lambda: lease_over(database, row["id"]), within_s=FAST_LEASE_S + 2)
        again = send(fast_gateway, token, "5531998877665", "late", key)
    assert again.status_code == 200 and again.json()["message"]["id"] == str(row["id"])
    assert [m["to"] for m in simulator.outbox(name)] == ["553198877665@c.us"]
    assert_outbox_consistent(database, user.id, simulator, name)


def test_messages_to_and_from_one_contact_share_the_canonical_number(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "onecontact")
    with simulator.configured(canonical_br_ninth_digit=True):
        answer = send(gateway, token, "5531998877665", "hello")
        assert answer.status_code == 200 and answer.json()["message"]["to"] == "553198877665"
        simulator.control("POST", f"{name}/incoming", {"from": "5531998877665", "body": "hi"})
        [inbound] = wait_until(
            lambda: rows_of(database, user.id, "inbound"), lambda rs: len(rs) == 1
        )
    [outbound] = rows_of(database, user.id, "outbound")
    assert outbound["phone"] == inbound["phone"] == "553198877665"


# --- 10. acks from -7 to 5, and acks of incoming messages -------------------------------------


def test_negative_acks_fail_a_message_with_a_readable_code_and_0_and_5_change_nothing(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "ackcodes")
    with simulator.configured(auto_ack=False):
        message = send(gateway, token, "5511987654321").json()["message"]
        for ack in (0, 5, -2):
            simulator.control("POST", f"{name}/ack", {"id": message["wpp_message_id"], "ack": ack})
        assert wait_until(lambda: delivered(simulator, name, "onack"), lambda r: len(r) == 3)
    [row] = wait_until(
        lambda: rows_of(database, user.id, "outbound"), lambda rs: rs[0]["status"] == "failed"
    )
    assert row["failure_code"] == "expired"


def test_acks_of_incoming_messages_and_unused_events_are_answered_but_not_logged(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "unused")
    with simulator.configured(presence_events=True, incoming_acks=True, read_message=True):
        incoming = simulator.control(
            "POST", f"{name}/incoming", {"from": "5511912340009", "body": "oi"}
        ).json()["message"]
        wait_until(lambda: rows_of(database, user.id, "inbound"), lambda rs: len(rs) == 1)
        assert wait_until(
            lambda: delivered(simulator, name, "onpresencechanged"), lambda r: len(r) == 2
        ) == ["200", "200"]
        assert wait_until(lambda: delivered(simulator, name, "onack"), bool) == ["200"]
        simulator.control("POST", f"{name}/ack", {"id": incoming["id"], "ack": 4})
        assert wait_until(lambda: delivered(simulator, name, "onack"), lambda r: len(r) == 2)
    logged = logged_events(database, name)
    assert "onmessage" in logged
    assert "onpresencechanged" not in logged and "onack" not in logged


# --- 11. send only through a connected host session -------------------------------------------


def test_a_send_after_an_unseen_logout_is_refused_without_calling_send_message(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "unseenlogout")
    lost = ["status@broadcast", "status-find", "logoutsession", "closesession"]
    with simulator.configured(webhook_ignore=lost, answer_after_error=True):
        simulator.control("POST", f"{name}/unlink")
        wait_until(lambda: simulator.state(name).get("live"), lambda live: not live)
        assert wait_for_status(gateway, token, "connected", 0)["status"] == "connected"
        assert_error(send(gateway, token, "5511987654321"), 409, "session_not_connected")
    host = simulator.control("GET", "host").json()
    assert [e for e in host["events"] if e.get("session") == name] == []
    assert simulator.outbox(name) == []
    assert gateway.call("GET", "status", token).json()["session"]["status"] == "disconnected"
    [row] = rows_of(database, user.id, "outbound")
    assert row["status"] == "failed" and row["error_code"] == "session_not_connected"


# --- 9. events without a session key ----------------------------------------------------------


def test_events_without_a_session_key_are_applied_through_the_urls_proof(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "nosessionkey")
    # Someone else closes the session on the host (the gateway never closes one): the host's
    # entry becomes a bare placeholder without a session key. The phone then removes the
    # linked device, so the next start pairs anew.
    closed_on_the_host(gateway, simulator, name)
    assert simulator.control("POST", f"{name}/unlink").json()["outcome"] == "login_removed"
    wait_until(
        lambda: gateway.call("GET", "status", token).json()["session"]["status"],
        lambda status: status != "connected",
        5,
    )

    assert gateway.call("POST", "start-session", token).status_code == 200
    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "QRCODE", 5)
    simulator.control("POST", f"{name}/scan")
    assert wait_for_status(gateway, token, "connected", 5)["status"] == "connected"
    simulator.control("POST", f"{name}/incoming", {"from": "5511912340010", "body": "oi"})
    # Reported first undecrypted, then with its text: the text stays.
    wait_until(
        lambda: rows_of(database, user.id, "inbound"),
        lambda rs: len(rs) == 1 and rs[0]["body"] == "oi",
    )
    keyless = wait_until(
        lambda: [
            e
            for e in simulator.control("GET", f"{name}/events").json()["events"]
            if e["sent"] and "session" not in e["body"]
        ],
        lambda found: all(e["results"] for e in found),
        message="every delivery without a session key answered",
    )
    assert {"qrcode", "status-find"} <= {e["event"] for e in keyless}  # the new pairing
    assert all(e["results"] == ["200"] for e in keyless), keyless  # each one accepted
