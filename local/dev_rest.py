"""The local stack's stand-in for PostgREST (``/rest/v1/``), for what an app on these tables
does with supabase-js or supabase-py.

Every request runs as its caller (see local.api_caller: a user's token as ``authenticated``,
the anon key as ``anon``, the service key as ``service_role``), in one transaction, so the
database alone decides what it may read or write: the tables' column grants, RLS, checks and
the functions' EXECUTE grants, as in production. Names in a request (tables, columns,
functions, their arguments) are looked up in the catalog and put in the statement as
identifiers; values are always bound parameters, untyped, so Postgres casts them to the
column's type as PostgREST's do.

Served, as PostgREST answers them:

* ``GET``/``HEAD /rest/v1/<table or view>``: ``select`` (columns, ``*``, ``alias:column``,
  embedded tables ``other(columns)`` along a foreign key either way, nested), filters
  ``eq neq gt gte lt lte like ilike is in`` and the full-text ``fts plfts phfts wfts`` (with
  an optional configuration, ``fts(simple)``: supabase-js ``.textSearch``) with ``not.``,
  ``or=(...)`` and ``and=(...)`` (nested), ``order`` (several columns, ``asc``/``desc``,
  ``nullsfirst``/``nullslast``), ``limit`` and ``offset``; ``Prefer: count=exact``
  (``planned`` and ``estimated`` are counted exactly) with the total in ``Content-Range`` and
  ``206`` for part of the rows;
  ``Accept: application/vnd.pgrst.object+json`` (``.single()``): the one row as an object, or
  ``406 PGRST116``.
* ``POST`` (a JSON object or array; ``columns``; ``Prefer: missing=default``; upsert with
  ``Prefer: resolution=merge-duplicates|ignore-duplicates`` and ``on_conflict``), ``PATCH``
  and ``DELETE`` with the same filters: ``201``/``204``, or the rows with
  ``Prefer: return=representation``; ``count=exact`` in ``Content-Range``.
* ``POST /rest/v1/rpc/<function>`` (JSON object of named arguments) and ``GET``/``HEAD`` (the
  arguments in the query): its result as JSON (a set as an array; ``void``: ``204``).

Left out (answered ``400 PGRST100`` naming the local stand-in, never half-done): casts, JSON
paths, embed hints and ``!inner``, filters and orders on embedded tables, the array and range
operators, ``PUT``, writes with ``limit``, CSV and other media types. Errors have
PostgREST's shape ``{"code", "details", "hint", "message"}``, with its status for each
database error (its Error.hs). Exists only in the local stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from psycopg import sql

from local import api_caller
from local.api_caller import Caller
from local.function_url import HttpResponse

PREFIX = "/rest/v1"
MAX_ROWS = 1000
SCHEMA = "public"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# PostgREST's full-text operators and the function that makes each one's query.
_FULL_TEXT = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_FULL_TEXT_OPERATOR = re.compile(r"^(fts|plfts|phfts|wfts)(?:\(([A-Za-z_][A-Za-z0-9_]*)\))?$")
_IS_VALUES = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}
_SINGULAR = "application/vnd.pgrst.object+json"
_COUNTS = ("count=exact", "count=planned", "count=estimated")
_RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict", "or", "and"}


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = _error(code, message, details)


def _unsupported(what: str) -> _Refused:
    return _Refused(400, "PGRST100", f"{what} is not supported by the local stand-in")


def _parse_error(message: str, details: str) -> _Refused:
    return _Refused(400, "PGRST100", message, details)


class DevRest:
    """Answers ``/rest/v1/...`` requests; thread-safe (no state)."""

    def __init__(self, dsn: str, *, jwt_secret: str) -> None:
        self.dsn = dsn
        self.jwt_secret = jwt_secret

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse:
        try:
            caller = self._caller(headers)
            target = path.removeprefix(PREFIX + "/")
            for profile in ("accept-profile", "content-profile"):
                if (headers.get(profile) or SCHEMA) != SCHEMA:
                    raise _Refused(
                        406, "PGRST106", f"The schema must be one of the following: {SCHEMA}"
                    )
            request = _Request(method, query, headers, body)
            if target.startswith("rpc/"):
                return self._run(caller, lambda conn: _call(conn, target[4:], request))
            if "/" in target or not target:
                raise _Refused(404, "PGRST125", "Invalid path specified in request URL")
            return self._run(caller, lambda conn: _table(conn, target, request))
        except _Refused as refused:
            return _json(refused.status, refused.body)

    def _caller(self, headers: Mapping[str, str]) -> Caller:
        try:
            return api_caller.caller_of(headers, self.jwt_secret)
        except api_caller.TokenRefused as exc:
            if exc.reason == "missing":
                return api_caller.ANON  # PostgREST's anonymous role
            if exc.reason == "expired":
                raise _Refused(401, "PGRST303", "JWT expired") from exc
            raise _Refused(401, "PGRST301", exc.message) from exc

    def _run(self, caller: Caller, plan: Any) -> HttpResponse:
        """Run ``plan(conn)`` (catalog look-ups, then ``_as``, then its statements) in one
        transaction; a refusal or database error rolls it back."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
                response: HttpResponse = plan(_Connection(conn, caller))
                return response
        except psycopg.Error as exc:
            return _database_error(exc, authed=caller.role != "anon")


