"""``python -m bench``: run every measurement on a fresh local stack; print the table and write
``.local/bench.json`` (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The layer's code, importable as the gateway has it (PYTHONPATH = shared + the repo root).
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

import psycopg  # noqa: E402

from bench import (  # noqa: E402
    cold,
    conversations,
    keys_and_delivery,
    layer,
    purge_load,
    report,
    sqlstats,
    warm,
    wire,
)
from bench.events import (  # noqa: E402
    context,
    disconnect_event,
    scheduled_event,
    send_event,
    start_event,
    status_event,
)
from bench.machine import MachineMeter  # noqa: E402
from bench.probes import FloorProbe, HostMeter, stdout_to  # noqa: E402
from bench.stack import FUNCTIONS, Stack, User, local_stack  # noqa: E402
from bench.webhooks import WebhookMix  # noqa: E402

OUT = ROOT / ".local"
WIRE_REPEATS = 5
WIRE_DELAY_S = 0.03
DELIVERY_USERS = 8  # users with an endpoint each, for delivery latency and throughput
RTT_MS = 1.0  # Lambda to its database (Supabase's pooler) in one region: about a millisecond


# The counts a run takes: each option with its default, its value in a --quick run, and help.
COUNTS: tuple[tuple[str, int, int, str], ...] = (
    ("--cold-runs", 7, 2, "timed cold starts per function"),
    ("--no-pyc-runs", 3, 1, "cold starts without .pyc"),
    ("--warm-n", 500, 50, "measured warm calls per function"),
    ("--warmup", 20, 5, "unmeasured calls before those"),
    ("--events", 3000, 300, "webhook events for throughput"),
    ("--purge-n", 100_000, 5000, "stale sessions to purge"),
    (
        "--linked-disconnects",
        10,
        2,
        "disconnects of linked sessions (the host holds each logout 0.5 s)",
    ),
    ("--cycle", 50, 10, "pairings cycled by disconnect"),
    ("--fresh-starts", 10, 3, "warm fresh start-sessions"),
    ("--rtt-n", 200, 20, "warm calls per function at RTT_MS"),
    ("--delivery-latency-n", 200, 20, "host events timed to an endpoint"),
    ("--delivery-n", 2000, 200, "deliveries for throughput"),
    ("--inbox-n", 200, 20, "timed conversation pages"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    for option, default, _, text in COUNTS:
        parser.add_argument(option, type=int, default=default, help=text)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small counts")
    parser.add_argument("--output", type=Path, default=OUT / "bench.json")
    args = parser.parse_args(argv)
    if args.quick:
        for option, _, quick, _ in COUNTS:
            setattr(args, option[2:].replace("-", "_"), quick)
    return args


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def take(users: list[User], n: int) -> list[User]:
    taken = users[:n]
    del users[:n]
    return taken


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    OUT.mkdir(exist_ok=True)
    for log in ("functions", "simulator", "gateway"):
        (OUT / f"bench-{log}.log").unlink(missing_ok=True)
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]

    layer_info = layer.measure()
    progress("starting the local stack (embedded PostgreSQL, simulator, gateway)")
    with local_stack(OUT) as stack:
        sqlstats.enable(stack.dsn)
        machine = MachineMeter(postgres_data_dir(stack.dsn))
        cold_n = 1 + args.cold_runs + args.no_pyc_runs  # + the -X importtime run
        wire_n = 1 + 2 * WIRE_REPEATS
        linked_n = 2 + cold_n + args.linked_disconnects + DELIVERY_USERS
        pairing_n = 1 + 5 + args.cycle + wire_n
        fresh_n = cold_n + args.fresh_starts + wire_n
        pool = stack.new_users(linked_n + pairing_n + fresh_n, "bench")
        progress(f"linking {linked_n} users and starting {pairing_n} pairings")
        linked = stack.connect(take(pool, linked_n))
        pairing = stack.start(take(pool, pairing_n))
        fresh = take(pool, fresh_n)
        status_user, sender = linked[0], linked[1]
        delivery_users = take(linked[-DELIVERY_USERS:], DELIVERY_USERS)
        del linked[-DELIVERY_USERS:]
        account_phone = account_phone_of(stack, sender)
        status_key = keys_and_delivery.make_key(stack, status_user, ["read"])

        provider = cold.ColdEvents(
            stack,
            status_user=status_user,
            send_user=sender,
            fresh=take(fresh, cold_n),
            linked=linked[2 : 2 + cold_n],
            status_key=status_key,
        )
        with machine.phase("cold starts"):
            results.update(
                cold.measure(
                    stack,
                    provider,
                    runs=args.cold_runs,
                    no_pyc_runs=args.no_pyc_runs,
                    out_dir=OUT,
                    progress=progress,
                )
            )

        users = warm.WarmUsers(
            status=status_user,
            pairing=pairing[0],
            sender=sender,
            account_phone=account_phone,
            qr_sessions=[u.session or "" for u in pairing[1:6]],
            cycle=pairing[6 : 6 + args.cycle],
            linked=linked[2 + cold_n :],
            fresh=take(fresh, args.fresh_starts),
        )
        wire_pairing = pairing[6 + args.cycle :]
        in_process(stack, args, users, wire_pairing, fresh, results, progress, machine, status_key)
        results.update(
            keys_and_delivery.delivery(
                stack,
                delivery_users,
                latency_n=args.delivery_latency_n,
                throughput_n=args.delivery_n,
                progress=progress,
            )
        )
        progress("a page of conversations, 10,000 messages in 500 chats")
        results["conversations"] = conversations.measure(stack.dsn, n=args.inbox_n)

    results["layer_mb"] = layer_info.get("layer_mb")
    results["layer"] = layer_info
    results["targets"] = report.TARGETS
    results["environment"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "bench_seconds": round(time.monotonic() - progress.started, 1),
        # Other work on the machine skews every figure: the 1-minute load, before and after,
        # and how busy the machine was during each phase, with the bench and with the rest.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "phases": machine.phases,
    }
    ordered = order(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(ordered, indent=2) + "\n")
    print(report.table(ordered))
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nWritten: {shown} and .local/bench-importtime-<function>.txt")
    return 0


def postgres_data_dir(dsn: str) -> Path | None:
    """The embedded server's folder (its socket is there), to count its processes as the
    bench's own; None for a server of its own (``TEST_DATABASE_URL``), counted as others."""
    host = str(psycopg.conninfo.conninfo_to_dict(dsn).get("host") or "")
    return Path(host) if host.startswith("/") and Path(host, "postmaster.pid").exists() else None


