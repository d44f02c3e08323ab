"""The targets, and the table printed at the end of a run."""

from __future__ import annotations

from typing import Any

TARGETS: dict[str, Any] = {
    "cold_init_ratio_max": 0.5,
    "cold_init_ratio_aim": 0.35,
    "warm_ratio_max": 1.5,
    "db_round_trips_max": {"status": 1, "qr-webhook": 1, "send-message": 2, "start-session": 2},
    "webhook_events_per_s_min": 1000,
    "delivery_latency_p50_ms_max": 2000,
    "key_path_ratio_max": 1.5,
    "purge_100k_s_max": 10.0,
    "purge_batch_s_max": 1.0,
    "layer_mb_max": 60,  # deploy.mk's LAYER_BUDGET_MB
    "peak_rss_mb_max": 128,  # half of a 256 MB function: room to spare
    "inbox_page_ms_max": 20,  # a page of conversations, 10,000 messages in 500 chats
}


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _mark(ok: bool | None) -> str:
    return "  -  " if ok is None else (" ok  " if ok else " MISS")


def machine(environment: dict[str, Any], lines: list[str]) -> None:
    """How busy the machine was in each phase: a slow machine, or a slow product."""
    phases = environment.get("phases") or {}
    if not phases:
        return
    title = (
        f"The machine ({environment.get('cpus')} cores): 1-minute load and CPU in use, in cores"
        " (the bench with its servers / everything else)"
    )
    lines.append(title)
    lines.append("-" * len(title))
    for name, p in phases.items():
        load = " -> ".join(f"{v:.2f}" for v in p["load_1m"])
        lines.append(
            f"{name:<22}{p['seconds']:>7.1f} s   load {load:<14}busy {p['busy_cores']:.2f}:"
            f" bench {p['bench_cores']:.2f}, others {p['other_cores']:.2f}"
        )
        top = ", ".join(f"{o['name']} {o['cores']:.2f}" for o in p.get("top_others") or ())
        if top:
            lines.append(f"{'':<22}  the others' largest: {top}")