@dataclass
class _Connection:
    conn: psycopg.Connection[Any]
    caller: Caller
    switched: bool = False

    def as_caller(self) -> None:
        if not self.switched:
            api_caller.run_as(self.conn, self.caller)
            self.switched = True

    def execute(self, statement: sql.Composed | sql.SQL, params: list[Any]) -> psycopg.Cursor[Any]:
        self.as_caller()
        return self.conn.execute(statement, params)


@dataclass
class _Request:
    method: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def prefer(self) -> set[str]:
        return {p.strip() for p in (self.headers.get("prefer") or "").split(",") if p.strip()}

    @property
    def singular(self) -> bool:
        accept = (self.headers.get("accept") or "").split(";")[0].strip().lower()
        return accept == _SINGULAR

    @property
    def counting(self) -> bool:
        return bool(self.prefer & set(_COUNTS))

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise _Refused(400, "PGRST102", "Empty or invalid json") from exc


# --- the catalog ---------------------------------------------------------------------------


def _columns_of(conn: _Connection, relation: str) -> list[str]:
    """The columns of ``public.<relation>`` (a table or view), or PGRST205 if there is none."""
    rows = conn.conn.execute(
        "select a.attname from pg_class c join pg_attribute a on a.attrelid = c.oid"
        " where c.relnamespace = %s::regnamespace and c.relname = %s"
        " and c.relkind in ('r', 'v', 'm', 'f', 'p') and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (SCHEMA, relation),
    ).fetchall()
    if not rows:
        raise _Refused(
            404, "PGRST205", f"Could not find the table '{SCHEMA}.{relation}' in the schema cache"
        )
    return [r[0] for r in rows]


