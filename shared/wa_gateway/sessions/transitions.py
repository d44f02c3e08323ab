"""The one place that turns what the host says into our session statuses.

The host speaks in two ways: answers to our calls (``status`` CLOSED, INITIALIZING, QRCODE,
PHONECODE, CONNECTED, or the lowercase ``qrcode``/``phoneCode`` of a held start) and webhook
events (``qrcode``, ``phoneCode``, ``status-find``, ``closesession``, ``logoutsession``...).
Both become a :class:`SessionUpdate`; the database applies it only if it moves the session
forward (see ``gateway_apply_host_state``).

A login (``qrReadSuccess`` for a scan, ``isLogged`` for a saved one) is not yet a usable
session: the host has its library client only once ``create()`` resolves, about 1.2 s later
and more while the account syncs; until then ``check-connection-session`` is false and every
route behind the status middleware answers 404. So a login is ``starting`` with the reason
``syncing`` (between ``pairing`` and ``connected`` in the order of an attempt), and only
``inChat`` (or the host answering CONNECTED) makes a session ``connected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wa_gateway.records import COMING_UP, SessionRecord, SessionStatus, SessionUpdate
from wa_gateway.sessions import qr

if TYPE_CHECKING:  # the webhook's path reads events, never the host's answers
    from wa_gateway.host.answers import HostState

# The status_reason of a `starting` session the host has logged in and not yet made usable.
SYNCING = "syncing"

# wppconnect's statusFind values (see WPPConnect's StatusFind enum) and what each means for us.
STATUS_FIND: dict[str, SessionStatus] = {
    "notLogged": "pairing",
    "qrReadFail": "pairing",
    "qrReadError": "pairing",
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

# Logged in, not yet usable (see the module's docstring).
_LOGGED_IN = frozenset({"qrReadSuccess", "isLogged"})
_CLOSE_EVENTS = {"closesession": "closed", "logoutsession": "logged_out"}


def syncing(session_name: str) -> SessionUpdate:
    """The host has logged the session in and is getting it ready."""
    return SessionUpdate(session_name, "starting", reason=SYNCING)


def is_syncing(session: SessionRecord) -> bool:
    """Whether the session is logged in and not yet usable (``starting``, ``syncing``)."""
    return session.status == "starting" and session.status_reason == SYNCING


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


def from_fresh_look(session: SessionRecord, state: HostState) -> SessionUpdate | None:
    """Our view of a ``status-session`` answer for a session whose host says it is not
    connected, given what we hold: a session that was linked (connected, or syncing) and that
    the host is bringing up again (a restart restoring it) is syncing; a syncing one whose
    entry still shows the QR its scan used is left as it is (the library is finishing the
    login), so the used QR never comes back."""
    name = session.session_id
    linked = session.status == "connected" or is_syncing(session)
    raw = (state.status or "").upper()
    if linked and raw == "INITIALIZING":
        return syncing(name)
    if is_syncing(session) and raw in COMING_UP:
        return None
    return from_host_answer(name, state, after_start=False)


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
        if found in _LOGGED_IN:
            return syncing(session_name)
        status = STATUS_FIND.get(found) if isinstance(found, str) else None
        if status is None:
            return None
        reason = found if status == "disconnected" else None
        return SessionUpdate(session_name, status, reason=reason)
    if isinstance(name, str) and name in _CLOSE_EVENTS:
        return SessionUpdate(session_name, "disconnected", reason=_CLOSE_EVENTS[name])
    return None
