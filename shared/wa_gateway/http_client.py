"""The layer's one HTTP client, on the standard library's ``http.client``: the host, the JWKS
endpoint and Storage are called through it. (Importing ``requests`` costs a fresh interpreter
about three times what ``http.client`` and ``ssl`` do, for features these calls do not use.)

A :class:`Pool` keeps keep-alive connections per scheme, host and port for the container's
life, safe to share between threads; an idle connection the server has closed is noticed
before it is used, and one that turns out closed as a request goes out is replaced without
anyone seeing it (below). Connect and read timeouts are separate. HTTPS verifies the server's
certificate and name (``ssl.create_default_context()``); nothing is taken from the environment
(no proxy, no ``.netrc``). Redirects are never followed.

Every failure to get an answer is an :class:`HttpFailure` that says whether the server may
have received the whole request and whether a timeout ended the wait; its message names no URL
(URLs carry secrets). Retries follow the pool's :class:`Retries`:

* a failure before the request was sent (connection refused, no route, DNS, a connect timeout,
  the request cut off while being written): retried ``connect`` times, whatever the method;
* an answer in ``status_codes`` to a method in ``status_methods``: asked again ``status``
  times, the last answer returned as it is;
* anything after the whole request was sent (a read timeout, a connection reset while waiting)
  is never retried, with one exception: a reused keep-alive connection that the server closed
  (no byte of an answer came) carries a GET or HEAD again on a new connection. Other methods
  are not repeated then (the server may have got them before it closed): they fail with
  ``maybe_received``.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wa_gateway.http_connection import HttpFailure, Origin, connect, readable

_REPEATABLE_ON_A_STALE_CONNECTION = frozenset({"GET", "HEAD"})
_USER_AGENT = "wa-gateway"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    """Case-insensitive: ``answer.headers.get("content-type")``."""
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return jsonlib.loads(self.body)


@dataclass(frozen=True)
class Retries:
    """How often a request is tried again (see the module's docstring). The wait before the
    n-th try again is urllib3's: none for the first, then ``backoff_s * 2 ** (n - 1)`` plus up
    to ``jitter_s`` at random."""

    connect: int = 0
    status: int = 0
    total: int = 0
    status_methods: frozenset[str] = frozenset({"GET"})
    status_codes: frozenset[int] = frozenset({502, 503, 504})
    backoff_s: float = 0.1
    jitter_s: float = 0.2

    def wait_s(self, retry: int) -> float:
        if retry <= 1:
            return 0.0
        jitter = random.random() * self.jitter_s  # noqa: S311 (spreads retries, no secret)
        return self.backoff_s * 2 ** (retry - 1) + jitter


NO_RETRIES = Retries()


class _Stale(Exception):
    """A reused connection turned out closed by the server before any answer came."""


class Pool:
    """Keep-alive connections per origin, at most ``maxsize`` idle ones each (more may be open
    at once, from several threads; the extra ones are closed when done)."""

    def __init__(
        self,
        *,
        retries: Retries = NO_RETRIES,
        maxsize: int = 8,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._retries = retries
        self._maxsize = maxsize
        self._headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: tuple[float, float],
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
    ) -> Answer:
        """The server's answer to one request (``json``, when not None, is the body, sent as
        ``application/json``); :class:`HttpFailure` when none came. ``timeout``: the connect
        and the read timeouts, in seconds."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpFailure(maybe_received=False, timed_out=False, retryable=False)
        origin = (
            parts.scheme,
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent_headers = {**self._headers, **(headers or {})}
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent_headers["Content-Type"] = "application/json"
        retries, tried_again, connect_retries, status_retries = self._retries, 0, 0, 0
        while True:
            try:
                answer = self._once(origin, method, target, sent_headers, body, timeout)
            except HttpFailure as failure:
                if not failure.retryable or connect_retries >= retries.connect:
                    raise
                if tried_again >= retries.total:
                    raise
                connect_retries += 1
            else:
                if (
                    answer.status not in retries.status_codes
                    or method not in retries.status_methods
                    or status_retries >= retries.status
                    or tried_again >= retries.total
                ):
                    return answer
                status_retries += 1
            tried_again += 1
            time.sleep(retries.wait_s(tried_again))

    def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _once(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
    ) -> Answer:
        reused = self._idle_connection(origin)
        if reused is not None:
            try:
                return self._exchange(origin, reused, method, target, headers, body, timeout[1])
            except _Stale:
                pass  # the server closed it as the request went out: a new one, once
        connection = connect(origin, timeout[0])
        return self._exchange(
            origin, connection, method, target, headers, body, timeout[1], reused=False
        )

    def _exchange(
        self,
        origin: Origin,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        read_timeout_s: float,
        *,
        reused: bool = True,
    ) -> Answer:
        """One request on ``connection``; :class:`_Stale` when a reused connection turns out
        closed before anything could have been acted on (see the module's docstring)."""
        assert connection.sock is not None
        connection.sock.settimeout(read_timeout_s)
        try:
            connection.request(method, target, body=body, headers=headers)
        except ValueError:  # a header or path that cannot be written: nothing was sent
            connection.close()
            raise HttpFailure(maybe_received=False, timed_out=False, retryable=False) from None
        except (OSError, http.client.HTTPException) as exc:
            # Cut off while being written: the server cannot have the whole request.
            connection.close()
            timed_out = isinstance(exc, TimeoutError)
            if reused and not timed_out:
                raise _Stale() from None
            raise HttpFailure(maybe_received=False, timed_out=timed_out) from None
        try:
            response = connection.getresponse()
            data = response.read()
        except TimeoutError:
            connection.close()
            raise HttpFailure(maybe_received=True, timed_out=True) from None
        except ConnectionResetError:  # closed or reset before an answer (RemoteDisconnected)
            connection.close()
            if reused and method in _REPEATABLE_ON_A_STALE_CONNECTION:
                raise _Stale() from None
            raise HttpFailure(maybe_received=True, timed_out=False) from None
        except (OSError, http.client.HTTPException):
            connection.close()
            raise HttpFailure(maybe_received=True, timed_out=False) from None
        if response.will_close or connection.sock is None:
            connection.close()
        else:
            self._give_back(origin, connection)
        return Answer(response.status, response.headers, data)

    def _idle_connection(self, origin: Origin) -> http.client.HTTPConnection | None:
        """The idle connection used last that the server has not closed, if any."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                return None
            if connection.sock is not None and not readable(connection.sock):
                return connection
            connection.close()  # closed by the server (or it sent what nobody asked for)

    def _give_back(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._maxsize:
                idle.append(connection)
                return
        connection.close()
