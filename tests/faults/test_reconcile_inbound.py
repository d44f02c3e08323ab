"""Reconcile recovers what the host's other doors let in, as the real host reports it: a message
first stored undecrypted, notices that are not messages, a get-messages that answers 401 for a
chat it cannot read, a backlog bigger than one pass, and the messages the owner wrote on the
phone. (Files of every kind: tests/faults/test_reconcile.py.)

Webhooks are lost with the simulator's ``webhook_drop_rate`` (posted nowhere). A pass runs
over every live session of the test database, so the tests look at their own users' rows.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import psycopg
import pytest

from local.gateway import handlers_in_process
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user, rows_of, sent_text
from tests.faults.test_reconcile import all_delivered_or_lost, run_pass
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def reconcile(handlers: dict[str, Handler]) -> Handler:
    return handlers["reconcile"]


def incoming(simulator: Simulator, name: str, sender: str, body: str, **extra: Any) -> str:
    answer = simulator.control("POST", f"{name}/incoming", {"from": sender, "body": body, **extra})
    message_id: str = answer.json()["id"]
    return message_id


def test_a_message_stored_as_ciphertext_gets_its_text_from_one_pass(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    """The webhook stored the first report ([ciphertext]); the decrypted one was lost."""
    user, _, name = connected_user(gateway, simulator, "cipher-lost")
    with simulator.configured(ciphertext_first=True, ciphertext_ms=1500):
        wpp_id = incoming(simulator, name, "5511944440001", "o texto")
        wait_until(
            lambda: [r["body"] for r in rows_of(database, user.id, "inbound")],
            lambda bodies: bodies == ["[ciphertext]"],
            10.0,
        )
        with simulator.configured(webhook_drop_rate=1.0):
            wait_until(
                lambda: [
                    m["type"]
                    for m in simulator.control("GET", f"{name}/inbox").json()["inbox"]
                    if m["id"] == wpp_id
                ],
                lambda types: types == ["chat"],
                10.0,
            )
            wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    run_pass(reconcile)

    [row] = rows_of(database, user.id, "inbound")
    assert (row["wpp_message_id"], row["body"], row["message_type"]) == (wpp_id, "o texto", "chat")


def test_notices_among_a_chats_messages_are_not_stored(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "notices")
    with simulator.configured(chat_notices=True, ciphertext_first=False, webhook_drop_rate=1.0):
        wanted = [
            incoming(simulator, name, "5511944440002", "um"),
            incoming(simulator, name, "5511944440003", "no grupo", group=True),
        ]
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    with handlers_in_process({**gateway.env, "INBOUND_GROUPS": "true"}) as with_groups:
        run_pass(with_groups["reconcile"])

    rows = rows_of(database, user.id, "inbound")
    assert sorted(r["wpp_message_id"] for r in rows) == sorted(wanted)
    assert {r["message_type"] for r in rows} == {"chat"}


def test_a_chat_the_host_cannot_read_is_skipped_and_the_rest_of_the_session_put_right(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    """get-messages answers 401 when its controller throws: not a refused token. The chat is
    skipped and the pass goes on; the acks of its messages come by message-by-id."""
    user, token, name = connected_user(gateway, simulator, "unreadable")
    with simulator.configured(auto_ack=False, ciphertext_first=False):
        for i in range(3):
            sent_text(gateway, token, "5511944440004", f"m{i}")
        with simulator.configured(webhook_drop_rate=1.0):
            for sent in simulator.outbox(name):
                simulator.control("POST", f"{name}/ack", {"id": sent["id"], "ack": 3})
            wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)
    token_before = stored_host_token(database, name)

    with simulator.faulty(error_rate=1.0, error_mode="throw", routes=["get-messages"]):
        report = run_pass(reconcile)

    assert report["errors"] == {}
    assert [r["status"] for r in rows_of(database, user.id, "outbound")] == ["read"] * 3
    assert stored_host_token(database, name) == token_before  # no new token was minted


def test_a_file_sent_to_a_number_the_host_renames_has_its_acks_put_right(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    """A file send's answer names no recipient, so the row keeps the number as typed; the
    host's chat has WhatsApp's canonical id (a Brazilian mobile of area 31 without its ninth
    digit). Reconcile reads the chat by the id the host has, and nothing fails."""
    user, token, name = connected_user(gateway, simulator, "renamed")
    pdf = b"%PDF-1.7\n" + os.urandom(2000)
    with simulator.configured(auto_ack=False, canonical_br_ninth_digit=True):
        answer = gateway.call(
            "POST",
            "send-message",
            token,
            json={
                "phone": "5531987654321",
                "message": "segue",
                "media": {"data": base64.b64encode(pdf).decode(), "mime_type": "application/pdf"},
            },
        )
        assert answer.status_code == 200, answer.text
        [sent] = simulator.outbox(name)
        assert sent["to"] == "553187654321@c.us"
        with simulator.configured(webhook_drop_rate=1.0):
            simulator.control("POST", f"{name}/ack", {"id": sent["id"], "ack": 3})
            incoming(simulator, name, "5511944440005", "outro contato")
            wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    report = run_pass(reconcile)

    assert "host_error" not in report["errors"]
    [row] = rows_of(database, user.id, "outbound")
    assert row["status"] == "read"
    assert [r["body"] for r in rows_of(database, user.id, "inbound")] == ["outro contato"]


def test_a_backlog_bigger_than_a_pass_is_kept_chat_by_chat_and_finished_by_the_next_passes(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "backlog")
    senders = [f"55119444410{i:02d}" for i in range(8)]
    with simulator.configured(webhook_drop_rate=1.0, ciphertext_first=False):
        wanted = [incoming(simulator, name, s, f"{s} {n}") for s in senders for n in range(2)]
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    stored_after = []
    with handlers_in_process({**gateway.env, "RECONCILE_CHATS_PER_SESSION": "3"}) as bounded:
        for _ in range(3):
            run_pass(bounded["reconcile"])
            stored_after.append(len(rows_of(database, user.id, "inbound")))

    assert stored_after == [6, 12, 16]
    rows = rows_of(database, user.id, "inbound")
    assert sorted(r["wpp_message_id"] for r in rows) == sorted(wanted)


def test_messages_the_owner_wrote_on_the_phone_are_stored_as_the_webhook_stores_them(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "phone")
    with simulator.configured(ciphertext_first=False, auto_ack=False):
        sent_text(gateway, token, "5511944440006", "do app")
        with simulator.configured(webhook_drop_rate=1.0, on_self_message=True):
            incoming(simulator, name, "5511944440006", "oi")
            written = simulator.control(
                "POST", f"{name}/from-phone", {"to": "5511944440006", "body": "do celular"}
            ).json()["id"]
            wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    run_pass(reconcile)

    outbound = {r["body"]: r for r in rows_of(database, user.id, "outbound")}
    assert set(outbound) == {"do app", "do celular"}
    phone = outbound["do celular"]
    assert (phone["wpp_message_id"], phone["origin"], phone["status"]) == (
        written,
        "owner",
        "sent",
    )
    assert phone["phone"] == "5511944440006"
    assert outbound["do app"]["origin"] is None  # the gateway's own send is not doubled


def stored_host_token(database: str, name: str) -> str | None:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select k.host_token from whatsapp_session_secrets k"
            " join whatsapp_sessions s on s.id = k.session_id where s.session_id = %s",
            (name,),
        ).fetchone()
    return row[0] if row else None


def test_a_session_read_past_its_deadline_keeps_what_it_read_and_the_next_pass_goes_on(
    gateway: Gateway, simulator: Simulator, handlers: dict[str, Handler], database: str
) -> None:
    """A host slow to give each chat: the pass stops reading the session at its deadline
    (here 3 s, what the invocation has left), keeps the chats it read, and the next passes
    read the rest, each message once."""
    from wa_gateway import services

    user, _, name = connected_user(gateway, simulator, "deadline")
    senders = [f"55119444420{i:02d}" for i in range(8)]
    with simulator.configured(webhook_drop_rate=1.0, ciphertext_first=False):
        wanted = [incoming(simulator, name, s, f"{s} {n}") for s in senders for n in range(2)]
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)

    reconciler = services.reconciler()
    with simulator.faulty(latency_ms=2000, routes=["get-messages"]):
        reconciler.run(remaining_s=lambda: 33.0)  # 3 s above the pass's reserve
    first = len(rows_of(database, user.id, "inbound"))

    # Two chats at most (2 s each) in its 3 s; at least the one it started with.
    assert 0 < first < len(wanted), first
    for _ in range(3):
        run_pass(handlers["reconcile"])
    rows = rows_of(database, user.id, "inbound")
    assert sorted(r["wpp_message_id"] for r in rows) == sorted(wanted)
