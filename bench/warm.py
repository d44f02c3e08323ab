"""Warm latency: each handler loaded once in this process (with the functions' environment),
then called again and again, like a reused Lambda container, against the floor.

Every measured call is followed by its floor, interleaved so both see the same conditions:
the bare round trips the operation cannot avoid (:data:`FLOORS`), a ``select 1`` per database
round trip and a ``GET /healthz`` to the simulator per host call. Each call also records the
database round trips the store's transport counted, and the host calls (and the time spent
in them) seen by the :class:`~bench.probes.HostMeter`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import events, sqlstats
from bench.machine import idlest_cpu
from bench.probes import Floor, FloorProbe, HostMeter, percentile, summary_ms
from bench.stack import Stack, User
from bench.webhooks import MIX, WebhookMix

Handler = Callable[[dict[str, Any], Any], Any]

# The round trips each measured operation cannot avoid.
FLOORS = {
    "status": Floor(db=1, host=0),  # read the session
    "start-session": Floor(db=1, host=0),  # idempotent path: the pairing QR is still valid
    "send-message": Floor(db=2, host=1),  # write the outbox row, send, record the result
    "qr-webhook": Floor(db=1, host=0),  # apply the event
    "disconnect": Floor(db=2, host=1),  # read the host token, log out (or close), record it
    "purge": Floor(db=1, host=0),  # one batch finds nothing to do
}
TIMEOUT_MS = {"start-session": 35_000, "purge": 300_000}


@dataclass
class Call:
    ns: int
    db: int
    host: int
    host_wait_ns: int
    db_wait_ns: int = 0
    floor_db_ns: int = 0
    floor_host_ns: int = 0


def body_of(result: Any) -> Any:
    if isinstance(result, dict) and "statusCode" in result:
        if result["statusCode"] != 200:
            raise RuntimeError(f"answered {result['statusCode']}: {result.get('body')}")
        return json.loads(result.get("body") or "null")
    return result


class Invoker:
    """Calls a loaded handler as Lambda would, and records what the call cost."""

    def __init__(
        self, handlers: dict[str, Handler], meter: HostMeter, probe: FloorProbe | None
    ) -> None:
        self.handlers = handlers
        self.meter = meter
        self.probe = probe
        self.db_wait_ns = 0

    def _meter_db(self, store: Any) -> None:
        """Time the store's transport calls (wrapping this store instance's transport)."""
        transport = getattr(store, "transport", None)
        if transport is None or getattr(transport, "_bench_metered", False):
            return
        original = transport.rpc

        def rpc(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.db_wait_ns += time.perf_counter_ns() - started

        transport.rpc = rpc
        transport._bench_metered = True

    def __call__(
        self, function: str, event: dict[str, Any], floor: Floor | None = None
    ) -> tuple[Any, Call]:
        from wa_gateway import runtime

        store = runtime.store()
        self._meter_db(store)
        context = events.context(function, event, TIMEOUT_MS.get(function, 20_000))
        handler = self.handlers[function]
        trips, calls, waited = store.round_trips, self.meter.calls, self.meter.wait_ns
        db_waited = self.db_wait_ns
        started = time.perf_counter_ns()
        result = handler(event, context)
        elapsed = time.perf_counter_ns() - started
        call = Call(
            ns=elapsed,
            db=runtime.store().round_trips - trips,
            host=self.meter.calls - calls,
            host_wait_ns=self.meter.wait_ns - waited,
            db_wait_ns=self.db_wait_ns - db_waited,
        )
        if floor is not None and self.probe is not None:
            call.floor_db_ns, call.floor_host_ns = self.probe.run(floor)
        return body_of(result), call


@dataclass
class Counts:
    """Round trips and host calls per operation, as observed call by call."""

    db: dict[str, Counter[int]] = field(default_factory=dict)
    host: dict[str, Counter[int]] = field(default_factory=dict)

    def add(self, label: str, calls: list[Call]) -> None:
        self.db.setdefault(label, Counter()).update(c.db for c in calls)
        self.host.setdefault(label, Counter()).update(c.host for c in calls)

    def as_json(self) -> dict[str, Any]:
        def one(counter: Counter[int]) -> int | dict[str, int]:
            return (
                next(iter(counter))
                if len(counter) == 1
                else {str(k): v for k, v in counter.items()}
            )

        return {
            "db": {label: one(c) for label, c in self.db.items()},
            "host": {label: one(c) for label, c in self.host.items()},
        }


def aggregate(calls: list[Call], floor: Floor) -> dict[str, Any]:
    handler = summary_ms([c.ns for c in calls])
    floor_ms = summary_ms([c.floor_db_ns + c.floor_host_ns for c in calls])
    out: dict[str, Any] = {
        "p50": handler["p50"],
        "p99": handler["p99"],
        "mean": handler["mean"],
        "floor_p50": floor_ms["p50"],
        "floor_p99": floor_ms["p99"],
        "ratio": round(handler["p50"] / floor_ms["p50"], 2),
        "n": len(calls),
        "floor_round_trips": {"db": floor.db, "host": floor.host},
        "db_round_trips": sorted(Counter(c.db for c in calls)),
        "host_calls": sorted(Counter(c.host for c in calls)),
        # Where a call's time goes (p50 of each part): waiting for the database (the
        # transport's calls), for the host, and everything else (the gateway's own code).
        "breakdown_p50": {
            "db_wait": _p50_ms([c.db_wait_ns for c in calls]),
            "host_wait": _p50_ms([c.host_wait_ns for c in calls]),
            "own": _p50_ms([c.ns - c.db_wait_ns - c.host_wait_ns for c in calls]),
        },
    }
    if floor.host or any(c.host for c in calls):
        # The host's own think time is not the gateway's: the same ratio with each host
        # call counted at what it really took instead of a /healthz.
        adjusted = [c.floor_db_ns + c.host_wait_ns for c in calls]
        out["host_wait_p50"] = round(percentile([c.host_wait_ns / 1e6 for c in calls], 50), 3)
        out["ratio_host_adjusted"] = round(handler["p50"] / (percentile(adjusted, 50) / 1e6), 2)
    return out


def _p50_ms(values_ns: list[int]) -> float:
    return round(percentile([v / 1e6 for v in values_ns], 50), 3)


@dataclass
class WarmUsers:
    status: User  # connected
    pairing: User  # pairing, with a QR that stays valid
    sender: User  # connected: sends, and gets the webhook mix's messages and acks
    account_phone: str  # the sender's own number
    qr_sessions: list[str]  # pairing sessions that the mix's QR codes go to
    cycle: list[User]  # pairing; disconnected and started again, round after round
    linked: list[User]  # connected; each disconnected once
    fresh: list[User]  # never started


def webhook_mix(
    stack: Stack, users: WarmUsers, sent: list[tuple[str, str, str]], seed: int = 7
) -> WebhookMix:
    """The host's events for the bench's sessions: QR codes for the pairing ones, the rest for
    the sender's, acking what it ``sent``."""
    return WebhookMix(
        stack.secrets.verify_token,
        pairing=users.qr_sessions,
        connected=users.sender.session or "",
        account_phone=users.account_phone,
        sent=sent,
        seed=seed,
    )


