"""The functions called in-process, as Lambda imports them, and what the suites check of every
answer: the contract's error shape, no stack trace, no secret, nothing written when refused."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from local.function_url import LambdaContext
from wa_gateway import errors

Handler = Callable[[Any, Any], Any]

__all__ = [
    "Handler",
    "RowCounter",
    "assert_contract_answer",
    "assert_error_shape",
    "contract_codes",
    "invoke",
]

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
TRACE_MARKERS = ("Traceback", 'File "', "site-packages", '.py", line')


def contract_codes() -> set[str]:
    """Every error code the functions may answer (errors.py is the one place that has them)."""
    found: set[str] = set()
    pending: list[type[errors.ApiError]] = [errors.ApiError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return found


def invoke(handler: Handler, event: Any, name: str = "fn", timeout_ms: int = 30_000) -> Any:
    return handler(event, LambdaContext(name, str(uuid.uuid4()), timeout_ms=timeout_ms))


# The host's events are logged as they arrive, whenever the host sends them: they are counted
# for one session only.
EVENT_LOG = ("whatsapp_events", "whatsapp_event_seqs")


class RowCounter:
    """Rows per table of the public schema (every table the product has), on one connection."""

    def __init__(self, dsn: str, session_name: str | None = None) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        rows = self._conn.execute(
            "select relname from pg_class where relnamespace = 'public'::regnamespace"
            " and relkind = 'r' order by relname"
        ).fetchall()
        self.tables = [str(r[0]) for r in rows if r[0] not in EVENT_LOG]
        counts = [f"(select count(*) from public.{t})" for t in self.tables]
        counts.append(
            "(select count(*) from public.whatsapp_events e join public.whatsapp_sessions s"
            " on s.id = e.whatsapp_session_id where s.session_id = %(session)s)"
        )
        self._query = "select " + ", ".join(counts)
        self._session = session_name

    def __call__(self) -> dict[str, int]:
        row = self._conn.execute(self._query, {"session": self._session}).fetchone()
        assert row is not None
        names = [*self.tables, f"events of {self._session}"]
        return dict(zip(names, (int(v) for v in row), strict=True))

    def close(self) -> None:
        self._conn.close()


def assert_contract_answer(result: Any, secrets: Iterable[str]) -> tuple[int, Any]:
    """A function URL result in the contract's terms; returns (status, parsed body)."""
    assert isinstance(result, dict), result
    status = result.get("statusCode")
    assert isinstance(status, int), result
    assert status < 500 or status in (502, 503, 504), result
    body = result.get("body")
    assert isinstance(body, str), result
    for marker in TRACE_MARKERS:
        assert marker not in body, body
    for secret in secrets:
        assert secret not in body, "a secret in an answer"
    headers = result.get("headers") or {}
    assert all(isinstance(v, str) for v in headers.values()), headers
    parsed = json.loads(body)
    if status >= 300:
        assert_error_shape(parsed)
    else:
        assert isinstance(parsed, dict), parsed
    return status, parsed


def assert_error_shape(parsed: Any) -> None:
    assert isinstance(parsed, dict) and set(parsed) == {"error"}, parsed
    error = parsed["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, parsed
    assert isinstance(error["code"], str) and SNAKE.match(error["code"]), parsed
    assert error["code"] in contract_codes() and error["code"] != "internal_error", parsed
    assert isinstance(error["message"], str) and error["message"].strip(), parsed
