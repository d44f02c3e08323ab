"""What PostgreSQL itself spent on qr-webhook's events: its function statistics
(``pg_stat_user_functions``, with ``track_functions = 'all'`` set on the bench's database before
any function connects), read before and after the throughput passes.

Each event is one call of ``gateway_ingest_event``, which logs it (``gateway_log_event``) and
applies it: ``gateway_store_inbound`` for a message, ``gateway_store_ack`` for an ack,
``gateway_apply_host_state`` for a QR code or a status. Per kind, the server's time is estimated
as the call's share common to every event (the ingest's own statements and the log) plus the
mean of that kind's own function. What a call waited for beyond that is the commit (an
incoming message waits for the write-ahead log to reach the disk) and the trip through the
socket, the scheduler included: on a busy machine, mostly the latter.
"""

from __future__ import annotations

from typing import Any

import psycopg

from local.devdb import ADMIN_ROLE, as_role

INGEST = "gateway_ingest_event"
LOG = "gateway_log_event"
BY_KIND = {
    "onmessage": "gateway_store_inbound",
    "onack": "gateway_store_ack",
    "status-find": "gateway_apply_host_state",
    "qrcode": "gateway_apply_host_state",
}
TRACKED = (INGEST, LOG, *sorted(set(BY_KIND.values())))

Snapshot = dict[str, tuple[int, float, float]]  # function -> (calls, total ms, self ms)


def enable(dsn: str) -> None:
    """Time every function call in the bench's database, from its next connection on."""
    with psycopg.connect(as_role(dsn, ADMIN_ROLE), autocommit=True) as conn:
        name = conn.execute("select current_database()").fetchone()
        assert name is not None
        conn.execute(
            psycopg.sql.SQL("alter database {} set track_functions = 'all'").format(
                psycopg.sql.Identifier(str(name[0]))
            )
        )


def snapshot(dsn: str) -> Snapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select funcname, calls, total_time, self_time from pg_stat_user_functions"
            " where schemaname = 'public' and funcname = any(%s)",
            (list(TRACKED),),
        ).fetchall()
    return {str(name): (int(calls), float(total), float(own)) for name, calls, total, own in rows}


def message_updates(dsn: str) -> tuple[int, int]:
    """Updates of whatsapp_messages so far, and how many of them were HOT (the row's new version
    on its page, no new index entries): an ack that is not HOT writes every index again."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
            " where relid = 'public.whatsapp_messages'::regclass"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def calls_since(before: Snapshot, after: Snapshot, function: str = INGEST) -> int:
    return after.get(function, (0, 0.0, 0.0))[0] - before.get(function, (0, 0.0, 0.0))[0]


def per_event(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The server's mean time per event (ms), in all and per kind (see the module docstring)."""

    def delta(function: str) -> tuple[int, float, float]:
        b = before.get(function, (0, 0.0, 0.0))
        a = after.get(function, (0, 0.0, 0.0))
        return a[0] - b[0], a[1] - b[1], a[2] - b[2]

    calls, total, own = delta(INGEST)
    if calls <= 0:
        return {}
    _, log_total, _ = delta(LOG)
    common = (own + log_total) / calls
    kinds: dict[str, float] = {}
    for kind, function in BY_KIND.items():
        kind_calls, kind_total, _ = delta(function)
        kinds[kind] = round(common + (kind_total / kind_calls if kind_calls else 0.0), 3)
    return {
        "events": calls,
        "server_ms_per_event": round(total / calls, 3),
        "common_ms": round(common, 3),
        "by_event_server_ms": kinds,
    }