def _primary_key(conn: _Connection, relation: str) -> list[str]:
    rows = conn.conn.execute(
        "select a.attname from pg_index i"
        " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = %s::regclass and i.indisprimary order by a.attnum",
        (f"{SCHEMA}.{relation}",),
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class _Join:
    """How an embedded table joins its parent: ``pairs`` of (parent column, child column)."""

    pairs: tuple[tuple[str, str], ...]
    to_one: bool


def _join(conn: _Connection, parent: str, child: str) -> _Join:
    rows = conn.conn.execute(
        "select src.relname, "
        " array(select a.attname from unnest(c.conkey) with ordinality k(n, i)"
        "   join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i),"
        " array(select a.attname from unnest(c.confkey) with ordinality k(n, i)"
        "   join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i)"
        " from pg_constraint c"
        " join pg_class src on src.oid = c.conrelid join pg_class dst on dst.oid = c.confrelid"
        " where c.contype = 'f' and src.relnamespace = %s::regnamespace"
        " and dst.relnamespace = %s::regnamespace"
        " and ((src.relname = %s and dst.relname = %s) or (src.relname = %s and dst.relname = %s))",
        (SCHEMA, SCHEMA, parent, child, child, parent),
    ).fetchall()
    if parent == child or len(rows) > 1:
        raise _Refused(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{parent}'"
            f" and '{child}'",
        )
    if not rows:
        raise _Refused(
            400,
            "PGRST200",
            f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
            f"Searched for a foreign key relationship between '{parent}' and '{child}' in the"
            f" schema '{SCHEMA}', but no matches were found.",
        )
    source, source_columns, target_columns = rows[0]
    if source == parent:  # the parent holds the key: many-to-one, an object
        return _Join(tuple(zip(source_columns, target_columns, strict=True)), to_one=True)
    return _Join(tuple(zip(target_columns, source_columns, strict=True)), to_one=False)


# --- select= -------------------------------------------------------------------------------


@dataclass
class _Embed:
    relation: str
    key: str  # its name in the JSON: the alias, else the relation
    items: list[Any] = field(default_factory=list)


def _split(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses and double quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth or quoted:
        raise _parse_error(f'"failed to parse {text}"', "unbalanced parentheses or quotes")
    parts.append("".join(current))
    return parts


def _parse_select(text: str) -> list[Any]:
    """``select=`` as items: ``"*"``, ``(alias, column)`` or ``_Embed``."""
    items: list[Any] = []
    for raw in _split(text):
        item = raw.strip()
        if item == "*":
            items.append("*")
            continue
        alias, colon, rest = item.partition(":")
        if not colon or rest.startswith(":"):
            alias, rest = "", item
        if "::" in rest or "->" in rest or "!" in rest or "..." in rest:
            raise _unsupported(f"'{item}' (casts, JSON paths, hints and spreads)")
        if rest.endswith(")") and "(" in rest:
            relation, _, inner = rest[:-1].partition("(")
            embed = _Embed(_name(relation), _name(alias) if alias else relation)
            embed.items = _parse_select(inner) if inner.strip() else ["*"]
            items.append(embed)
            continue
        column = _name(rest)
        items.append((_name(alias) if alias else column, column))
    return items


def _name(text: str) -> str:
    text = text.strip().strip('"')
    if not _NAME.match(text):
        raise _parse_error(f'"failed to parse {text}"', f"'{text}' is not a name")
    return text


def _select_list(
    conn: _Connection, relation: str, items: list[Any], alias: str, depth: int
) -> sql.Composable:
    columns = _columns_of(conn, relation)
    parts: list[sql.Composable] = []
    for item in items:
        if item == "*":
            parts.append(sql.SQL("{}.*").format(sql.Identifier(alias)))
        elif isinstance(item, _Embed):
            parts.append(
                sql.SQL("{} as {}").format(
                    _embedded(conn, relation, item, alias, depth), sql.Identifier(item.key)
                )
            )
        else:
            key, column = item
            _check_column(relation, columns, column)
            parts.append(
                sql.SQL("{}.{} as {}").format(
                    sql.Identifier(alias), sql.Identifier(column), sql.Identifier(key)
                )
            )
    return sql.SQL(", ").join(parts)


def _embedded(
    conn: _Connection, parent: str, embed: _Embed, parent_alias: str, depth: int
) -> sql.Composable:
    """A correlated subquery: the embedded rows as a JSON object (to one) or array."""
    join = _join(conn, parent, embed.relation)
    alias = f"t{depth + 1}"
    on = sql.SQL(" and ").join(
        sql.SQL("{}.{} = {}.{}").format(
            sql.Identifier(alias),
            sql.Identifier(child_column),
            sql.Identifier(parent_alias),
            sql.Identifier(parent_column),
        )
        for parent_column, child_column in join.pairs
    )
    inner = sql.SQL("select {} from {} as {} where {}").format(
        _select_list(conn, embed.relation, embed.items, alias, depth + 1),
        sql.Identifier(SCHEMA, embed.relation),
        sql.Identifier(alias),
        on,
    )
    shape = "to_json(e)" if join.to_one else "coalesce(json_agg(e), '[]'::json)"
    return sql.SQL("(select " + shape + " from ({}) as e)").format(inner)


def _check_column(relation: str, columns: list[str], column: str) -> None:
    if column not in columns:  # the database's own words for it, as PostgREST passes them on
        raise _Refused(400, "42703", f"column {relation}.{column} does not exist")


# --- filters -------------------------------------------------------------------------------


@dataclass
class _Where:
    """Conditions with their parameters, in the order they appear."""

    relation: str
    columns: list[str]
    parts: list[sql.Composable] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add_filter(self, column: str, expression: str) -> None:
        condition, params = self.condition(column, expression)
        self.parts.append(condition)
        self.params += params

    def add_logic(self, key: str, value: str) -> None:
        negated = key.startswith("not.")
        operator = key.removeprefix("not.")
        condition, params = self.tree(operator, value, negated)
        self.parts.append(condition)
        self.params += params

    def condition(self, column: str, expression: str) -> tuple[sql.Composable, list[Any]]:
        if "." in column or "->" in column:
            raise _unsupported(f"A filter on '{column}' (embedded tables, JSON paths)")
        _check_column(self.relation, self.columns, _name(column))
        target = sql.SQL("t0.{}").format(sql.Identifier(column))
        negated = expression.startswith("not.")
        operator, dot, operand = expression.removeprefix("not.").partition(".")
        if not dot:
            raise _parse_error(
                f'"failed to parse filter ({expression})"', f"unexpected end of input in {column}"
            )
        params: list[Any] = []
        if operator in _COMPARE:
            condition: sql.Composable = sql.SQL("{} " + _COMPARE[operator] + " %s").format(target)
            params.append(_unquote(operand))
        elif operator in ("like", "ilike"):
            condition = sql.SQL("{} " + operator + " %s").format(target)
            params.append(_unquote(operand).replace("*", "%"))
        elif full_text := _FULL_TEXT_OPERATOR.match(operator):
            # column @@ to_tsquery([config,] query): the config a regconfig, as PostgREST has it.
            function, config = _FULL_TEXT[full_text.group(1)], full_text.group(2)
            if config is None:
                condition = sql.SQL("{} @@ " + function + "(%s)").format(target)
            else:
                condition = sql.SQL("{} @@ " + function + "(%s::regconfig, %s)").format(target)
                params.append(config)
            params.append(_unquote(operand))
        elif operator == "is" and operand.lower() in _IS_VALUES:
            condition = sql.SQL("{} is " + _IS_VALUES[operand.lower()]).format(target)
        elif operator == "in" and operand.startswith("(") and operand.endswith(")"):
            values = [_unquote(v) for v in _split(operand[1:-1])] if operand[1:-1] else []
            if not values:
                condition = sql.SQL("false")
            else:
                condition = sql.SQL("{} in ({})").format(
                    target, sql.SQL(", ").join(sql.Placeholder() for _ in values)
                )
            params += values
        else:
            raise _unsupported(f"The filter '{operator}'")
        return (sql.SQL("not ({})").format(condition) if negated else condition), params

    def tree(self, operator: str, value: str, negated: bool) -> tuple[sql.Composable, list[Any]]:
        if operator not in ("or", "and") or not (value.startswith("(") and value.endswith(")")):
            raise _parse_error(f'"failed to parse logic tree ({value})"', "expected ( ... )")
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for term in _split(value[1:-1]):
            term = term.strip()
            head, _, rest = term.partition("(")
            if head in ("or", "and", "not.or", "not.and") and term.endswith(")"):
                condition, more = self.tree(
                    head.removeprefix("not."), "(" + rest, head[:4] == "not."
                )
            else:
                column, dot, expression = term.partition(".")
                if not dot:
                    raise _parse_error(f'"failed to parse logic tree ({value})"', term)
                condition, more = self.condition(column, expression)
            conditions.append(condition)
            params += more
        joined = sql.SQL("(") + sql.SQL(f" {operator} ").join(conditions) + sql.SQL(")")
        return (sql.SQL("not {}").format(joined) if negated else joined), params

    def sql(self) -> sql.Composable:
        if not self.parts:
            return sql.SQL("")
        return sql.SQL(" where ") + sql.SQL(" and ").join(self.parts)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


@dataclass
class _Query:
    """The query string of a table request."""

    select: list[Any]
    where: _Where
    order: list[sql.Composable]
    limit: int | None
    offset: int
    columns: list[str] | None
    on_conflict: list[str] | None


def _parse_query(conn: _Connection, relation: str, query: str) -> _Query:
    columns = _columns_of(conn, relation)
    where = _Where(relation, columns)
    parsed = _Query(["*"], where, [], None, 0, None, None)
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "select":
            parsed.select = _parse_select(value) if value.strip() else ["*"]
        elif key == "order":
            parsed.order = [_order_term(relation, columns, term) for term in _split(value)]
        elif key in ("limit", "offset"):
            if not value.isdigit():
                raise _parse_error(f'"failed to parse {key} ({value})"', "a whole number")
            if key == "limit":
                parsed.limit = min(int(value), MAX_ROWS)
            else:
                parsed.offset = int(value)
        elif key in ("columns", "on_conflict"):
            names = [_name(c) for c in value.split(",")]
            for name in names:
                _check_column(relation, columns, name)
            setattr(parsed, key, names)
        elif key in ("or", "and", "not.or", "not.and"):
            where.add_logic(key, value)
        elif key in _RESERVED or "." in key:
            raise _unsupported(f"'{key}'")
        else:
            where.add_filter(key, value)
    return parsed


def _order_term(relation: str, columns: list[str], term: str) -> sql.Composable:
    column, *modifiers = term.strip().split(".")
    if "(" in column or "->" in column:
        raise _unsupported(f"Ordering by '{column}'")
    _check_column(relation, columns, _name(column))
    direction = "asc"
    nulls = ""
    for modifier in modifiers:
        if modifier in ("asc", "desc"):
            direction = modifier
        elif modifier in ("nullsfirst", "nullslast"):
            nulls = " nulls first" if modifier == "nullsfirst" else " nulls last"
        else:
            raise _parse_error(f'"failed to parse order ({term})"', f"unexpected '{modifier}'")
    return sql.SQL("t0.{} " + direction + nulls).format(sql.Identifier(column))


# --- tables --------------------------------------------------------------------------------


def _table(conn: _Connection, relation: str, request: _Request) -> HttpResponse:
    _name(relation)
    if request.method in ("GET", "HEAD"):
        return _read(conn, relation, request)
    if request.method in ("POST", "PATCH", "DELETE"):
        return _write(conn, relation, request)
    raise _unsupported(f"The method {request.method}")


def _read(conn: _Connection, relation: str, request: _Request) -> HttpResponse:
    query = _parse_query(conn, relation, request.query)
    if query.columns or query.on_conflict:
        raise _unsupported("'columns' or 'on_conflict' on a read")
    target = sql.Identifier(SCHEMA, relation)
    rows_sql = sql.SQL("select {} from {} as t0").format(
        _select_list(conn, relation, query.select, "t0", 0), target
    )
    rows_sql += query.where.sql()
    if query.order:
        rows_sql += sql.SQL(" order by ") + sql.SQL(", ").join(query.order)
    rows_sql += sql.SQL(" limit %s offset %s")
    limit = query.limit if query.limit is not None else MAX_ROWS
    statement = sql.SQL(
        "with r as ({}) select coalesce(json_agg(r), '[]'::json), count(*) from r"
    ).format(rows_sql)
    data, returned = _one(conn.execute(statement, [*query.where.params, limit, query.offset]))
    total: int | None = None
    if request.counting:
        counted = sql.SQL("select count(*) from {} as t0").format(target) + query.where.sql()
        total = _one(conn.execute(counted, query.where.params))[0]
    lower, upper = query.offset, query.offset + returned - 1
    status = 200
    if total is not None and lower > total:
        raise _Refused(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            f"An offset of {lower} was requested, but there are only {total} rows.",
        )
    if total is not None and returned < total:
        status = 206
    headers = [("content-range", _content_range(lower, upper, total))]
    if request.singular:
        return _singular(data, headers)
    return _json(status, data, headers)


def _write(conn: _Connection, relation: str, request: _Request) -> HttpResponse:
    query = _parse_query(conn, relation, request.query)
    if query.limit is not None or query.offset or query.order:
        raise _unsupported("'limit', 'offset' or 'order' on a write")
    target = sql.SQL("{} as t0").format(sql.Identifier(SCHEMA, relation))
    params: list[Any]
    if request.method == "POST":
        if query.where.parts:
            raise _unsupported("Filters on an insert")
        statement, params = _insert(conn, relation, target, query, request)
        success = 201
    elif request.method == "PATCH":
        changes = request.json_body()
        if not isinstance(changes, dict):
            raise _Refused(400, "PGRST102", "A PATCH body must be one JSON object.")
        columns = _columns_of(conn, relation)
        for column in changes:
            _check_payload_column(relation, columns, column)
        if not changes:  # nothing to set: PostgREST changes nothing either
            if "return=representation" in request.prefer:
                return _json(200, [])
            return HttpResponse(204, [], b"")
        statement = sql.SQL("update {} set {}").format(
            target,
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes),
        )
        params = [_parameter(v) for v in changes.values()]
        statement += query.where.sql()
        params += query.where.params
        success = 204
    else:
        statement = sql.SQL("delete from {}").format(target) + query.where.sql()
        params = list(query.where.params)
        success = 204

    representation = "return=representation" in request.prefer
    if not representation:
        affected = conn.execute(statement, params).rowcount
        headers = [("content-range", _content_range(0, -1, affected if request.counting else None))]
        return HttpResponse(201 if success == 201 else 204, headers, b"")
    statement += sql.SQL(" returning {}").format(
        _select_list(conn, relation, _plain(query.select), "t0", 0)
    )
    rows = sql.SQL(
        "with r as ({}) select coalesce(json_agg(r), '[]'::json), count(*) from r"
    ).format(statement)
    data, affected = _one(conn.execute(rows, params))
    headers = [("content-range", _content_range(0, -1, affected if request.counting else None))]
    if request.singular:
        return _singular(data, headers, 201 if success == 201 else 200)
    return _json(201 if success == 201 else 200, data, headers)


def _plain(items: list[Any]) -> list[Any]:
    if any(isinstance(item, _Embed) for item in items):
        raise _unsupported("Embedding in what a write returns")
    return items


def _insert(
    conn: _Connection,
    relation: str,
    target: sql.Composable,
    query: _Query,
    request: _Request,
) -> tuple[sql.Composed, list[Any]]:
    payload = request.json_body()
    rows = payload if isinstance(payload, list) else [payload]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise _Refused(400, "PGRST102", "Insert a JSON object or an array of JSON objects.")
    columns = _columns_of(conn, relation)
    names = query.columns or list(dict.fromkeys(k for r in rows for k in r))
    for name in names:
        _check_payload_column(relation, columns, name)
    if not names:
        raise _Refused(400, "PGRST102", "Name at least one column to insert.")
    missing = sql.DEFAULT if "missing=default" in request.prefer else sql.NULL
    params: list[Any] = []
    values = []
    for row in rows:
        cells: list[sql.Composable] = []
        for name in names:
            if name in row:
                cells.append(sql.Placeholder())
                params.append(_parameter(row[name]))
            else:
                cells.append(missing)
        values.append(sql.SQL("({})").format(sql.SQL(", ").join(cells)))
    statement = sql.SQL("insert into {} ({}) values {}").format(
        target, sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.SQL(", ").join(values)
    )
    resolution = {p for p in request.prefer if p.startswith("resolution=")}
    if resolution:
        conflict = query.on_conflict or _primary_key(conn, relation)
        statement += sql.SQL(" on conflict ({}) ").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in conflict)
        )
        if resolution == {"resolution=ignore-duplicates"}:
            statement += sql.SQL("do nothing")
        elif resolution == {"resolution=merge-duplicates"}:
            statement += sql.SQL("do update set {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{0} = excluded.{0}").format(sql.Identifier(n)) for n in names
                )
            )
        else:
            raise _unsupported(f"'{', '.join(sorted(resolution))}'")
    elif query.on_conflict:
        raise _unsupported("'on_conflict' without a resolution")
    return statement, params


