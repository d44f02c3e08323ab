"""The HTTP under the host client: one connection pool per container (``http_client.Pool``),
its retry policy, and failures turned into the gateway's errors.

The pool is reused across warm invocations. Retries, with backoff and jitter, only where
repeating cannot do harm: failures before a request was sent (any route), and 502/503/504
answers to GETs. Every failure becomes :class:`HostError` or :class:`HostTimeout` with a
message that names no URL: the host's URLs carry its secret key and session tokens (nothing
under the pool logs them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from wa_gateway.errors import HostError, HostTimeout
from wa_gateway.http_client import Pool, Retries
from wa_gateway.http_connection import HttpFailure

RETRIES = Retries(connect=2, status=2, total=3, status_methods=frozenset({"GET"}))
"""Unsent requests are tried again on every route (nothing reached the host); answers only for
GETs; a read timeout never is (the host may be acting on it)."""


def seg(value: str) -> str:
    """``value`` as one path segment: every reserved character escaped, ``/`` too."""
    return quote(value, safe="")


def request(
    http: Pool,
    method: str,
    url: str,
    *,
    token: str | None,
    json: Any,
    timeout: tuple[float, float],
) -> tuple[int, Any]:
    """The host's status and its JSON body (None when the body is not JSON); HostTimeout or
    HostError, saying whether the host may have acted, when no answer came."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = http.request(method, url, headers=headers, json=json, timeout=timeout)
    except HttpFailure as failure:
        if failure.timed_out:
            raise HostTimeout(maybe_acted=failure.maybe_received) from None
        raise HostError(maybe_acted=failure.maybe_received) from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    return answer.status, body


def new_session() -> Pool:
    """A pool of keep-alive connections with the retry policy above."""
    return Pool(retries=RETRIES, maxsize=8)