def account_phone_of(stack: Stack, user: User) -> str:
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        row = conn.execute(
            "select phone_number from whatsapp_sessions where session_id = %s", (user.session,)
        ).fetchone()
    return str(row[0]) if row and row[0] else "5511912345678"


def in_process(
    stack: Stack,
    args: argparse.Namespace,
    users: warm.WarmUsers,
    wire_pairing: list[User],
    wire_fresh: list[User],
    results: dict[str, Any],
    progress: Progress,
    machine: MachineMeter,
    status_key: str,
) -> None:
    """The handlers loaded once in this process, as the gateway (a warm container) has them."""
    from local.gateway import handlers_in_process
    from wa_gateway import runtime

    with handlers_in_process(stack.env) as handlers:
        meter = HostMeter(stack.sim_url)
        meter.install()
        probe = FloorProbe(stack.dsn, stack.sim_url)
        invoke = warm.Invoker(handlers, meter, probe)
        try:
            with stdout_to(OUT / "bench-functions.log"):
                with machine.phase("warm"):
                    warm_ms, extra, counts, sent = warm.measure(
                        stack, invoke, users, n=args.warm_n, warmup=args.warmup, progress=progress
                    )
                progress(f"throughput: {args.events} qr-webhook events on one core")
                mix = warm.webhook_mix(stack, users, sent, seed=11)
                with machine.phase("webhook throughput"):
                    throughput = warm.throughput(invoke, mix, args.events, counts, stack.dsn)
                progress(f"the key path: status with a token and with an API key, x{args.warm_n}")
                results["key_path"] = keys_and_delivery.key_path(
                    handlers["status"],
                    lambda: status_event(users.status.token),
                    lambda: status_event(status_key),
                    lambda event: context("status", event),
                    lambda: runtime.store().round_trips,
                    n=args.warm_n,
                    warmup=args.warmup,
                )
                progress("round trips on the wire (a protocol proxy, with injected latency)")
                on_wire = wire_phase(stack, handlers, meter, users, wire_pairing, wire_fresh, mix)
                progress(
                    f"warm again, {RTT_MS} ms from the database (a proxy process) x{args.rtt_n}"
                )
                with machine.phase("warm at 1 ms"):
                    rtt = rtt_phase(
                        stack, handlers, meter, users, mix, n=args.rtt_n, warmup=args.warmup
                    )
                purge = purge_load.measure(
                    stack.dsn,
                    invoke,
                    n=args.purge_n,
                    key_id=stack.secrets.encryption_key.split(":", 1)[0],
                    progress=progress,
                )
        finally:
            probe.close()
            meter.uninstall()

        detail = counts.as_json()
        results["warm_ms"] = warm_ms
        results["warm_extra"] = extra
        results["db_round_trips"] = per_function(detail["db"])
        results["db_round_trips_detail"] = detail["db"]
        results["host_calls_detail"] = detail["host"]
        results["db_round_trips_wire"] = on_wire
        results["warm_ms_at_rtt"] = {"rtt_ms": RTT_MS, **rtt}
        results["webhook_events_per_s"] = throughput["events_per_s"]
        results["webhook_throughput"] = throughput
        results["purge_100k_s"] = purge["purge_100k_s"]
        results["purge_100k"] = purge


