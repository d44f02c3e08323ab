"""The purge over 100,000 stale sessions: inserted by one statement (users in auth.users,
sessions disconnected 8 days ago, their encrypted-token rows), then one scheduled invocation of
the warm purge handler, timed, with the time of every batch (each batch is one transaction, so
its time bounds how long it holds its row locks)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from bench import events
from bench.probes import percentile

INSERT = """
with users as (
  insert into auth.users (id, email)
  select gen_random_uuid(), format('stale-%%s-%%s@example.com', %(tag)s::text, g)
  from generate_series(1, %(n)s::int) g
  returning id
), sessions as (
  insert into public.whatsapp_sessions
    (user_id, session_id, status, disconnected_at, updated_at, last_activity, created_at)
  select id, 'user_' || id, 'disconnected', now() - interval '8 days',
         now() - interval '8 days', now() - interval '8 days', now() - interval '30 days'
  from users
  returning id
)
insert into public.whatsapp_session_secrets (session_id, host_token)
select id, 'v1.' || %(key_id)s::text || '.' || md5(id::text) from sessions
"""

STALE = """
select count(*) from public.whatsapp_sessions
where status = 'disconnected' and coalesce(disconnected_at, updated_at) < now() - interval '7 days'
"""


def measure(
    dsn: str,
    invoke: Callable[[str, dict[str, Any]], tuple[Any, Any]],
    *,
    n: int,
    key_id: str,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    from wa_gateway import runtime

    progress(f"purge: inserting {n:,} stale sessions")
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(INSERT, {"tag": uuid.uuid4().hex[:8], "n": n, "key_id": key_id})
        inserted_s = time.perf_counter() - started
        # As autovacuum would have long since done for rows that took days to go stale.
        conn.execute(
            "analyze auth.users, public.whatsapp_sessions, public.whatsapp_session_secrets"
        )
        row = conn.execute(STALE).fetchone()
        stale_before = int(row[0]) if row else 0

    store = runtime.store()
    batches: list[float] = []
    original = getattr(store, "purge_batch", None)
    if original is not None:

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                batches.append(time.perf_counter() - t0)

        store.purge_batch = timed  # type: ignore[method-assign]
    progress(f"purge: purging {stale_before:,} stale sessions")
    rss_before = _reset_peak_rss()
    try:
        started = time.perf_counter()
        report, call = invoke("purge", events.scheduled_event())
        elapsed = time.perf_counter() - started
    finally:
        if original is not None:
            del store.purge_batch

    rss_peak = _peak_rss()
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(STALE).fetchone()
        stale_after = int(row[0]) if row else 0
    return {
        "purge_100k_s": round(elapsed, 2),
        "stale_before": stale_before,
        "stale_after": stale_after,
        "insert_s": round(inserted_s, 2),
        "batches": len(batches),
        "batch_max_s": round(max(batches), 3) if batches else None,
        "batch_p50_s": round(percentile(batches, 50), 3) if batches else None,
        "db_round_trips": call.db,
        "host_calls": call.host,
        # This process's resident memory before the purge and at its peak during it (Linux):
        # the difference bounds what the purge itself held.
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_peak,
        "report": report,
    }


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _reset_peak_rss() -> float | None:
    """Reset the peak resident set size (VmHWM) to the current one; return the current one."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def _peak_rss() -> float | None:
    return _status_mb("VmHWM")
