"""Transport over a direct PostgreSQL connection (psycopg 3).

Used by the local stack and the tests, and in production through Supabase's connection pooler.
Each call is one transaction sent as one query string, so one network round trip:

    select set_config('role', ...), set_config('request.jwt.claims', ...),
           set_config('statement_timeout', ...);
    select public.<function>(...), current_setting('response.headers', true);

Two statements in one query message are one transaction of their own (PostgreSQL's implicit
transaction block), and ``set_config(..., true)`` lasts to its end: the role and claims
PostgREST applies to every request, so Row Level Security sees the same either way. The
second column reads, after the call, what PostgREST would turn into response headers: the
transaction's note that it queued deliveries to users' endpoints (``DELIVERIES_HEADER``).
Nothing is left behind between calls: a call that fails rolls back its transaction and leaves
the connection idle for the next one (an explicit ``begin`` would leave it in a failed
transaction block, to be thrown away). No prepared statements are used, which keeps the
pooler's transaction mode happy. Connections are kept and reused across warm invocations: one
per concurrent caller, which in Lambda means one.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from wa_gateway.errors import StoreUnavailable
from wa_gateway.store.failures import (
    CONNECTION_LOST,
    Retry,
    failure_of_sqlstate,
    may_send_again,
)
from wa_gateway.store.transport import DELIVERIES_HEADER, Call, Transport, deliveries_queued

_FUNCTION_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARAMETER_NAME = re.compile(r"^p_[a-z0-9_]+$")


class PostgresTransport(Transport):
    def __init__(self, dsn: str, *, timeout_s: float = 5.0, max_idle: int = 4):
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._max_idle = max_idle
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self.round_trips = 0

    def send(self, call: Call) -> Any:
        statement = _statement(call.function, tuple(call.params))
        if call.caller is None:
            role, claims = "service_role", {"role": "service_role"}
        else:
            role, claims = "authenticated", {**call.caller.claims, "role": "authenticated"}
        values = {
            k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in call.params.items()
        }
        values.update(
            _role=role, _claims=json.dumps(claims), _timeout=str(int(self._timeout_s * 1000))
        )

        for attempt in (1, 2):
            conn, reused = self._checkout()
            try:
                row = self._run(conn, statement, values)
            except psycopg.Error as exc:
                retry = failure_of_sqlstate(exc.sqlstate)
                lost = conn.closed or conn.broken
                self._release_after_error(conn)
                if lost and retry is not Retry.SAFE:
                    retry = CONNECTION_LOST
                    if reused:
                        self.close()  # the other kept connections died with this one
                if retry is None:
                    raise
                # A kept connection may have died while the container was frozen or the
                # database restarted: tried again on a fresh one if the call is repeatable.
                again = may_send_again(retry, repeatable=call.repeatable and reused)
                if attempt == 2 or not again:
                    raise StoreUnavailable() from exc
                continue
            except BaseException:
                self._release_after_error(conn)
                raise
            self._checkin(conn)
            return None if row is None else row[0]
        raise AssertionError("unreachable")

    def _run(
        self, conn: psycopg.Connection[Any], statement: bytes, values: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        self.round_trips += 1
        with psycopg.ClientCursor(conn) as cursor:
            cursor.execute(statement, values)
            cursor.nextset()  # past the settings, to the call's row
            row = cursor.fetchone()
        if row is None:
            return None
        if row[-1] and DELIVERIES_HEADER in row[-1]:
            deliveries_queued.set(True)
        return row[:-1]

    def _release_after_error(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
        else:
            self._checkin(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> tuple[psycopg.Connection[Any], bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect(), False
            if not conn.closed and not conn.broken:
                return conn, True

    def _checkin(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed:
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._dsn,
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=max(1, round(self._timeout_s)),
                application_name="wa-gateway",
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable() from exc


@functools.lru_cache(maxsize=128)
def _statement(function: str, names: tuple[str, ...]) -> bytes:
    """One call as one simple-protocol query holding the whole transaction, so one network
    round trip. The values are bound client-side as quoted literals (ClientCursor), which is
    what lets several statements travel together. Composed once per function and set of
    parameters: a warm container only binds the values."""
    if not _FUNCTION_NAME.match(function):
        raise ValueError(f"not a function name: {function!r}")
    for name in names:  # also keeps clear of the _role, _claims and _timeout placeholders
        if not _PARAMETER_NAME.match(name):
            raise ValueError(f"not a parameter name: {name!r}")
    call = sql.SQL("select {}.{}({})").format(
        sql.Identifier("public"),
        sql.Identifier(function),
        sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in names
        ),
    )
    return (
        sql.SQL(
            "select set_config('role', %(_role)s, true),"
            " set_config('request.jwt.claims', %(_claims)s, true),"
            " set_config('statement_timeout', %(_timeout)s, true);"
            " {call}, current_setting('response.headers', true)"
        )
        .format(call=call)
        .as_bytes(None)
    )