def per_function(detail: dict[str, Any]) -> dict[str, int]:
    """The most round trips any measured path of each function took."""
    out: dict[str, int] = {}
    for function in FUNCTIONS:
        seen: list[int] = []
        for label, value in detail.items():
            if label == function or label.startswith((f"{function} ", f"{function}:")):
                seen.extend([int(k) for k in value] if isinstance(value, dict) else [value])
        if seen:
            out[function] = max(seen)
    return out


def close_store() -> None:
    """Close the connections of the store built so far, before building another."""
    from wa_gateway import runtime

    transport = getattr(runtime.store(), "transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        close()


def use_database(dsn: str) -> None:
    """Point the in-process functions at ``dsn``, as a new container would be."""
    from wa_gateway import runtime

    close_store()
    os.environ["DATABASE_URL"] = dsn
    runtime.reset()


def rtt_phase(
    stack: Stack,
    handlers: dict[str, warm.Handler],
    meter: HostMeter,
    users: warm.WarmUsers,
    mix: WebhookMix,
    *,
    n: int,
    warmup: int,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.wire", "--target", stack.dsn, "--rtt-ms", str(RTT_MS)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proxy = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    probe = None
    try:
        assert proxy.stdout is not None
        dsn = proxy.stdout.readline().decode().strip()  # the proxy prints it once listening
        if not dsn:
            raise RuntimeError("the latency proxy did not start")
        use_database(dsn)
        probe = FloorProbe(dsn, stack.sim_url)
        return warm.at_rtt(warm.Invoker(handlers, meter, probe), users, mix, n=n, warmup=warmup)
    finally:
        if probe is not None:
            probe.close()
        use_database(stack.dsn)
        if proxy.stdin is not None:
            proxy.stdin.close()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


def wire_phase(
    stack: Stack,
    handlers: dict[str, warm.Handler],
    meter: HostMeter,
    users: warm.WarmUsers,
    pairing: list[User],
    fresh: list[User],
    mix: WebhookMix,
) -> dict[str, Any]:
    proxy = wire.PgProxy(stack.dsn)
    use_database(proxy.start())
    invoke = warm.Invoker(handlers, meter, None)
    fresh_users = iter(fresh)
    pairing_users = iter(pairing)
    count = iter(range(10**6))

    def check(label: str, function: str, make: Any) -> wire.WireCheck:
        return wire.WireCheck(label, lambda: (function, make()))

    checks = [
        check("status", "status", lambda: status_event(users.status.token)),
        check("start-session (idempotent)", "start-session",
              lambda: start_event(users.pairing.token)),
        check("start-session (fresh start)", "start-session",
              lambda: start_event(next(fresh_users).token)),
        check("send-message", "send-message",
              lambda: send_event(users.sender.token, f"Wire check {next(count)}")),
        *[check(f"qr-webhook: {kind}", "qr-webhook", lambda kind=kind: mix.event(kind))
          for kind in ("qrcode", "status-find", "onmessage", "onack")],
        check("disconnect (pairing)", "disconnect",
              lambda: disconnect_event(next(pairing_users).token)),
        check("purge (nothing to purge)", "purge", scheduled_event),
    ]  # fmt: skip
    try:
        return wire.verify(proxy, invoke, checks, delay_s=WIRE_DELAY_S, repeats=WIRE_REPEATS)
    finally:
        use_database(stack.dsn)
        proxy.stop()


KEY_ORDER = (
    "cold_init_ms",
    "warm_ms",
    "db_round_trips",
    "webhook_events_per_s",
    "delivery_latency_ms",
    "deliveries_per_s",
    "purge_100k_s",
    "layer_mb",
    "peak_rss_mb",
)


def order(results: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: results.get(key) for key in KEY_ORDER}
    ordered.update({k: v for k, v in results.items() if k not in ordered})
    return ordered


if __name__ == "__main__":
    sys.exit(main())
