"""``python -m soak [--duration S] [--users N] ...``: see soak/__init__.py."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "shared") not in sys.path:  # the layer's code, as the gateway imports it
    sys.path.insert(0, str(ROOT / "shared"))

import requests  # noqa: E402

from soak.checks import Check, run_checks  # noqa: E402
from soak.load import Load, Recorder  # noqa: E402
from soak.scheduled import run_phase  # noqa: E402
from soak.stack import Stack, User, local_stack  # noqa: E402

DRAIN_TIMEOUT_S = 60.0


# The run's numeric options: each with its type, default and help (the default is added).
# The local gateway runs one container per function (LOCAL_CONTAINERS), each serving one
# invocation at a time, so more senders only queue behind each other.
OPTIONS: tuple[tuple[str, type, float | int | None, str], ...] = (
    ("--users", int, 24, "linked users"),
    ("--senders", int, 4, "sending threads"),
    ("--churners", int, 3, "users who log out and re-link"),
    ("--incoming-rate", float, 20.0, "messages/s arriving"),
    ("--storm", int, 2, "webhook storm threads"),
    (
        "--lost-phase",
        float,
        None,
        "seconds of sends and incoming messages with webhooks lost at random, then"
        " reconcile passes (none given: a third of --duration; 0: none)",
    ),
    ("--drop-rate", float, 0.1, "webhooks lost in that phase"),
    ("--scheduled-per-user", int, 3, "messages each user schedules (0: no scheduled phase)"),
    ("--host-send-ms", int, 1500, "how long the host takes a send in the scheduled phase"),
    ("--pass-every", float, 5.0, "seconds between the scheduler passes started in that phase"),
    ("--restart-after", float, 5.0, "seconds after the messages are due that the host restarts"),
    ("--host-down", float, 8.0, "seconds the host stays down"),
    ("--scheduled-deadline", float, 300.0, "seconds the scheduled phase may take at most"),
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("SOAK_DURATION", 150)),
        help="seconds of load (default 150, or $SOAK_DURATION)",
    )  # fmt: skip
    for option, kind, default, text in OPTIONS:
        shown = "" if default is None else f" (default {default})"
        parser.add_argument(option, type=kind, default=default, help=text + shown)
    parser.add_argument(
        "--database-url", default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL to make a scratch database in (default: an embedded one)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=ROOT / ".local" / "soak.json")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600 or args.users < args.churners + 1 or args.senders < 1:
        parser.error("need 1 <= duration <= 3600, more users than churners, a sender")
    return args


def link_all(stack: Stack, users: list[User], rec: Recorder) -> list[User]:
    def one(user: User) -> User:
        started = time.perf_counter()
        linked = stack.link(user, requests.Session())
        rec.note("link (start, scan, connected)", (time.perf_counter() - started) * 1000, "200")
        return linked

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, users))


def lost_webhooks_phase(
    stack: Stack, users: list[User], rec: Recorder, args: argparse.Namespace, seconds: float
) -> dict[str, Any]:
    """Sends and incoming messages while the host loses ``--drop-rate`` of its webhooks at
    random (never retried, as when the gateway or the network fails for a moment); the
    reconcile passes after it (as the schedule runs them, until one leaves nothing to the next)
    must leave the same invariants as a run with none lost."""
    stack.sim("POST", "config", {"webhook_drop_rate": args.drop_rate})
    try:
        load = Load(stack, users, rec, deadline=time.monotonic() + seconds)
        threads = [
            threading.Thread(target=load.sender, args=(users[i :: args.senders],))
            for i in range(min(args.senders, len(users)))
        ]
        threads.append(threading.Thread(target=load.receiver, args=(args.incoming_rate,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)
    finally:
        stack.sim("POST", "config", {"webhook_drop_rate": 0.0})
    lost = sum(
        "dropped" in event["results"]
        for user in users
        for event in stack.sim("GET", f"{user.session}/events")["events"]
    )
    return {"webhooks_lost": lost}


def drain(stack: Stack, users: list[User]) -> float:
    """Wait until the host has delivered every webhook (both copies); seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        pending = 0
        for user in users:
            for event in stack.sim("GET", f"{user.session}/events")["events"]:
                lost = "dropped" in event["results"]
                if event["sent"] and len(event["results"]) < 2 and not lost:
                    pending += 1
        if pending == 0:
            time.sleep(1.0)  # acks scheduled after the last sends
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(rec: Recorder, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for op in sorted(rec.stats):
        stat = rec.stats[op]
        count = len(stat.latencies_ms)
        ok = sum(n for outcome, n in stat.statuses.items() if outcome.startswith("2"))
        rows.append(
            {
                "operation": op,
                "count": count,
                "ok": ok,
                "outcomes": dict(stat.statuses),
                "per_second": round(count / seconds, 1) if seconds else 0.0,
                "p50_ms": round(percentile(stat.latencies_ms, 0.50), 1),
                "p99_ms": round(percentile(stat.latencies_ms, 0.99), 1),
                "max_ms": round(max(stat.latencies_ms, default=0.0), 1),
            }
        )
    return rows


def print_report(
    args: argparse.Namespace, rows: list[dict[str, Any]], checks: list[Check], held: float
) -> None:
    print(
        f"\nsoak: {args.duration:.0f} s of load, {args.users} users ({args.churners} re-linking),"
        f" {args.senders} senders, {args.incoming_rate:g} incoming/s, {args.storm} storm threads,"
        " webhooks shuffled and duplicated, then a phase losing"
        f" {args.drop_rate:.0%} of them and reconcile passes until done, then scheduled messages"
        " sent by overlapping scheduler passes through a slow host that restarts\n"
    )
    head = f"{'operation':<34}{'count':>8}{'ok':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
    print(head + f"{'max ms':>9}  other outcomes")
    print("-" * (len(head) + 26))
    for row in rows:
        others = ", ".join(
            f"{n} x {o}" for o, n in sorted(row["outcomes"].items()) if not o.startswith("2")
        )
        print(
            f"{row['operation']:<34}{row['count']:>8}{row['ok']:>8}{row['per_second']:>8}"
            f"{row['p50_ms']:>9}{row['p99_ms']:>9}{row['max_ms']:>9}  {others}"
        )
    print(f"\nheld through the gateway: {held:.1f} requests/s (the host's own controls aside)\n")
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"  {mark} {check.name} ({check.checked} checked)")
        for failure in check.failures:
            print(f"         {failure}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rec = Recorder()
    with local_stack(ROOT / ".local" / "soak", args.database_url) as stack:
        users = link_all(stack, stack.new_users(args.users), rec)
        churners, steady = users[: args.churners], users[args.churners :]
        started = time.monotonic()
        load = Load(stack, users, rec, deadline=started + args.duration)
        threads = [
            threading.Thread(target=load.sender, args=(steady[i :: args.senders],))
            for i in range(min(args.senders, len(steady)))
        ]
        if churners:
            threads.append(threading.Thread(target=load.churn, args=(churners,)))
        threads.append(threading.Thread(target=load.receiver, args=(args.incoming_rate,)))
        threads += [threading.Thread(target=load.storm) for _ in range(args.storm)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.duration + 120)
        lost_phase = args.duration / 3 if args.lost_phase is None else args.lost_phase
        reconciled: dict[str, Any] | None = None
        if lost_phase > 0:
            drain(stack, users)
            reconciled = lost_webhooks_phase(stack, steady, rec, args, lost_phase)
        seconds = time.monotonic() - started
        drained_s = drain(stack, users)
        if reconciled is not None:
            reconciled = {**reconciled, **stack.reconcile_until_done()}
        scheduled: dict[str, Any] | None = None
        if args.scheduled_per_user > 0:
            scheduled = run_phase(stack, users, rec, args, drain)
            drain(stack, users)
        checks = run_checks(stack, users, rec)
        rows = summary(rec, seconds)
    through_gateway = sum(
        r["count"]
        for r in rows
        if r["operation"] not in ("incoming (at the host)",)
        and not r["operation"].startswith("link")
    )
    held = through_gateway / seconds if seconds else 0.0
    print_report(args, rows, checks, held)
    if scheduled is not None:
        print(f"\nscheduled phase: {json.dumps(scheduled)}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "seconds": round(seconds, 1),
        "drain_seconds": round(drained_s, 1),
        "held_requests_per_second": round(held, 1),
        "reconcile_pass": reconciled,
        "scheduled_phase": scheduled,
        "operations": rows,
        "invariants": {c.name: c.as_dict() for c in checks},
        "ok": all(c.ok for c in checks),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
