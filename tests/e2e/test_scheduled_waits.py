"""A scheduled message whose session the host calls not connected for a moment (a host that
restarted, a login still syncing) waits, as docs/architecture.md promises: retried on every
pass for up to SCHEDULE_GRACE past its time, sent once the session is back, and failed with
``session_not_connected`` only after the grace."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import closed_on_the_host, connected_user
from tests.waiting import wait_until
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.scheduler import Scheduler
from wa_gateway.messaging.service import MessageService
from wa_gateway.settings import Settings
from wa_gateway.store import PostgresTransport, Store

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def a_pass(gateway: Gateway) -> Scheduler:
    settings = Settings.load(gateway.env)
    store = Store(PostgresTransport(gateway.dsn))
    messages = MessageService(store, HostDirectory(settings, settings.keyring), settings.keyring)
    return Scheduler(store, messages, grace_s=3600)


def row(database: str, message_id: Any) -> dict[str, Any]:
    """A message's state, with its session's."""
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select m.status, m.send_state, m.error_code, m.wpp_message_id,"
            " s.status as session_status"
            " from whatsapp_messages m join whatsapp_sessions s on s.id = m.whatsapp_session_id"
            " where m.id = %s",
            (message_id,),
        )
        assert cursor.description is not None
        found = cursor.fetchone()
        assert found is not None
        return dict(zip([c.name for c in cursor.description], found, strict=True))


def due_now(database: str, name: str, body: str) -> Any:
    with psycopg.connect(database, autocommit=True) as conn:
        found = conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, send_at) select user_id, id, 'outbound', '5511987654321', %s, 'scheduled',"
            " now() - interval '1 second' from whatsapp_sessions where session_id = %s"
            " returning id",
            (body, name),
        ).fetchone()
    assert found is not None
    return found[0]


def a_minute_later(database: str, message_id: Any) -> None:
    """The next pass's time: a message that waits again is not tried by the same pass."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_messages set lease_until = now() where id = %s", (message_id,)
        )


def due_on_a_session_the_host_lost(
    gateway: Gateway, simulator: Simulator, database: str, label: str, body: str
) -> tuple[str, Any]:
    """A linked session with a message ``body`` due now; then the host's client for the
    session goes (as in a restart), and no webhook says so: (session name, message id)."""
    _, _, name = connected_user(gateway, simulator, label)
    message_id = due_now(database, name, body)
    with simulator.configured(webhook_drop_rate=1.0):
        closed_on_the_host(gateway, simulator, name)
        wait_until(lambda: simulator.delivered(name), within_s=5)
    assert simulator.state(name).get("live") is not True
    return name, message_id


def test_a_scheduled_message_whose_host_says_not_connected_waits_and_goes_once_it_is_back(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    name, message_id = due_on_a_session_the_host_lost(
        gateway, simulator, database, "waits", "after the restart"
    )

    report = a_pass(gateway).run()
    assert report.errors.get("session_not_connected") == 1  # tried once, not again and again
    waiting = row(database, message_id)
    assert (waiting["status"], waiting["error_code"]) == ("scheduled", "session_not_connected")
    assert waiting["session_status"] == "connected"  # its events and reconcile will say
    assert a_pass(gateway).run().errors.get("session_not_connected") is None  # the same minute
    a_minute_later(database, message_id)
    assert a_pass(gateway).run().errors.get("session_not_connected") == 1  # the next pass

    simulator.control("POST", f"{name}/restore")  # the host restores the login
    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "CONNECTED", 10)
    a_minute_later(database, message_id)
    assert a_pass(gateway).run().sent == 1
    assert [m["body"] for m in simulator.outbox(name)] == ["after the restart"]
    assert row(database, message_id)["status"] in ("sent", "delivered", "read")


def test_a_scheduled_message_whose_session_stays_away_fails_after_the_grace(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    name, message_id = due_on_a_session_the_host_lost(
        gateway, simulator, database, "staysaway", "never"
    )
    a_pass(gateway).run()
    assert row(database, message_id)["status"] == "scheduled"

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_messages set send_at = now() - interval '2 hours',"
            " lease_until = now() where id = %s",
            (message_id,),
        )
    assert a_pass(gateway).run().failed >= 1
    failed = row(database, message_id)
    assert (failed["status"], failed["error_code"]) == ("failed", "session_not_connected")
    assert simulator.outbox(name) == []
