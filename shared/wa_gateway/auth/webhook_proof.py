"""Proof that a webhook call comes from our host, and for which session.

Two proofs are accepted, each checked in constant time against every configured secret (two
at once while rotating; the first one signs):

* ``x-verify: <secret>``: for hosts that can send a header (a patched server, a proxy);
* ``?session=<name>&verify=<HMAC-SHA256(secret, name) hex>`` in the webhook URL that
  start-session registers with the host: what a stock wppconnect-server can carry. It proves
  that one session, and grants nothing for any other. With a pool of hosts the URL also
  names the host (``&host=<id>``, inside the HMAC), so a host's events apply only to the
  sessions placed on it.

The URL proof is a credential: it is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from wa_gateway.errors import InvalidVerifyToken

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ATTEMPT = re.compile(r"^[0-9]{1,9}$")


def _hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_proof(
    secret: str, session_name: str, host_id: str | None = None, attempt: int | None = None
) -> str:
    """The URL proof of one session (on one pool host, and for one attempt, when given)."""
    message = session_name if host_id is None else f"{session_name}:{host_id}"
    return _hmac(secret, message if attempt is None else f"{message}#{attempt}")


def host_verify_token(secret: str, host_id: str) -> str:
    """The ``x-verify`` value of one pool host: valid only with that host's ``?host=<id>``."""
    return _hmac(secret, f"host:{host_id}")


def session_webhook_url(
    base_url: str,
    session_name: str,
    secret: str,
    *,
    host_id: str | None = None,
    attempt: int | None = None,
) -> str:
    """The webhook URL to register with the host for one session (and attempt)."""
    parts = urlsplit(base_url)
    params = {"session": session_name}
    if host_id is not None:
        params["host"] = host_id
    if attempt is not None:
        params["attempt"] = str(attempt)
    params["verify"] = session_proof(secret, session_name, host_id, attempt)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


class WebhookCaller(NamedTuple):
    session_name: str | None  # None: the event names no session
    host_id: str | None  # None: the default host, or a proof not bound to one host
    attempt: int | None = None  # None: a proof not bound to one attempt


def _matches(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.encode(), expected.encode())


def authenticate(
    secrets: Sequence[str],
    *,
    header_token: str | None,
    query_session: str | None,
    query_verify: str | None,
    body_session: str | None,
    query_host: str | None = None,
    query_attempt: str | None = None,
) -> WebhookCaller:
    """Who sent the event, and for which session; raises if unproven.

    With the header proof the session comes from the body (it may be missing: wppconnect
    issue #1931), and the host from ``?host=`` (then the header must be that host's token,
    or the shared secret itself). With the URL proof the session comes from the URL, and a
    body naming another session is refused.
    """
    if query_host is not None and not _UUID.match(query_host):
        raise InvalidVerifyToken()
    if query_attempt is not None and not _ATTEMPT.match(query_attempt):
        raise InvalidVerifyToken()
    attempt = int(query_attempt) if query_attempt is not None else None
    if header_token is not None:
        ok = False
        for secret in secrets:
            ok |= _matches(header_token, secret)
            if query_host:
                ok |= _matches(header_token, host_verify_token(secret, query_host))
        if ok:
            return WebhookCaller(body_session or None, query_host or None)
    if query_session and query_verify:
        ok = False
        for secret in secrets:
            proof = session_proof(secret, query_session, query_host or None, attempt)
            ok |= _matches(query_verify, proof)
        if ok:
            if body_session and body_session != query_session:
                raise InvalidVerifyToken()
            return WebhookCaller(query_session, query_host or None, attempt)
    raise InvalidVerifyToken()
