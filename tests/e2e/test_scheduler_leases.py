"""Scheduler passes against a slow host: one session, ten messages due at once, a host that
takes seconds a send, and a second pass started after a send's lease would have run out. Each
message goes out once (the host's outbox), and none is left behind.

Time is scaled down ten times, the race kept: a lease of 3 s (``SEND_LEASE``, 30 s), a host
taking 0.8 s a send (8 s), the second pass 3.5 s after the first (35 s), and host and database
timeouts to match; a pass's invocation is long enough to send the batch (30 s). ``make soak``
runs passes that overlap with a host taking seconds a send."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.test_scheduled_waits import due_now
from tests.e2e.test_scheduler_race import linked_session, still_due
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.scheduler import Scheduler, SchedulerReport
from wa_gateway.messaging.service import MessageService
from wa_gateway.settings import Settings
from wa_gateway.store import PostgresTransport, Store

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

MESSAGES = 10
SEND_LEASE_S = 3
HOST_SEND_MS = 800
SECOND_PASS_AFTER_S = 3.5
INVOCATION_S = 30.0
# The governor would let a second pass take only what refilled: it is not the point here.
FAST = {"send_burst": 100, "send_rate_per_s": 100.0}
SCALED_TIMEOUTS = {
    "WPP_CONNECT_TIMEOUT": "0.5",
    "WPP_READ_TIMEOUT": "1.5",
    "WPP_START_TIMEOUT": "1.5",
    "DB_TIMEOUT": "1",
}


def a_pass(gateway: Gateway, **governor: float) -> Scheduler:
    """A scheduler of its own (connections, host client), as another invocation has."""
    settings = Settings.load({**gateway.env, **SCALED_TIMEOUTS})
    store = Store(PostgresTransport(gateway.dsn), send_lease_s=SEND_LEASE_S, **governor)
    messages = MessageService(store, HostDirectory(settings, settings.keyring), settings.keyring)
    return Scheduler(store, messages, grace_s=3600)


def invocation(seconds: float) -> Callable[[], float]:
    """What is left of an invocation of ``seconds`` started now (the Lambda context's)."""
    ends = time.monotonic() + seconds
    return lambda: ends - time.monotonic()


def due_now_all(database: str, name: str, count: int) -> None:
    for n in range(1, count + 1):
        due_now(database, name, f"due {n}")


def statuses(database: str, user_id: str) -> Counter[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select status from whatsapp_messages where user_id = %s", (user_id,)
        ).fetchall()
    return Counter(status for (status,) in rows)


def test_a_second_pass_after_the_lease_sends_none_of_a_slow_hosts_batch_twice(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user_id, name = linked_session(gateway, simulator, "slowbatch")
    due_now_all(database, name, MESSAGES)
    reports: dict[str, SchedulerReport] = {}
    first_pass = threading.Thread(
        target=lambda: reports.update(first=a_pass(gateway, **FAST).run(invocation(INVOCATION_S)))
    )
    with simulator.faulty(latency_ms=HOST_SEND_MS, routes=["send-message"]):
        first_pass.start()
        time.sleep(SECOND_PASS_AFTER_S)
        reports["second"] = a_pass(gateway, **FAST).run(invocation(INVOCATION_S))
        first_pass.join(INVOCATION_S + 5)

    sent = Counter(m["body"] for m in simulator.outbox(name))
    assert sent == Counter({f"due {n}": 1 for n in range(1, MESSAGES + 1)}), sent
    assert still_due(database, [user_id]) == 0
    assert set(statuses(database, user_id)) <= {"sent", "delivered", "read"}
    assert reports["first"].sent == MESSAGES and reports["second"].sent == 0


def test_a_pass_short_of_time_gives_back_what_it_cannot_send_and_the_next_sends_it_once(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user_id, name = linked_session(gateway, simulator, "shortpass")
    many = 2 * MESSAGES
    due_now_all(database, name, many)
    with simulator.faulty(latency_ms=HOST_SEND_MS, routes=["send-message"]):
        # Too short an invocation for twenty sends of 0.8 s, with one host call (2 s) and its
        # record (1 s) to spare at the end.
        short = a_pass(gateway, **FAST).run(invocation(16.0))
        sent_first = len(simulator.outbox(name))
        rest = a_pass(gateway, **FAST).run(invocation(INVOCATION_S))

    assert 0 < sent_first < many
    report: dict[str, Any] = short.as_dict()
    assert report["sent"] == sent_first and report["given_back"] == many - sent_first
    assert rest.sent == many - sent_first
    sent = Counter(m["body"] for m in simulator.outbox(name))
    assert sent == Counter({f"due {n}": 1 for n in range(1, many + 1)}), sent
    assert still_due(database, [user_id]) == 0
