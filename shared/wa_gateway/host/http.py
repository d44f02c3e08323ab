"""The HTTP under the host client: one ``requests`` session per container, its retry policy,
and failures turned into the gateway's errors.

The session is reused across warm invocations. Retries, with backoff and jitter, only where
repeating cannot do harm: connection failures before a request was sent (any route), and
502/503/504 answers to GETs. Every failure becomes :class:`HostError` or :class:`HostTimeout`
with a message that names no URL: the host's URLs carry its secret key and session tokens,
and whatever urllib3 logs has the secret keys taken out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wa_gateway.errors import HostError, HostTimeout

if TYPE_CHECKING:
    import requests


class _RedactSecrets(logging.Filter):
    """urllib3 logs request paths (its retries at WARNING, every request at DEBUG), and the
    host's paths carry its secret key: whatever it logs has the key taken out."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = message
        for secret in tuple(self.secrets):
            redacted = redacted.replace(secret, "[secret]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = _RedactSecrets()
for _logger in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
    logging.getLogger(_logger).addFilter(_REDACT)


def redact(secret_key: str) -> None:
    """Keep ``secret_key`` (as it is and as a path segment) out of urllib3's logs."""
    _REDACT.secrets.update(value for value in (secret_key, seg(secret_key)) if value)


def seg(value: str) -> str:
    """``value`` as one path segment: every reserved character escaped, ``/`` too."""
    return quote(value, safe="")


def request(
    http: requests.Session,
    method: str,
    url: str,
    *,
    token: str | None,
    json: Any,
    timeout: tuple[float, float],
) -> tuple[int, Any]:
    """The host's status and its JSON body (None when the body is not JSON); HostTimeout or
    HostError, saying whether the host may have acted, when no answer came."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = http.request(method, url, headers=headers, json=json, timeout=timeout)
    except requests.ConnectTimeout:
        raise HostTimeout(maybe_acted=False) from None
    except requests.Timeout:
        raise HostTimeout() from None
    except requests.ConnectionError as exc:
        # Refused or reset: the host may have acted unless the connection never opened.
        raise HostError(maybe_acted=not _never_connected(exc)) from None
    except requests.RequestException:
        raise HostError() from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def _never_connected(exc: Exception) -> bool:
    """True when the connection itself failed (refused, no route), so nothing was sent."""
    from urllib3.exceptions import NewConnectionError

    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)


def new_session() -> requests.Session:
    """A ``requests`` session with the retry policy above, pooled per scheme."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    # Connection failures are retried on every route (nothing reached the host); answers are
    # retried only for GETs; a read timeout never is (the host may be acting on it).
    retry = Retry(
        total=3,
        connect=2,
        read=False,  # a read timeout surfaces as itself, never as a connection error
        other=0,
        status=2,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=0.1,
        backoff_jitter=0.2,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    # The host's URL is configured, not discovered: no proxy, .netrc or CA bundle from the
    # environment (requests would look them up again on every request).
    session.trust_env = False
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    return session
