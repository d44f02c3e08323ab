"""The scheduler under load: 1,000 messages due in the same minute across 50 connected sessions,
two passes racing all along. Each message goes out once, no session sends faster than its
governor allows, and every message is sent within a minute of its time. And a pass that dies
after claiming leaves its messages to a later pass."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import dict_rows, one_value, started_user, wait_for_status
from tests.waiting import wait_until
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.scheduler import Scheduler, SchedulerReport
from wa_gateway.messaging.service import MessageService
from wa_gateway.pass_records import ClaimBatch
from wa_gateway.settings import Settings
from wa_gateway.store import PostgresTransport, Store

SESSIONS = 50
PER_SESSION = 20
BURST = 10
RATE_PER_S = 10.0  # the test's governor: a session's 20 messages take about a second
LEASE_S = 30
TO = "5511987654321"


class RecordingStore(Store):
    """A store that notes when the scheduler claimed each message, and for which session."""

    claims: list[tuple[str, datetime]]

    def claim_scheduled(self, *, limit: int, grace_s: int, lease_s: int) -> ClaimBatch:
        batch = super().claim_scheduled(limit=limit, grace_s=grace_s, lease_s=lease_s)
        for claimed in batch.claimed:
            message = claimed.plan.message
            assert message is not None and message.updated_at is not None
            moment = datetime.fromisoformat(message.updated_at)
            self.claims.append((message.whatsapp_session_id, moment))
        return batch


def a_scheduler(gateway: Gateway, claims: list[tuple[str, datetime]]) -> Scheduler:
    """A pass of its own: its own connections and host client, as another Lambda would have."""
    settings = Settings.load(gateway.env)
    store = RecordingStore(
        PostgresTransport(gateway.dsn),
        send_burst=BURST,
        send_rate_per_s=RATE_PER_S,
        send_lease_s=LEASE_S,
    )
    store.claims = claims
    messages = MessageService(store, HostDirectory(settings, settings.keyring), settings.keyring)
    return Scheduler(store, messages, grace_s=3600, batch_size=100)


def linked_session(gateway: Gateway, simulator: Simulator, label: str) -> tuple[str, str]:
    """A new user with a connected session: (user id, session name)."""
    user, token, session = started_user(gateway, label)
    simulator.control("POST", f"{session['name']}/scan")
    wait_for_status(gateway, token, "connected", within_s=20)
    return user.id, session["name"]


def still_due(database: str, user_ids: list[str]) -> int:
    return int(
        one_value(
            database,
            "select count(*) from whatsapp_messages where user_id = any(%s::uuid[])"
            " and (status = 'scheduled' or (status = 'queued' and wpp_message_id is null))",
            (user_ids,),
        )
    )


def test_two_racing_passes_send_a_thousand_due_messages_once_each_within_the_governor(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    with ThreadPoolExecutor(8) as pool:
        linked = list(
            pool.map(lambda i: linked_session(gateway, simulator, f"race{i}"), range(SESSIONS))
        )
    user_ids = [user_id for user_id, _ in linked]
    # Due within the last 30 seconds: the minute a cron pass would find them in.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, send_at)"
            " select s.user_id, s.id, 'outbound', %s, s.session_id || '#' || n, 'scheduled',"
            "   now() - (n %% 30) * interval '1 second'"
            " from whatsapp_sessions s, generate_series(1, %s) n"
            " where s.user_id = any(%s::uuid[])",
            (TO, PER_SESSION, user_ids),
        )

    reports: dict[str, list[SchedulerReport]] = {"a": [], "b": []}
    claims: list[tuple[str, datetime]] = []
    started = time.monotonic()
    deadline = started + 60

    def race(name: str) -> None:
        scheduler = a_scheduler(gateway, claims)
        while time.monotonic() < deadline and still_due(database, user_ids):
            reports[name].append(scheduler.run())

    threads = [threading.Thread(target=race, args=(name,)) for name in reports]
    # The host answers at once: what is timed here is the passes and the governor (a host
    # taking seconds a send is test_scheduler_leases's).
    with simulator.configured(send_time_ms=0):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - started
    # The host posts about 2,000 events for these sessions (their acks mostly) after the
    # passes end; the webhook takes them one at a time, and the next test's events would wait
    # behind them. They are all in before anything is checked.
    wait_until(
        lambda: all(simulator.delivered(name) for _, name in linked),
        within_s=180,
        message="every webhook of the race's sessions delivered",
    )

    sent_by = {name: sum(r.sent for r in runs) for name, runs in reports.items()}
    errors = Counter[str]()
    for runs in reports.values():
        for report in runs:
            errors.update(report.errors)
    print(
        f"\n{SESSIONS * PER_SESSION} due messages, {SESSIONS} sessions, two racing passes:"
        f" {elapsed:.1f} s; sent by pass a {sent_by['a']} in {len(reports['a'])} runs,"
        f" by pass b {sent_by['b']} in {len(reports['b'])} runs; errors {dict(errors)}"
    )

    # Each message went out once: the host's outboxes hold every body exactly once.
    bodies = Counter(m["body"] for _, name in linked for m in simulator.outbox(name))
    assert len(bodies) == SESSIONS * PER_SESSION and set(bodies.values()) == {1}
    assert sum(sent_by.values()) == SESSIONS * PER_SESSION and not errors
    assert all(sent_by.values()), "both passes should have taken part"

    rows = message_rows(database, user_ids)
    assert {r["status"] for r in rows} <= {"sent", "delivered", "read"}
    # Every message was sent within a minute of its time.
    late = [r for r in rows if (r["sent_at"] - r["send_at"]).total_seconds() > 60]
    assert late == []
    # The governor: from a session's first claim, never more than the bucket plus its refill.
    assert all(r["attempts"] == 1 for r in rows)
    for session_id, moments in claims_by_session(claims).items():
        first = moments[0]
        for count, moment in enumerate(moments, start=1):
            allowed = BURST + RATE_PER_S * (moment - first).total_seconds()
            assert count <= allowed + 1e-6, (session_id, count, allowed)


def message_rows(database: str, user_ids: list[str]) -> list[dict[str, Any]]:
    return dict_rows(
        database,
        "select status, send_at, sent_at, attempts from whatsapp_messages"
        " where user_id = any(%s::uuid[])",
        (user_ids,),
    )


def claims_by_session(claims: list[tuple[str, datetime]]) -> dict[str, list[datetime]]:
    by_session: dict[str, list[datetime]] = {}
    for session_id, moment in claims:
        by_session.setdefault(session_id, []).append(moment)
    return {k: sorted(v) for k, v in by_session.items()}


def test_a_pass_that_dies_after_claiming_leaves_its_messages_to_the_next_once_the_lease_ends(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user_id, name = linked_session(gateway, simulator, "dies")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, send_at) select user_id, id, 'outbound', %s, 'orphan', 'scheduled',"
            " now() - interval '1 second' from whatsapp_sessions where session_id = %s",
            (TO, name),
        )
    settings = Settings.load(gateway.env)
    store = Store(PostgresTransport(gateway.dsn))
    scheduler = Scheduler(
        store, MessageService(store, HostDirectory(settings, settings.keyring), settings.keyring)
    )

    # Claims for an invocation of a second, then never sends.
    dead_pass = store.claim_scheduled(limit=10, grace_s=3600, lease_s=1)
    during_lease = store.claim_scheduled(limit=10, grace_s=3600, lease_s=1)
    after_lease = wait_until(scheduler.run, lambda r: r.sent == 1, within_s=5)

    assert [c.session_name for c in dead_pass.claimed] == [name]
    assert during_lease.claimed == []
    assert after_lease.errors == {}
    assert [m["body"] for m in simulator.outbox(name)] == ["orphan"]
    assert still_due(database, [user_id]) == 0


def test_a_pass_slower_than_the_send_lease_keeps_its_messages_from_an_overlapping_pass(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """A pass holds what it claimed for as long as it may still send it (the time its
    invocation has left), not for a send's lease: another pass that starts meanwhile takes
    none of it, however slowly the host answers."""
    user_id, name = linked_session(gateway, simulator, "slowpass")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, send_at) select user_id, id, 'outbound', %s, 'slow ' || n, 'scheduled',"
            " now() - interval '1 second' from whatsapp_sessions, generate_series(1, 6) n"
            " where session_id = %s",
            (TO, name),
        )
    settings = Settings.load(gateway.env)

    def a_pass() -> Scheduler:
        store = Store(PostgresTransport(gateway.dsn), send_rate_per_s=100.0, send_lease_s=1)
        hosts = HostDirectory(settings, settings.keyring)
        return Scheduler(store, MessageService(store, hosts, settings.keyring))

    reports: list[SchedulerReport] = []
    with simulator.faulty(latency_ms=500, routes=["send-message"]):
        slow = threading.Thread(target=lambda: reports.append(a_pass().run()))
        slow.start()
        # The slow pass has claimed all six, and a send's lease (1 s) has run out since.
        wait_until(lambda: still_due(database, [user_id]), lambda n: n == 6, within_s=10)
        wait_until(
            lambda: simulator.control("GET", "in-flight").json()["in_flight"], bool, within_s=10
        )
        time.sleep(1.5)
        overlapping = a_pass().run()
        slow.join()

    bodies = Counter(m["body"] for m in simulator.outbox(name))
    assert overlapping.sent == 0
    assert sorted(bodies) == [f"slow {n}" for n in range(1, 7)] and set(bodies.values()) == {1}
    assert [r.sent for r in reports] == [6]
