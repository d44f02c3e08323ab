"""The local stack's stand-in for the PostgREST reads the demo page makes.

In production the page reads its own rows straight from Supabase
(``GET <SUPABASE_URL>/rest/v1/whatsapp_messages?select=...&order=...&limit=...``, with the
user's token, so RLS decides). The local stack has no PostgREST, so the gateway answers that
shape itself, the same way: the token is checked with the functions' own verifier, and the
query runs as the user (``role`` and ``request.jwt.claims`` set for the transaction, as
PostgREST sets them). What a user may read is decided by the database alone, as in
production: the tables' column grants and RLS. A column the role may not select, ``select=*``
on a table with private columns, or a table it may not read are refused with the answer
PostgREST gives. Exists only in the local stack.

Supported: ``GET /rest/v1/<table>`` with ``select`` (plain column names or ``*``),
``<column>=eq.<value>`` filters, ``order`` (``<column>.asc`` or ``<column>.desc``) and
``limit``: what supabase-js's ``from(...).select(...).eq(...).order(...).limit(...)`` sends.
Anything else is refused with PostgREST's error shape rather than half-answered.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from psycopg import sql

from wa_gateway.errors import ApiError
from wa_gateway.tokens import TokenVerifier, bearer_token

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_ROWS = 1000


def read(
    dsn: str, verifier: TokenVerifier, path: str, query: str, authorization: str | None
) -> tuple[int, Any]:
    """(status, JSON body) for ``GET /rest/v1/<table>?<query>``, answered like PostgREST."""
    table = path.removeprefix("/rest/v1/")
    if not _NAME.match(table):
        return 404, _error("42P01", f'relation "public.{table}" does not exist')
    try:
        caller = verifier.verify(bearer_token(authorization))
    except ApiError as exc:
        code = "PGRST303" if exc.code == "token_expired" else "PGRST301"
        return 401, _error(code, exc.message)

    columns: list[str] | None = None  # None: select *, as PostgREST without ``select``
    filters: list[tuple[str, str]] = []
    order: tuple[str, str] | None = None
    limit: int | None = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "select":
            columns = None if value.strip() == "*" else [c.strip() for c in value.split(",")]
        elif key == "order":
            column, _, direction = value.partition(".")
            if direction not in ("asc", "desc"):
                return 400, _error("PGRST100", f"'{value}': use <column>.asc or <column>.desc")
            order = (column, direction)
        elif key == "limit":
            if not value.isdigit():
                return 400, _error("PGRST100", "'limit' must be a whole number")
            limit = min(int(value), MAX_ROWS)
        elif _NAME.match(key) and value.startswith("eq."):
            filters.append((key, value.removeprefix("eq.")))
        else:
            return 400, _error("PGRST100", f"'{key}' is not supported by the local dev reads")
    named = [*(columns or []), *(c for c, _ in filters), *([order[0]] if order else [])]
    for column in named:
        if not _NAME.match(column):
            return 400, _error("PGRST100", f"'{column}' is not a column name")

    statement = sql.SQL("select {columns} from {table}").format(
        columns=sql.SQL("*")
        if columns is None
        else sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        table=sql.Identifier("public", table),
    )
    if filters:  # an untyped literal, as PostgREST sends it: Postgres casts it to the column's type
        statement += sql.SQL(" where ") + sql.SQL(" and ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(v)) for c, v in filters
        )
    if order:
        statement += sql.SQL(" order by {} {}").format(
            sql.Identifier(order[0]), sql.SQL("desc" if order[1] == "desc" else "asc")
        )
    statement += sql.SQL(" limit {}").format(sql.Literal(limit if limit is not None else MAX_ROWS))
    wrapped = sql.SQL("select coalesce(json_agg(t), '[]'::json) from ({}) t").format(statement)

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn, conn.transaction():
            conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true)",
                (json.dumps(caller.claims),),
            )
            row = conn.execute(wrapped).fetchone()
    except psycopg.OperationalError:
        return 503, _error("PGRST000", "The local database is unavailable.")
    except psycopg.Error as exc:  # answered with the database's own code, as PostgREST does
        code = exc.sqlstate or "XX000"
        return _STATUS_OF.get(code, 400), _error(code, str(exc.diag.message_primary or exc))
    return 200, row[0] if row else []


# PostgREST's status for the database errors a read can meet (its Error.hs; 42501 is 403 for
# a signed-in role, 401 for anon: these reads always run as a signed-in user).
_STATUS_OF = {"42501": 403, "42P01": 404, "42703": 400, "57014": 503, "53300": 503}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "details": None, "hint": None, "message": message}
