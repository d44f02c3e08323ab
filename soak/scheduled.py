"""The scheduled phase: messages scheduled through the gateway, sent by scheduler passes that
overlap (a new one every few seconds, each holding what it claims for what is left of its
invocation), through a host that takes seconds a send and that restarts while they are due.
Nothing may go twice, and nothing accepted may be left behind.

The host goes away as a process does: new requests are refused first, the ones it is serving
finish and their webhooks are delivered, and then it stops, for some seconds, and comes back
restoring its sessions (``startAllSession``). Passes that meet it away or restoring leave the
messages to wait for a later pass, as a real pass would."""

from __future__ import annotations

import argparse
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
import requests

from soak.load import Accepted, Recorder
from soak.stack import Stack, User

if TYPE_CHECKING:
    from wa_gateway.jobs.scheduler import SchedulerReport

# A scheduled message is due one minute ahead at the earliest (send-message's rule).
DUE_AFTER_S = 65.0
INVOCATION_S = 60.0  # each pass's invocation
BATCH = 10  # messages a pass claims at a time: several passes send side by side
TO = [f"55319{n:08d}" for n in range(20)]


# What each pass reports that the phase adds up.
SUMMED = ("sent", "failed", "given_back", "taken_over")


@dataclass
class PassLog:
    """The passes started, how many ran at once at most, and what each one reported."""

    started: int = 0
    most_at_once: int = 0
    running: int = 0
    reports: list[SchedulerReport] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def as_dict(self) -> dict[str, Any]:
        """The passes' reports added up."""
        errors: Counter[str] = Counter()
        for report in self.reports:
            errors.update(report.errors)
        return {
            "passes": self.started,
            "most_at_once": self.most_at_once,
            **{key: sum(getattr(report, key) for report in self.reports) for key in SUMMED},
            "errors": dict(errors),
        }


def schedule_all(
    stack: Stack, users: list[User], rec: Recorder, per_user: int, send_at: datetime
) -> None:
    """``per_user`` messages for each user, all due at ``send_at``, each with its own key."""
    http = requests.Session()
    for user in users:
        headers = {"authorization": f"Bearer {user.token}"}
        for _ in range(per_user):
            key = uuid.uuid4().hex
            text = f"scheduled {key}"
            body = {"phone": secrets.choice(TO), "message": text, "send_at": send_at.isoformat()}
            answer = rec.timed(
                "send-message (send_at)",
                partial(
                    http.post,
                    f"{stack.gateway_url}/send-message/",
                    json=body,
                    headers={**headers, "Idempotency-Key": key},
                    timeout=30,
                ),
            )
            if answer is not None and answer.status_code == 202:
                message = answer.json()["message"]
                with rec._lock:
                    rec.scheduled[key] = Accepted(user, key, text, message["id"], None)


def one_pass(stack: Stack, log: PassLog) -> None:
    """A scheduler invocation of its own: its connections and host client."""
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.jobs.scheduler import Scheduler
    from wa_gateway.messaging.service import MessageService
    from wa_gateway.settings import Settings
    from wa_gateway.store import PostgresTransport, Store

    settings = Settings.load(stack.env)
    transport = PostgresTransport(stack.dsn)
    store = Store(
        transport,
        send_burst=settings.send_burst,
        send_rate_per_s=settings.send_rate_per_minute / 60,
        send_lease_s=settings.send_lease_s,
    )
    messages = MessageService(store, HostDirectory(settings, settings.keyring), settings.keyring)
    ends = time.monotonic() + INVOCATION_S
    with log.lock:
        log.started += 1
        log.running += 1
        log.most_at_once = max(log.most_at_once, log.running)
    try:
        report = Scheduler(store, messages, batch_size=BATCH).run(lambda: ends - time.monotonic())
    finally:
        transport.close()
        with log.lock:
            log.running -= 1
    with log.lock:
        log.reports.append(report)


def unsent(stack: Stack, keys: list[str]) -> int:
    with psycopg.connect(stack.dsn) as conn:
        found = conn.execute(
            "select count(*) from whatsapp_messages where idempotency_key = any(%s)"
            " and status not in ('sent', 'delivered', 'read')",
            (keys,),
        ).fetchone()
    return int(found[0]) if found else len(keys)


def run_phase(
    stack: Stack,
    users: list[User],
    rec: Recorder,
    args: argparse.Namespace,
    drain: Callable[[Stack, list[User]], float],
) -> dict[str, Any]:
    """Schedule, run overlapping passes, restart the host while the messages are due, and
    go on until every accepted one is sent (or ``args.scheduled_deadline`` seconds pass)."""
    started = time.monotonic()
    send_time_ms = stack.sim("GET", "config")["send_time_ms"]
    stack.sim("POST", "config", {"send_time_ms": args.host_send_ms})
    due = datetime.now(UTC) + timedelta(seconds=DUE_AFTER_S)
    schedule_all(stack, users, rec, args.scheduled_per_user, due)
    keys = list(rec.scheduled)
    log = PassLog()
    stop = threading.Event()
    passes: list[threading.Thread] = []

    def launcher() -> None:
        while not stop.is_set():
            thread = threading.Thread(target=one_pass, args=(stack, log))
            thread.start()
            passes.append(thread)
            stop.wait(args.pass_every)

    launching = threading.Thread(target=launcher)
    launching.start()
    restart: dict[str, Any] = {}
    try:
        # Into the sending: the host goes away with messages still due, then comes back.
        wait_s = (due - datetime.now(UTC)).total_seconds() + args.restart_after
        time.sleep(max(0.0, wait_s))
        restart = stack.restart_host(
            [u.session for u in users], down_s=args.host_down, drain=lambda: drain(stack, users)
        )
        stack.sim("POST", "config", {"send_time_ms": args.host_send_ms})
        deadline = started + args.scheduled_deadline
        while unsent(stack, keys) and time.monotonic() < deadline:
            time.sleep(1.0)
    finally:
        stop.set()
        launching.join()
        for thread in passes:
            thread.join(INVOCATION_S + 30)
        stack.sim("POST", "config", {"send_time_ms": send_time_ms})
    return {
        "scheduled": len(keys),
        "left_unsent": unsent(stack, keys),
        "seconds": round(time.monotonic() - started, 1),
        "host_send_ms": args.host_send_ms,
        "host_restart": restart,
        **log.as_dict(),
    }