def run_calls(
    invoke: Invoker,
    function: str,
    batch: list[dict[str, Any]],
    *,
    warmup: int,
    check: Callable[[Any], None],
    floor: Floor | None,
) -> list[Call]:
    calls = []
    for i, event in enumerate(batch):
        answer, call = invoke(function, event, floor if i >= warmup else None)
        check(answer)
        if i >= warmup:
            calls.append(call)
    return calls


def _session_status(wanted: str) -> Callable[[Any], None]:
    def check(answer: Any) -> None:
        status = (answer.get("session") or {}).get("status")
        if status != wanted:
            raise RuntimeError(f"expected a {wanted} session, got {status!r}")

    return check


def _ok(answer: Any) -> None:
    if answer != {"ok": True}:
        raise RuntimeError(f"qr-webhook answered {answer!r}")


def _purge_ok(answer: Any) -> None:
    if not isinstance(answer, dict) or not answer.get("complete"):
        raise RuntimeError(f"purge answered {answer!r}")


def measure(
    stack: Stack,
    invoke: Invoker,
    users: WarmUsers,
    *,
    n: int,
    warmup: int,
    progress: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any], Counts, list[tuple[str, str, str]]]:
    """(warm_ms, extra warm figures, counts, messages sent) for every function."""
    warm: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    counts = Counts()
    total = n + warmup

    def timed(
        label: str,
        function: str,
        batch: list[dict[str, Any]],
        check: Callable[[Any], None],
        floor: Floor,
        *,
        unmeasured: int = warmup,
    ) -> dict[str, Any]:
        """The figures of ``batch`` past its first ``unmeasured`` events, whose calls are
        counted under ``label``; empty if none was measured."""
        progress(f"warm: {label} x{len(batch) - unmeasured}")
        calls = run_calls(invoke, function, batch, warmup=unmeasured, check=check, floor=floor)
        if not calls:
            return {}
        counts.add(label, calls)
        return aggregate(calls, floor)

    statuses = [events.status_event(users.status.token) for _ in range(total)]
    warm["status"] = timed(
        "status", "status", statuses, _session_status("connected"), FLOORS["status"]
    )
    pairing = _session_status("pairing")
    starts = [events.start_event(users.pairing.token) for _ in range(total)]
    idempotent = timed(
        "start-session (idempotent)", "start-session", starts, pairing, FLOORS["start-session"]
    )
    warm["start-session"] = {"path": "idempotent", **idempotent}
    starts = [events.start_event(u.token) for u in users.fresh]
    fresh = timed(
        "start-session (fresh start)",
        "start-session",
        starts,
        pairing,
        Floor(db=1, host=1),
        unmeasured=0,
    )
    if fresh:
        extra["start-session (fresh start)"] = fresh

    progress(f"warm: send-message x{n}")
    sent: list[tuple[str, str, str]] = []

    def check_sent(answer: Any) -> None:
        message = answer.get("message") or {}
        if message.get("status") != "sent" or not message.get("wpp_message_id"):
            raise RuntimeError(f"send-message answered {answer!r}")

    texts = [f"Pedido {i} confirmado. Obrigado pela compra!" for i in range(total)]
    batch = [events.send_event(users.sender.token, text) for text in texts]
    calls = []
    for i, (event, text) in enumerate(zip(batch, texts, strict=True)):
        answer, call = invoke(
            "send-message", event, FLOORS["send-message"] if i >= warmup else None
        )
        check_sent(answer)
        message = answer["message"]
        sent.append((message["wpp_message_id"], message["to"], text))
        if i >= warmup:
            calls.append(call)
    warm["send-message"] = aggregate(calls, FLOORS["send-message"])
    counts.add("send-message", calls)

    progress(f"warm: qr-webhook (mix {MIX}) x{n}")
    mix = webhook_mix(stack, users, sent)
    by_kind: dict[str, list[Call]] = {}
    calls = []
    for i, (kind, event) in enumerate(mix.sequence(total)):
        answer, call = invoke("qr-webhook", event, FLOORS["qr-webhook"] if i >= warmup else None)
        _ok(answer)
        if i >= warmup:
            calls.append(call)
            by_kind.setdefault(kind, []).append(call)
    warm["qr-webhook"] = {
        "mix": MIX,
        **aggregate(calls, FLOORS["qr-webhook"]),
        "by_event_p50": {k: summary_ms([c.ns for c in v])["p50"] for k, v in by_kind.items()},
    }
    for kind, got in by_kind.items():
        counts.add(f"qr-webhook: {kind}", got)

    progress(f"warm: disconnect (cancel a pairing) x{n}")
    calls = []
    rounds = math.ceil(total / max(1, len(users.cycle)))
    done = 0
    for _ in range(rounds):
        used = []
        for user in users.cycle:
            if done >= total:
                break
            answer, call = invoke(
                "disconnect",
                events.disconnect_event(user.token),
                FLOORS["disconnect"] if done >= warmup else None,
            )
            _session_status("disconnected")(answer)
            if done >= warmup:
                calls.append(call)
            used.append(user)
            done += 1
        if done < total:
            stack.start(used)
    warm["disconnect"] = {"path": "cancel pairing", **aggregate(calls, FLOORS["disconnect"])}
    counts.add("disconnect (pairing)", calls)

    disconnects = [events.disconnect_event(u.token) for u in users.linked]
    linked = timed(
        "disconnect (linked)",
        "disconnect",
        disconnects,
        _session_status("disconnected"),
        FLOORS["disconnect"],
        unmeasured=0,
    )
    if linked:
        extra["disconnect (linked)"] = linked

    purges = [events.scheduled_event() for _ in range(total)]
    nothing = timed("purge (nothing to purge)", "purge", purges, _purge_ok, FLOORS["purge"])
    warm["purge"] = {"path": "nothing to purge", **nothing}
    return warm, extra, counts, sent


