"""Host events shuffled and duplicated end where an in-order, single delivery ends.

One scenario (start, a refreshed QR, the scan and connect sequence, incoming messages, sends
and their acks, the phone unlinking the device), run once with the simulator delivering its
webhooks in order and once per disorderly mode (``shuffle``, ``duplicate``,
``shuffle+duplicate``). The final state of the session, of every message and of the event log
must be the same. (tests/e2e/test_messaging.py shuffles inbound messages and acks alone.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user, sent_text, started_user, wait_for_status
from tests.waiting import wait_until
from wa_gateway.events.service import is_unused

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CONTACTS = ("5511912340001", "5511912340002")
TO = "5511987654321"
MODES = ("shuffle", "duplicate", "shuffle+duplicate")


def delivered(simulator: Simulator, name: str, copies: int) -> bool:
    """Every event the simulator sent for ``name`` has had all its deliveries answered (the
    decrypted reports of messages first reported as ciphertext included)."""
    events = simulator.control("GET", f"{name}/events").json()["events"]
    return simulator.decrypted(name) and all(
        len(e["results"]) >= copies for e in events if e["sent"]
    )


def settle(simulator: Simulator, name: str, copies: int) -> None:
    assert wait_until(lambda: delivered(simulator, name, copies), bool, 5), "undelivered events"


def scenario(gateway: Gateway, simulator: Simulator, database: str, mode: str) -> dict[str, Any]:
    copies = 2 if "duplicate" in mode else 1
    user, token, session = started_user(gateway, f"order-{mode.replace('+', '-')}")
    name = session["name"]
    simulator.control("POST", f"{name}/refresh-qr")
    simulator.control("POST", f"{name}/scan")  # in the same burst as the refreshed QR
    assert wait_for_status(gateway, token, "connected", 5)["status"] == "connected"
    own_number = (simulator.state(name).get("wid") or "").split("@")[0]
    settle(simulator, name, copies)

    for i, sender in enumerate((*CONTACTS, CONTACTS[0])):
        simulator.control("POST", f"{name}/incoming", {"from": sender, "body": f"in {i}"})
    for i in range(3):
        sent_text(gateway, token, TO, f"out {i}")
    wait_until(lambda: final_state(database, user.id)["messages"], lambda m: len(m) == 6, 5)
    wait_until(
        lambda: final_state(database, user.id)["messages"],
        lambda m: all(s in ("received", "read") for *_, s in m),
        5,
    )
    settle(simulator, name, copies)

    simulator.control("POST", f"{name}/unlink")
    assert wait_for_status(gateway, token, "disconnected", 5)["status"] == "disconnected"
    settle(simulator, name, copies)
    state = final_state(database, user.id)
    events = simulator.control("GET", f"{name}/events").json()["events"]
    sent = [
        e["event"]
        for e in sorted(events, key=lambda e: e["seq"])
        if e["sent"] and not is_unused(e["body"])  # presence, acks of incoming messages...
    ]
    state["distinct events sent"] = len(sent)
    applied = applied_order(database, user.id)
    return state | {"order kept": applied == sent, "own number": own_number}


def applied_order(database: str, user_id: str) -> list[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select event from whatsapp_events where user_id = %s order by seq", (user_id,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """The state without what differs between users by design (their numbers, the order)."""
    own = state["own number"]
    session = tuple("own number" if v and v == own else v for v in state["session"])
    return {k: v for k, v in state.items() if k not in ("order kept", "own number")} | {
        "session": session
    }


def final_state(database: str, user_id: str) -> dict[str, Any]:
    with psycopg.connect(database) as conn:
        session = conn.execute(
            "select status, status_reason, qr_code is null, pairing_code, phone_number"
            " from whatsapp_sessions where user_id = %s",
            (user_id,),
        ).fetchone()
        messages = conn.execute(
            "select direction, phone, body, origin, status from whatsapp_messages"
            " where user_id = %s order by direction, body",
            (user_id,),
        ).fetchall()
        seqs = conn.execute(
            "select seq from whatsapp_events where user_id = %s order by seq", (user_id,)
        ).fetchall()
    return {
        "session": tuple(session or ()),
        "messages": [tuple(m) for m in messages],
        "logged events": len(seqs),
        "seqs contiguous": [s for (s,) in seqs] == list(range(1, len(seqs) + 1)),
    }


@pytest.fixture(scope="module")
def in_order(gateway: Gateway, simulator: Simulator, database: str) -> Iterator[dict[str, Any]]:
    with simulator.configured(delivery_mode="normal", ack_received_ms=50, ack_read_ms=100):
        yield scenario(gateway, simulator, database, "normal")


def test_the_in_order_run_ends_as_the_contract_says(in_order: dict[str, Any]) -> None:
    assert in_order["order kept"]
    status, _, qr_cleared, pairing_code, phone = comparable(in_order)["session"]
    # The linked number goes with the link: the next one may be another phone.
    assert (status, qr_cleared, pairing_code, phone) == ("disconnected", True, None, None)
    assert [m[-1] for m in in_order["messages"]] == ["received"] * 3 + ["read"] * 3
    assert in_order["seqs contiguous"]
    assert in_order["logged events"] == in_order["distinct events sent"]


@pytest.mark.parametrize("mode", MODES)
def test_disorderly_delivery_ends_where_in_order_delivery_ends(
    gateway: Gateway, simulator: Simulator, database: str, in_order: dict[str, Any], mode: str
) -> None:
    with simulator.configured(delivery_mode=mode, ack_received_ms=50, ack_read_ms=100):
        state = scenario(gateway, simulator, database, mode)
    assert comparable(state) == comparable(in_order)
    if "shuffle" in mode:
        assert not state["order kept"], "the events were not shuffled: the test proves nothing"


def test_a_second_link_is_applied_like_the_first(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, name = connected_user(gateway, simulator, "relink")
    assert gateway.call("POST", "disconnect", token).json()["session"]["status"] == "disconnected"
    settle(simulator, name, 1)
    assert gateway.call("POST", "start-session", token).json()["session"]["status"] == "pairing"
    simulator.control("POST", f"{name}/scan")
    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "CONNECTED", 3)
    settle(simulator, name, 1)
    assert wait_for_status(gateway, token, "connected", 1.5)["status"] == "connected"