def table(results: dict[str, Any]) -> str:
    t = TARGETS
    lines: list[str] = []

    def row(label: str, value: str, target: str, ok: bool | None) -> None:
        lines.append(f"{label:<34}{value:>30}  {target:<14}{_mark(ok)}")

    def rule(title: str) -> None:
        lines.append("")
        lines.append(title)
        lines.append("-" * len(title))

    machine(results.get("environment") or {}, lines)
    cold = results.get("cold_init_ms") or {}
    base = results.get("cold_baseline") or {}
    rule(
        f"Cold start: spawn -> first answer, median of {base.get('runs', '?')} "
        f"(baseline imports: {base.get('median', '?')} ms)"
    )
    lines.append(f"{'function':<34}{'median ms (import+request)':>30}  {'ratio target':<14}")
    for function, c in cold.items():
        value = (
            f"{c['median']:.0f} ({c['import_median']:.0f}+{c['first_request_median']:.0f})"
            f"  x{c['ratio']:.2f}"
        )
        row(
            function,
            value,
            f"<= {t['cold_init_ratio_max']}",
            c["ratio"] <= t["cold_init_ratio_max"],
        )
    no_pyc = results.get("cold_init_no_pyc_ms") or {}
    if no_pyc:
        lines.append("  as Lambda runs the layer (no .pyc), median ms:")
        for function, c in no_pyc.items():
            lines.append(
                f"    {function:<30}{c['median']:>30.0f}  (+{c['extra_vs_pyc_ms']:.0f} ms)"
            )
    cold = results.get("cold_init_ms") or {}
    for title, median, ratio in (
        ("the same function's libraries alone (no gateway code)", "library_floor_median",
         "library_floor_ratio"),
        ("without the time spent waiting for the host", "median_excl_host_wait",
         "ratio_excl_host_wait"),
    ):  # fmt: skip
        shown = {f: c for f, c in cold.items() if median in c}
        if shown:
            lines.append(f"  {title}, median ms / ratio:")
        for function, c in shown.items():
            lines.append(f"    {function:<30}{f'{c[median]:.0f}  x{c[ratio]:.2f}':>30}")
    secrets_extra = results.get("cold_secrets_arn_extra_ms") or {}
    if secrets_extra:
        lines.append(
            "  deployed with SECRETS_ARN, each cold start adds, before Secrets Manager answers"
            " (not in the figures above):"
        )
        for label, ms in secrets_extra.items():
            lines.append(f"    {label:<50}{ms:>10.0f} ms")
    transports = results.get("cold_transport_import_ms") or {}
    if transports:
        lines.append("  a fresh interpreter importing only the store's transport, median ms:")
        first = next(iter(transports.values()))
        for label, ms in transports.items():
            extra = f"  (+{ms - first:.0f} ms)" if ms != first else ""
            lines.append(f"    {label:<40}{ms:>20.0f}{extra}")

    warm = results.get("warm_ms") or {}
    rule("Warm, in-process: p50 / p99 against the floor's p50 (ms)")
    lines.append(f"{'function':<34}{'p50 / p99 / floor  ratio':>30}  {'target':<14}")
    for function, w in warm.items():
        value = f"{w['p50']:.2f} / {w['p99']:.2f} / {w['floor_p50']:.2f}  x{w['ratio']:.2f}"
        label = function + (f" ({w['path']})" if w.get("path") else "")
        row(label, value, f"<= {t['warm_ratio_max']}", w["ratio"] <= t["warm_ratio_max"])
        parts = w.get("breakdown_p50") or {}
        if parts:
            lines.append(
                f"    p50 parts: database {parts['db_wait']:.2f}, host {parts['host_wait']:.2f},"
                f" gateway's own code {parts['own']:.2f}; db round trips {w['db_round_trips']}"
            )
        if "ratio_host_adjusted" in w:
            lines.append(
                f"    host calls {w['host_calls']}, host wait p50 {w['host_wait_p50']:.2f} ms,"
                f" ratio with the host's real time as floor x{w['ratio_host_adjusted']:.2f}"
            )
    for label, w in (results.get("warm_extra") or {}).items():
        value = f"{w['p50']:.2f} / {w['p99']:.2f} / {w['floor_p50']:.2f}  x{w['ratio']:.2f}"
        row(f"{label} n={w['n']}", value, "(info)", None)

    rtt = dict(results.get("warm_ms_at_rtt") or {})
    rtt_ms = rtt.pop("rtt_ms", None)
    if rtt:
        rule(f"Warm with {rtt_ms} ms between the functions and the database (floor alike)")
        for function, w in rtt.items():
            value = f"{w['p50']:.2f} / {w['p99']:.2f} / {w['floor_p50']:.2f}  x{w['ratio']:.2f}"
            limit = t["warm_ratio_max"]
            row(f"{function} n={w['n']}", value, f"<= {limit}", w["ratio"] <= limit)
            for kind, k in (w.get("by_event_p50") or {}).items():
                lines.append(
                    f"    {kind:<30}p50 {k['p50']:.2f} ms, waiting for the database"
                    f" {k['db_wait_p50']:.2f} (n={k['n']})"
                )

    trips = results.get("db_round_trips") or {}
    wire = results.get("db_round_trips_wire") or {}
    rule("Database round trips per operation (transport count; wire: transactions, waits)")
    for function, count in trips.items():
        target = t["db_round_trips_max"].get(function)
        row(
            function,
            str(count),
            f"<= {target}" if target else "",
            None if target is None else count <= target,
        )
    for label, w in wire.items():
        lines.append(
            f"    {label:<40} counted {w['counted_by_transport']}, on the wire "
            f"{w['transactions']} tx, {w['statements']} statements, {w['syncs']} syncs, "
            f"waits {w['network_round_trips']}"
        )

    key = results.get("key_path") or {}
    latency = results.get("delivery_latency_ms") or {}
    if key or latency:
        rule("API keys and event delivery")
    if key:
        value = f"{key['key']['p50']:.2f} / {key['token']['p50']:.2f}  x{key['ratio_p50']:.2f}"
        limit = t["key_path_ratio_max"]
        row("status p50: key / token (ms)", value, f"<= {limit}", key["ratio_p50"] <= limit)
        lines.append(
            f"    p99 {key['key']['p99']:.2f} / {key['token']['p99']:.2f} ms; database round"
            f" trips per call {key['key']['db_round_trips']} / {key['token']['db_round_trips']}"
        )
    if latency:
        limit = t["delivery_latency_p50_ms_max"]
        value = f"{latency['p50']:.1f} / {latency['p99']:.1f}"
        row(
            "host event -> endpoint p50 / p99 ms", value, f"p50 <= {limit}", latency["p50"] <= limit
        )
        tp = results.get("delivery_throughput") or {}
        lines.append(
            f"    deliveries_per_s {results.get('deliveries_per_s')}"
            f" ({tp.get('deliveries')} over {tp.get('endpoints')} endpoints"
            f" in {tp.get('seconds')} s)"
        )

    rule("Throughput, purge, size, memory")
    eps = results.get("webhook_events_per_s")
    floor_eps = t["webhook_events_per_s_min"]
    value = f"{eps:,}" if eps else "-"
    row("webhook_events_per_s (one core)", value, f">= {floor_eps:,}", _at_least(eps, floor_eps))
    tp = results.get("webhook_throughput") or {}
    if tp.get("passes_events_per_s"):
        passes = ", ".join(f"{r:,}" for r in tp["passes_events_per_s"])
        lines.append(f"    {'passes (the median is the figure)':<40}{passes:>20}")
    server = tp.get("server") or {}
    if server:
        lines.append(
            f"    the server's SQL per event: {server['server_ms_per_event']:.3f} ms"
            f" (PostgreSQL's function statistics, {server['events']} events)"
        )
    updates = tp.get("message_updates") or {}
    if updates.get("updates"):
        share = updates["hot"] / updates["updates"]
        lines.append(
            f"    messages updated {updates['updates']} times, {updates['hot']} of them HOT"
            f" ({share:.0%}; not HOT: every index of the table written again)"
        )
    lines.append(
        f"    {'per event, mean ms':<30}{'each':>8}{'own code':>10}{'SQL':>8}{'commit+wire':>13}"
    )
    for kind, k in (tp.get("by_event") or {}).items():
        sql = "-" if k.get("sql_ms") is None else f"{k['sql_ms']:.2f}"
        rest = "-" if k.get("commit_and_wire_ms") is None else f"{k['commit_and_wire_ms']:.2f}"
        lines.append(
            f"    {kind + ' (' + format(k['events_per_s'], ',') + '/s)':<30}{k['mean_ms']:>8.2f}"
            f"{k['own_ms']:>10.2f}{sql:>8}{rest:>13}"
        )
    purge = results.get("purge_100k") or {}
    seconds = results.get("purge_100k_s")
    limit = t["purge_100k_s_max"]
    row("purge_100k_s", f"{seconds}", f"<= {limit}", _at_most(seconds, limit))
    if purge:
        batch = purge.get("batch_max_s")
        limit = t["purge_batch_s_max"]
        value = f"{batch} ({purge.get('batches')} batches)"
        row("  longest batch (lock time) s", value, f"<= {limit}", _at_most(batch, limit))
        if purge.get("rss_peak_mb") is not None:
            lines.append(
                f"    resident memory of the purging process: {purge.get('rss_before_mb')} MB"
                f" before, {purge['rss_peak_mb']} MB at the peak"
            )
    inbox = results.get("conversations") or {}
    limit = t["inbox_page_ms_max"]
    for case in ("first_page", "next_page", "chat_page"):
        if case in inbox:
            value = f"{inbox[case]['median_ms']} (p90 {inbox[case]['p90_ms']})"
            row(
                f"inbox {case} ms (server)",
                value,
                f"<= {limit}",
                _at_most(inbox[case]["p90_ms"], limit),
            )
    layer_mb = results.get("layer_mb")
    limit = t["layer_mb_max"]
    row("layer_mb (unzipped)", f"{layer_mb}", f"<= {limit}", _at_most(layer_mb, limit))
    for function, mb in (results.get("peak_rss_mb") or {}).items():
        row(
            f"peak_rss_mb {function}",
            f"{mb}",
            f"<= {t['peak_rss_mb_max']}",
            mb <= t["peak_rss_mb_max"],
        )
    return "\n".join(lines)
