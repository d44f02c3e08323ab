"""Several WhatsApp accounts per user, and the durable event log."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from local import devdb
from tests.conftest import Gateway, Simulator, as_role
from tests.e2e.flows import (
    assert_error,
    connected_user,
    sent_text,
    started_user,
    wait_for_status,
)
from tests.integration.store_helpers import begin
from tests.waiting import wait_until
from wa_gateway.events.service import is_unused, to_record
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import PostgresTransport, Store


def test_a_user_links_several_accounts_by_label(gateway: Gateway, simulator: Simulator) -> None:
    user, token, default = started_user(gateway, "accounts")
    work = gateway.call("POST", "start-session", token, json={"account": "work"}).json()["session"]
    assert default["name"] == session_name_for(user.id) and default["account"] == "default"
    assert work["name"] == session_name_for(user.id, "work") and work["account"] == "work"
    assert work["qr"]["raw"] != default["qr"]["raw"]

    simulator.control("POST", f"{work['name']}/scan")
    linked = wait_until(
        lambda: gateway.call("GET", "status", token, params={"account": "work"}).json(),
        lambda b: b["session"]["status"] == "connected",
    )
    assert linked["session"]["name"] == work["name"]
    assert gateway.call("GET", "status", token).json()["session"]["status"] == "pairing"

    sent_text(gateway, token, "5511987654321", "do trabalho", account="work")
    assert [m["to"] for m in simulator.outbox(work["name"])] == ["5511987654321@c.us"]
    assert_error(
        gateway.call("POST", "send-message", token, json={"phone": "5511987654321",
                                                         "message": "x"}),
        409,
        "session_not_connected",  # the default account is still pairing
    )  # fmt: skip
    gone = gateway.call("POST", "disconnect", token, json={"account": "work"})
    assert gone.json()["session"]["status"] == "disconnected"
    assert gateway.call("GET", "status", token).json()["session"]["status"] == "pairing"


def test_accounts_are_limited_per_user(gateway: Gateway) -> None:
    token = gateway.token_for(gateway.new_user("limit"))
    for label in ("default", "two", "three"):
        answer = gateway.call("POST", "start-session", token, json={"account": label})
        assert answer.status_code == 200, answer.text
    assert_error(
        gateway.call("POST", "start-session", token, json={"account": "four"}),
        409,
        "account_limit",
    )
    again = gateway.call("POST", "start-session", token, json={"account": "three"})
    assert again.status_code == 200  # an existing account is not a new one


@pytest.mark.parametrize("label", ["Work", "a_b", "-x", "x" * 33, "", 5])
def test_bad_account_labels_are_refused(gateway: Gateway, label: Any) -> None:
    token = gateway.token_for(gateway.new_user("badlabel"))
    assert_error(
        gateway.call("POST", "start-session", token, json={"account": label}),
        400,
        "invalid_request",
    )
    if isinstance(label, str) and label:
        assert_error(
            gateway.call("GET", "status", token, params={"account": label}),
            400,
            "invalid_request",
        )


def events_of(database: str, session_name: str) -> list[dict[str, Any]]:
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select e.seq, e.event, e.payload, e.dedup_key from whatsapp_events e"
            " join whatsapp_sessions s on s.id = e.whatsapp_session_id"
            " where s.session_id = %s order by e.seq",
            (session_name,),
        )
        return [
            dict(zip(("seq", "event", "payload", "dedup_key"), r, strict=True))
            for r in cursor.fetchall()
        ]


def test_every_event_is_logged_once_in_order_and_readable_by_its_owner_only(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    with simulator.configured(delivery_mode="duplicate"):
        user, token, name = connected_user(gateway, simulator, "eventlog")
        simulator.control("POST", f"{name}/incoming", {"from": "5511912340000", "body": "oi"})
        delivered = wait_until(
            lambda: simulator.control("GET", f"{name}/events").json()["events"],
            lambda evs: (
                sum(len(e["results"]) for e in evs if e["sent"])
                >= 2 * sum(1 for e in evs if e["sent"])
            ),
        )
        logged = wait_until(
            lambda: events_of(database, name),
            lambda rows: any(r["event"] == "onmessage" for r in rows),
        )
    sent = [e for e in delivered if e["sent"] and not is_unused(e["body"])]
    assert len(logged) == len({to_record(name, e["body"]).dedup_key for e in sent})
    assert [r["seq"] for r in logged] == list(range(1, len(logged) + 1))
    assert {"status-find", "qrcode", "onmessage"} <= {r["event"] for r in logged}
    assert all("qrcode" not in r["payload"] and "session" not in r["payload"] for r in logged)

    bob = gateway.new_user("eventbob")
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", user.id)
        mine = conn.execute("select seq from whatsapp_events order by seq").fetchall()
        as_role(conn, "authenticated", bob.id)
        theirs = conn.execute("select seq from whatsapp_events").fetchall()
    assert [r[0] for r in mine] == [r["seq"] for r in logged] and theirs == []
    assert wait_for_status(gateway, token, "connected")["status"] == "connected"


def test_the_log_rebuilds_the_state(gateway: Gateway, simulator: Simulator, database: str) -> None:
    """Replaying a session's logged events, in order, on a fresh session gives its state."""
    _, token, name = connected_user(gateway, simulator, "rebuild")
    simulator.control("POST", f"{name}/incoming", {"from": "5511912340001", "body": "um"})
    simulator.control("POST", f"{name}/unlink")
    final = wait_for_status(gateway, token, "disconnected")
    logged = wait_until(
        lambda: events_of(database, name),
        lambda rows: any(r["payload"].get("status") == "disconnectedMobile" for r in rows),
    )

    twin = devdb.create_user(database, f"twin-{name[-8:]}@example.com", "pw")
    twin_name = session_name_for(twin.id)
    transport = PostgresTransport(database)
    store = Store(transport)
    begin(store, twin.id, twin_name)  # fmt: skip
    for row in logged:
        store.ingest_event(to_record(twin_name, {**row["payload"], "event": row["event"]}))
    with psycopg.connect(database) as conn:
        rebuilt = conn.execute(
            "select status, status_reason, qr_code from whatsapp_sessions where session_id = %s",
            (twin_name,),
        ).fetchone()
        inbound = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s", (twin.id,)
        ).fetchone()
    transport.close()
    assert rebuilt == (final["status"], "disconnectedMobile", None)
    assert inbound == (0,)  # the message ids are unique: the original holds them