THROUGHPUT_PASSES = 3
STATS_WAIT_S = 5.0


def throughput(
    invoke: Invoker, mix: WebhookMix, n: int, counts: Counts, dsn: str
) -> dict[str, Any]:
    """qr-webhook events per second, in-process, one after another, this process pinned to the
    core that was idlest just before (the database server runs where the scheduler puts it):
    the median of three passes over a third of the events each, so that a few seconds of other
    work on the machine move one pass rather than the figure. Per kind of event: its mean time,
    split into the gateway's own code, the server's SQL (PostgreSQL's function statistics,
    ``bench.sqlstats``) and the rest of the wait for the database (the commit, the socket, the
    scheduler)."""
    _reconnect_store()  # a connection opened after track_functions was set
    batch = mix.sequence(n + 50)
    for _, event in batch[:50]:
        _ok(invoke("qr-webhook", event)[0])
    stats_before = sqlstats.snapshot(dsn)
    updates_before = sqlstats.message_updates(dsn)
    cpus = os.sched_getaffinity(0)
    core = idlest_cpu(cpus)
    os.sched_setaffinity(0, {core})
    by_kind: dict[str, list[Call]] = {}
    rates: list[float] = []
    size = n // THROUGHPUT_PASSES
    try:
        for start in range(50, 50 + size * THROUGHPUT_PASSES, size):
            started = time.perf_counter_ns()
            for kind, event in batch[start : start + size]:
                answer, call = invoke("qr-webhook", event)
                _ok(answer)
                by_kind.setdefault(kind, []).append(call)
            rates.append(size / ((time.perf_counter_ns() - started) / 1e9))
    finally:
        os.sched_setaffinity(0, cpus)
    for kind, got in by_kind.items():
        counts.add(f"qr-webhook: {kind}", got)
    measured = size * THROUGHPUT_PASSES
    server = _server_time(dsn, stats_before, measured)
    updates_after = sqlstats.message_updates(dsn)
    updates, hot = (a - b for a, b in zip(updates_after, updates_before, strict=True))
    by_event: dict[str, Any] = {}
    for kind, got in by_kind.items():
        mean_ms = statistics.fmean(c.ns for c in got) / 1e6
        db_ms = statistics.fmean(c.db_wait_ns for c in got) / 1e6
        sql_ms = (server.get("by_event_server_ms") or {}).get(kind)
        by_event[kind] = {
            "n": len(got),
            "mean_ms": round(mean_ms, 3),
            "events_per_s": round(1e3 / mean_ms),
            "own_ms": round(mean_ms - db_ms, 3),
            "db_wait_ms": round(db_ms, 3),
            "sql_ms": sql_ms,
            "commit_and_wire_ms": None if sql_ms is None else round(db_ms - sql_ms, 3),
        }
    return {
        "events_per_s": round(statistics.median(rates)),
        "passes_events_per_s": [round(r) for r in rates],
        "core": core,
        "n": measured,
        "mix": MIX,
        "by_event": by_event,
        "server": server,
        "message_updates": {"updates": updates, "hot": hot},
    }


