"""Proof that a webhook call comes from our host, and for which session.

Two proofs are accepted, each checked in constant time against every configured secret (two
at once while rotating; the first one signs):

* ``x-verify: <secret>``: for hosts that can send a header (a patched server, a proxy);
* ``?session=<name>&verify=<HMAC-SHA256(secret, name) hex>`` in the webhook URL that
  start-session registers with the host: what a stock wppconnect-server can carry. It proves
  that one session, and grants nothing for any other.

The URL proof is a credential: it is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from wa_gateway.errors import InvalidVerifyToken


def session_proof(secret: str, session_name: str) -> str:
    return hmac.new(secret.encode(), session_name.encode(), hashlib.sha256).hexdigest()


def session_webhook_url(base_url: str, session_name: str, secret: str) -> str:
    """The webhook URL to register with the host for one session."""
    parts = urlsplit(base_url)
    extra = urlencode({"session": session_name, "verify": session_proof(secret, session_name)})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _matches(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.encode(), expected.encode())


def authenticate(
    secrets: Sequence[str],
    *,
    header_token: str | None,
    query_session: str | None,
    query_verify: str | None,
    body_session: str | None,
) -> str | None:
    """The session the call is about, or None if it names none; raises if unproven.

    With the header proof the session comes from the body (it may be missing: wppconnect
    issue #1931). With the URL proof it comes from the URL, and a body naming another session
    is refused.
    """
    if header_token is not None:
        ok = False
        for secret in secrets:
            ok |= _matches(header_token, secret)
        if ok:
            return body_session or None
    if query_session and query_verify:
        ok = False
        for secret in secrets:
            ok |= _matches(query_verify, session_proof(secret, query_session))
        if ok:
            if body_session and body_session != query_session:
                raise InvalidVerifyToken()
            return query_session
    raise InvalidVerifyToken()