def _check_payload_column(relation: str, columns: list[str], column: str) -> None:
    if column not in columns:
        raise _Refused(
            400,
            "PGRST204",
            f"Could not find the '{column}' column of '{relation}' in the schema cache",
        )


def _parameter(value: Any) -> Any:
    """A JSON value as an untyped parameter (Postgres casts it to the column's type), as
    PostgREST's json_populate_recordset does; objects and arrays as their JSON text."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- functions -----------------------------------------------------------------------------


def _call(conn: _Connection, name: str, request: _Request) -> HttpResponse:
    """``/rpc/<name>``: the function of that name whose arguments are the ones given."""
    if request.method == "POST":
        payload = request.json_body() if request.body.strip() else {}
        if not isinstance(payload, dict):
            raise _unsupported("A function called with anything but a JSON object")
        arguments = payload
    elif request.method in ("GET", "HEAD"):
        arguments = dict(parse_qsl(request.query, keep_blank_values=True))
    else:
        raise _Refused(405, "PGRST101", "Only GET, HEAD and POST are allowed for functions")
    keys = sorted(arguments)
    candidates = conn.conn.execute(
        "select p.oid, coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),"
        " p.pronargs, p.pronargdefaults, p.proretset, p.prorettype = 'void'::regtype"
        " from pg_proc p where p.pronamespace = %s::regnamespace and p.proname = %s",
        (SCHEMA, name),
    ).fetchall()
    matches = [c for c in candidates if _accepts(c, set(keys))]
    if not matches:
        listed = f"({', '.join(keys)})" if keys else " without parameters"
        raise _Refused(
            404,
            "PGRST202",
            f"Could not find the function {SCHEMA}.{name}{listed} in the schema cache",
            f"Searched for the function {SCHEMA}.{name}"
            + (f" with parameter{'s' if len(keys) > 1 else ''} {', '.join(keys)}" if keys else "")
            + (" or with a single unnamed json/jsonb parameter" if request.method == "POST" else "")
            + ", but no matches were found in the schema cache.",
        )
    if len(matches) > 1:
        raise _Refused(300, "PGRST203", f"Could not choose the best candidate function for {name}")
    _, _, _, _, _, returns_set, returns_void = matches[0]
    call = sql.SQL("{}({})").format(
        sql.Identifier(SCHEMA, name),
        sql.SQL(", ").join(sql.SQL("{} => %s").format(sql.Identifier(k)) for k in keys),
    )
    params = [_parameter(arguments[k]) for k in keys]
    if returns_void:
        conn.execute(sql.SQL("select ") + call, params)
        return HttpResponse(204, [], b"")
    if returns_set:
        statement = sql.SQL("select coalesce(json_agg(r), '[]'::json) from {} as r").format(call)
    else:
        statement = sql.SQL("select to_json({})").format(call)
    (data,) = _one(conn.execute(statement, params))
    return _json(200, data)


def _accepts(candidate: tuple[Any, ...], keys: set[str]) -> bool:
    _, names, modes, nargs, ndefaults, _, _ = candidate
    if modes:
        inputs = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
    else:
        inputs = list(names[:nargs])
    if len(inputs) != nargs or any(not n for n in inputs):
        return False  # unnamed arguments: not callable by name
    required = set(inputs[: nargs - ndefaults])
    return required <= keys <= set(inputs)


def _one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None  # an aggregate always answers one row
    return tuple(row)


# --- answers -------------------------------------------------------------------------------


def _singular(data: list[Any], headers: list[tuple[str, str]], status: int = 200) -> HttpResponse:
    if len(data) != 1:
        # Raised inside the transaction, so a write that matched 0 or 2+ rows is undone.
        raise _Refused(
            406,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
            f"The result contains {len(data)} rows",
        )
    return _json(status, data[0], headers)


def _content_range(lower: int, upper: int, total: int | None) -> str:
    shown = f"{lower}-{upper}" if lower <= upper and total != 0 else "*"
    return f"{shown}/{'*' if total is None else total}"


def _database_error(exc: psycopg.Error, *, authed: bool) -> HttpResponse:
    """A database error as PostgREST answers it: the database's code and words, and its
    status for that code; no code at all (the database out of reach) is PGRST000, 503."""
    code = exc.sqlstate
    if code is None:
        return _json(503, _error("PGRST000", "Database connection error."))
    diag = exc.diag
    body = _error(code, str(diag.message_primary or exc), diag.message_detail, diag.message_hint)
    return _json(_status_of(code, str(diag.message_primary or ""), authed), body)


def _status_of(code: str, message: str, authed: bool) -> int:
    """PostgREST's HTTP status for a database error code (its mapSQLtoHTTP)."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42883": 404,
        "42P01": 404,
        "42P17": 500,
        "42501": 403 if authed else 401,
    }
    if code in exact:
        return exact[code]
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    by_class = {
        "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500,
        "38": 500, "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500,
        "57": 500, "58": 500, "F0": 500, "HV": 500, "P0": 500, "XX": 500,
    }  # fmt: skip
    return by_class.get(code[:2], 400)


def _error(
    code: str, message: str, details: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    return {"code": code, "details": details, "hint": hint, "message": message}


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(
        status,
        [("content-type", "application/json; charset=utf-8"), *(headers or [])],
        json.dumps(body).encode("utf-8"),
    )
