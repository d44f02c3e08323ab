"""The one place that turns what the host says into our session statuses.

The host speaks in two ways: answers to our calls (``status`` CLOSED, INITIALIZING, QRCODE,
PHONECODE, CONNECTED, or the lowercase ``qrcode``/``phoneCode`` of a held start) and webhook
events (``qrcode``, ``phoneCode``, ``status-find``, ``closesession``, ``logoutsession``...).
Both become a :class:`SessionUpdate`; the database applies it only if it moves the session
forward (see ``gateway_apply_host_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wa_gateway.records import SessionStatus, SessionUpdate
from wa_gateway.sessions import qr

if TYPE_CHECKING:  # the webhook's path reads events, never the host's answers
    from wa_gateway.host.answers import HostState

# wppconnect's statusFind values (see WPPConnect's StatusFind enum) and what each means for us.
STATUS_FIND: dict[str, SessionStatus] = {
    "notLogged": "pairing",
    "qrReadSuccess": "pairing",
    "qrReadFail": "pairing",
    "qrReadError": "pairing",
    "isLogged": "connected",
    "inChat": "connected",
    "autocloseCalled": "disconnected",
    "browserClose": "disconnected",
    "disconnectedMobile": "disconnected",
    "phoneNotConnected": "disconnected",
    "serverClose": "disconnected",
    # Older names that some hosts still send.
    "desconnectedMobile": "disconnected",
    "deleteToken": "disconnected",
}

_CLOSE_EVENTS = {"closesession": "closed", "logoutsession": "logged_out"}


def from_host_answer(
    session_name: str, state: HostState, *, after_start: bool
) -> SessionUpdate | None:
    """Our view of a host answer to start-session (``after_start``) or status-session."""
    raw = (state.status or "").upper()
    status: SessionStatus
    if raw == "CONNECTED":
        status = "connected"
    elif raw == "QRCODE" and state.urlcode:
        return SessionUpdate(
            session_name, "pairing", qr_code=state.urlcode, qr_image=qr.host_image(state.qrcode)
        )
    elif raw == "PHONECODE" and state.phone_code:
        return SessionUpdate(session_name, "pairing", pairing_code=state.phone_code)
    elif raw in {"QRCODE", "PHONECODE"}:
        status = "pairing"
    elif raw == "INITIALIZING":
        status = "starting"
    elif raw in {"CLOSED", ""}:
        # After our start, CLOSED is the host's first answer: the start has only begun.
        if after_start:
            return None
        return SessionUpdate(session_name, "disconnected", reason="host_closed")
    else:
        return None
    return SessionUpdate(session_name, status)


def host_started_anew(state: HostState) -> bool:
    """Whether the host's answer to a held start (``waitQrCode``) says it started a new browser
    with our body, and so posts to the webhook URL we gave it. A fresh start answers with the
    lowercase ``qrcode``/``phoneCode`` of its first code, or first with null or CLOSED (the
    state it started from); INITIALIZING, QRCODE, PHONECODE or CONNECTED mean it returned early
    and keeps the body (and webhook URL) of the start that launched the running browser."""
    return state.status in (None, "CLOSED", "qrcode", "phoneCode")


def pairing_method_of(state: HostState) -> str | None:
    """The method of the pairing an early start answer shows: "qr", "code", or None."""
    return {"QRCODE": "qr", "PHONECODE": "code"}.get(state.status or "")


def from_event(session_name: str, event: Mapping[str, Any]) -> SessionUpdate | None:
    """Our view of one webhook event, or None for events that don't change a session."""
    name = event.get("event")
    if name == "qrcode":
        urlcode = event.get("urlcode")
        if isinstance(urlcode, str) and urlcode:
            image = qr.host_image(event.get("qrcode"))
            return SessionUpdate(session_name, "pairing", qr_code=urlcode, qr_image=image)
        return None
    if name == "phoneCode":
        code = event.get("phoneCode")
        if isinstance(code, str) and code:
            return SessionUpdate(session_name, "pairing", pairing_code=code)
        return None
    if name == "status-find":
        found = event.get("status")
        status = STATUS_FIND.get(found) if isinstance(found, str) else None
        if status is None:
            return None
        reason = found if status == "disconnected" else None
        return SessionUpdate(session_name, status, reason=reason)
    if isinstance(name, str) and name in _CLOSE_EVENTS:
        return SessionUpdate(session_name, "disconnected", reason=_CLOSE_EVENTS[name])
    return None
