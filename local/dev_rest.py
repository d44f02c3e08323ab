"""The local stack's stand-in for the PostgREST calls the demo page makes.

In production the page reads its own rows straight from Supabase
(``GET <SUPABASE_URL>/rest/v1/whatsapp_messages?select=...&order=...&limit=...``, with the
user's token, so RLS decides) and writes the one table users write themselves
(``whatsapp_templates``: insert, update, delete). The local stack has no PostgREST, so the
gateway answers those shapes itself, the same way: the token is checked with the functions'
own verifier, and the statement runs as the user (``role`` and ``request.jwt.claims`` set for
the transaction, as PostgREST sets them). What a user may read or write is decided by the
database alone, as in production: the tables' column grants, RLS and checks. A column the role
may not select, ``select=*`` on a table with private columns, a table (or view) it may not
read, a row RLS refuses to add and a value a check refuses are answered as PostgREST answers
them. Exists only in the local stack.

Supported, as supabase-js sends them:

* ``GET /rest/v1/<table or view>`` with ``select`` (plain column names or ``*``), filters
  ``<column>=<op>.<value>`` (``eq``, ``neq``, ``gt``, ``gte``, ``lt``, ``lte``), ``order``
  (``<column>.asc`` or ``<column>.desc``) and ``limit``: 200 with the rows.
* ``POST /rest/v1/<table>`` with a JSON object or array of objects (``columns`` as supabase-js
  sets it for arrays; ``Prefer: missing=default``): 201, with the rows added when
  ``Prefer: return=representation`` (and ``select`` the columns to return), else no body.
* ``PATCH`` (a JSON object of new values) and ``DELETE`` with the same filters: 204, or 200 with
  the rows changed under ``return=representation``. Rows RLS hides are not there to change: a
  PATCH or DELETE that matches nothing answers 204 (or ``[]``), as PostgREST does.

Anything else is refused with PostgREST's error shape rather than half-answered.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from psycopg import sql

from wa_gateway.auth.caller import Caller
from wa_gateway.auth.tokens import TokenVerifier, bearer_token
from wa_gateway.errors import ApiError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_ROWS = 1000
_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

Answer = tuple[int, Any]  # (HTTP status, JSON body; None for no body)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.answer: Answer = (status, _error(code, message))


def read(
    dsn: str, verifier: TokenVerifier, path: str, query: str, authorization: str | None
) -> Answer:
    """(status, JSON body) for ``GET /rest/v1/<table>?<query>``, answered like PostgREST."""
    try:
        table, caller = _target(verifier, path, authorization)
        params = _Params.parse(query, allowed={"select", "order", "limit"})
    except _Refused as refused:
        return refused.answer

    statement = sql.SQL("select {columns} from {table}").format(
        columns=_columns(params.select), table=sql.Identifier("public", table)
    )
    statement += params.where()
    if params.order:
        column, direction = params.order
        statement += sql.SQL(" order by {} {}").format(
            sql.Identifier(column), sql.SQL("desc" if direction == "desc" else "asc")
        )
    limit = params.limit if params.limit is not None else MAX_ROWS
    statement += sql.SQL(" limit {}").format(sql.Literal(limit))
    return _run(dsn, caller, statement, 200)


def write(
    dsn: str,
    verifier: TokenVerifier,
    method: str,
    path: str,
    query: str,
    authorization: str | None,
    prefer: str | None,
    body: bytes,
) -> Answer:
    """(status, JSON body or None) for ``POST``, ``PATCH`` or ``DELETE /rest/v1/<table>``,
    answered like PostgREST."""
    try:
        table, caller = _target(verifier, path, authorization)
        params = _Params.parse(query, allowed={"select", "columns"})
        preferences = {p.strip() for p in (prefer or "").split(",") if p.strip()}
        representation = "return=representation" in preferences
        target = sql.Identifier("public", table)
        if method == "POST":
            statement = _insert(target, params, _json_body(body), "missing=default" in preferences)
            success = 201
        elif method == "PATCH":
            changes = _json_body(body)
            if not isinstance(changes, dict):
                raise _Refused(400, "PGRST102", "A PATCH body must be one JSON object.")
            if not changes:  # nothing to set: PostgREST changes nothing either
                return (200, []) if representation else (204, None)
            statement = sql.SQL("update {} set {}").format(
                target,
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(_column(c)), _literal(v))
                    for c, v in changes.items()
                ),
            )
            statement += params.where()
            success = 204
        elif method == "DELETE":
            statement = sql.SQL("delete from {}").format(target) + params.where()
            success = 204
        else:
            raise _Refused(405, "PGRST117", f"Unsupported HTTP method: {method}")
    except _Refused as refused:
        return refused.answer

    if not representation:
        return _run(dsn, caller, statement, success, rows=False)
    statement += sql.SQL(" returning {}").format(_columns(params.select))
    return _run(dsn, caller, statement, 200 if success == 204 else success)


def _target(verifier: TokenVerifier, path: str, authorization: str | None) -> tuple[str, Caller]:
    table = path.removeprefix("/rest/v1/")
    if not _NAME.match(table):
        raise _Refused(404, "42P01", f'relation "public.{table}" does not exist')
    try:
        caller = verifier.verify(bearer_token(authorization))
    except ApiError as exc:
        raise _Refused(
            401, "PGRST303" if exc.code == "token_expired" else "PGRST301", exc.message
        ) from exc
    return table, caller


class _Params:
    """The query string: ``select``, ``columns``, filters, ``order``, ``limit``."""

    def __init__(self) -> None:
        self.select: list[str] | None = None  # None: *, as PostgREST without ``select``
        self.columns: list[str] | None = None
        self.filters: list[tuple[str, str, str]] = []
        self.order: tuple[str, str] | None = None
        self.limit: int | None = None

    @classmethod
    def parse(cls, query: str, *, allowed: set[str]) -> _Params:
        params = cls()
        for key, value in parse_qsl(query, keep_blank_values=True):
            operator, _, operand = value.partition(".")
            if key in allowed and key == "select":
                names = None if value.strip() == "*" else [c.strip() for c in value.split(",")]
                params.select = None if names is None else [_column(c) for c in names]
            elif key in allowed and key == "columns":
                params.columns = [_column(c.strip().strip('"')) for c in value.split(",")]
            elif key in allowed and key == "order":
                if operand not in ("asc", "desc"):
                    raise _Refused(400, "PGRST100", f"'{value}': use <column>.asc or <column>.desc")
                params.order = (_column(operator), operand)
            elif key in allowed and key == "limit":
                if not value.isdigit():
                    raise _Refused(400, "PGRST100", "'limit' must be a whole number")
                params.limit = min(int(value), MAX_ROWS)
            elif _NAME.match(key) and operator in _OPERATORS:
                params.filters.append((key, operator, operand))
            else:
                raise _Refused(400, "PGRST100", f"'{key}' is not supported by the local stand-in")
        return params

    def where(self) -> sql.Composable:
        if not self.filters:
            return sql.SQL("")
        # An untyped literal, as PostgREST sends it: Postgres casts it to the column's type.
        return sql.SQL(" where ") + sql.SQL(" and ").join(
            sql.SQL("{} {} {}").format(sql.Identifier(c), sql.SQL(_OPERATORS[op]), sql.Literal(v))
            for c, op, v in self.filters
        )


def _insert(
    target: sql.Identifier, params: _Params, payload: Any, missing_default: bool
) -> sql.Composed:
    rows = payload if isinstance(payload, list) else [payload]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise _Refused(400, "PGRST102", "Insert a JSON object or an array of JSON objects.")
    names = params.columns or list(dict.fromkeys(k for r in rows for k in r))
    columns = [_column(n) for n in names]
    if not columns:
        raise _Refused(400, "PGRST102", "Name at least one column to insert.")
    missing = sql.DEFAULT if missing_default else sql.NULL
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(
            sql.SQL(", ").join(_literal(r[c]) if c in r else missing for c in columns)
        )
        for r in rows
    )
    return sql.SQL("insert into {} ({}) values {}").format(
        target, sql.SQL(", ").join(sql.Identifier(c) for c in columns), values
    )


def _run(
    dsn: str, caller: Caller, statement: sql.Composed, success: int, *, rows: bool = True
) -> Answer:
    """Run ``statement`` as the caller in one transaction; its rows as JSON when ``rows``."""
    if rows:
        statement = sql.SQL(
            "with t as ({}) select coalesce(json_agg(t), '[]'::json) from t"
        ).format(statement)
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn, conn.transaction():
            conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true)",
                (json.dumps(caller.claims),),
            )
            cursor = conn.execute(statement)
            row = cursor.fetchone() if rows else None
    except psycopg.OperationalError:
        return 503, _error("PGRST000", "The local database is unavailable.")
    except psycopg.Error as exc:  # answered with the database's own code, as PostgREST does
        code = exc.sqlstate or "XX000"
        message = str(exc.diag.message_primary or exc)
        return _STATUS_OF.get(code, 400), _error(
            code, message, exc.diag.message_detail, exc.diag.message_hint
        )
    return success, row[0] if row else ([] if rows else None)


def _columns(names: list[str] | None) -> sql.Composable:
    if names is None:
        return sql.SQL("*")
    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


def _column(name: str) -> str:
    if not _NAME.match(name):
        raise _Refused(400, "PGRST100", f"'{name}' is not a column name")
    return name


def _literal(value: Any) -> sql.Composable:
    """A JSON value as an untyped literal (Postgres casts it to the column's type), as
    PostgREST's json_populate_recordset does; objects and arrays as their JSON text."""
    if isinstance(value, dict | list):
        return sql.Literal(json.dumps(value))
    if value is None or isinstance(value, bool):
        return sql.SQL("null" if value is None else "true" if value else "false")
    return sql.Literal(str(value))


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise _Refused(400, "PGRST102", "Empty or invalid json") from exc


# PostgREST's status for the database errors these calls can meet (its Error.hs; 42501 is 403
# for a signed-in role, 401 for anon: these calls always run as a signed-in user). Any other
# database error is a 400, as there.
_STATUS_OF = {
    "42501": 403,
    "42P01": 404,
    "42703": 400,
    "23505": 409,
    "23503": 409,
    "23514": 400,
    "P0001": 400,
    "57014": 503,
    "53300": 503,
}


def _error(
    code: str, message: str, details: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    return {"code": code, "details": details, "hint": hint, "message": message}