def _reconnect_store() -> None:
    """Close the store's kept connections: the next call opens a new one (whose backend reads
    the database's settings anew; one that ends reports its statistics)."""
    from wa_gateway import runtime

    close = getattr(getattr(runtime.store(), "transport", None), "close", None)
    if callable(close):
        close()


def _server_time(dsn: str, before: sqlstats.Snapshot, events: int) -> dict[str, Any]:
    """The server's time per event over the passes: the backend reports its statistics when
    its connection ends, so the store's connections are closed first."""
    _reconnect_store()
    deadline = time.monotonic() + STATS_WAIT_S
    while True:
        after = sqlstats.snapshot(dsn)
        if sqlstats.calls_since(before, after) >= events or time.monotonic() > deadline:
            return sqlstats.per_event(before, after)
        time.sleep(0.05)


def at_rtt(
    invoke: Invoker, users: WarmUsers, mix: WebhookMix, *, n: int, warmup: int
) -> dict[str, Any]:
    """The warm figures again with every database answer held for a network round trip
    time (what a Lambda function has to its database), the floor through the same proxy."""
    total = n + warmup
    out: dict[str, Any] = {}
    webhooks = mix.sequence(total)
    batches: dict[str, tuple[list[dict[str, Any]], Callable[[Any], None]]] = {
        "status": (
            [events.status_event(users.status.token) for _ in range(total)],
            _session_status("connected"),
        ),
        "start-session": (
            [events.start_event(users.pairing.token) for _ in range(total)],
            _session_status("pairing"),
        ),
        "send-message": (
            [events.send_event(users.sender.token, f"RTT {i}") for i in range(total)],
            lambda a: None if (a.get("message") or {}).get("status") == "sent" else _fail(a),
        ),
        "qr-webhook": ([event for _, event in webhooks], _ok),
        "purge": ([events.scheduled_event() for _ in range(total)], _purge_ok),
    }
    for function, (batch, check) in batches.items():
        floor = FLOORS[function]
        calls = run_calls(invoke, function, batch, warmup=warmup, check=check, floor=floor)
        out[function] = aggregate(calls, floor)
        if function == "qr-webhook":
            out[function]["by_event_p50"] = by_event_p50(
                [kind for kind, _ in webhooks[warmup:]], calls
            )
    return out


def by_event_p50(kinds: list[str], calls: list[Call]) -> dict[str, dict[str, float]]:
    """Per kind of event: the p50 of the call and of its wait for the database (ms)."""
    grouped: dict[str, list[Call]] = {}
    for kind, call in zip(kinds, calls, strict=True):
        grouped.setdefault(kind, []).append(call)
    return {
        kind: {
            "n": len(got),
            "p50": _p50_ms([c.ns for c in got]),
            "db_wait_p50": _p50_ms([c.db_wait_ns for c in got]),
        }
        for kind, got in grouped.items()
    }


def _fail(answer: Any) -> None:
    raise RuntimeError(f"unexpected answer {answer!r}")
