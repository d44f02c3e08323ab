"""What the session host's answers come back as: the records the client returns, the
exceptions for what the host refused, and the reading of the answers several routes share.
"""

from typing import Any, NamedTuple

from wa_gateway.errors import HostError


class HostUnauthorized(Exception):
    """The host refused the session's token (a new token is needed)."""


class HostSessionClosed(Exception):
    """The host has no live client for the session (its 404 "Disconnected")."""


class HostUnknownRecipient(Exception):
    """The host says the number is not on WhatsApp."""


class HostChatUnreadable(Exception):
    """The host could not read a chat's messages (get-messages' controller threw: a chat not
    in its store, an id that is not WhatsApp's canonical one). Its token is fine."""


class HostRefusedMedia(Exception):
    """The host did not give a message's file. ``transient``: its "Decrypt file error", also
    what it answers when the CDN or the decryption fails for a moment; else final (the
    message has no file)."""

    def __init__(self, transient: bool) -> None:
        super().__init__("the host did not give the file")
        self.transient = transient


# The auth middleware's 401s (wppconnect-server's verifyToken): a missing token or session, or
# a token that does not match. A 401 with another body is a route's own answer: get-messages
# answers 401 whenever its controller throws.
_TOKEN_MISSING = frozenset(
    {"Token is not present. Check your header and try again", "Session not informed"}
)


def is_refused_token(body: Any) -> bool:
    """Whether a 401's body is the auth middleware's (or unreadable: taken as one)."""
    if not isinstance(body, dict):
        return True
    error = body.get("error")
    return (isinstance(error, str) and error.startswith("Check that")) or body.get(
        "message"
    ) in _TOKEN_MISSING


class SentMessage(NamedTuple):
    wpp_message_id: str
    to: str | None


class HostMedia(NamedTuple):
    """A file as the host gives it: base64, and the type it names."""

    base64: str
    mime_type: str | None


class HostState(NamedTuple):
    """What the host says a session is doing, in its own words."""

    status: str | None
    urlcode: str | None = None
    phone_code: str | None = None
    qrcode: str | None = None  # the host's PNG of the QR, base64 or a data URL


def sent_from(status: int, body: Any) -> SentMessage:
    """The message a send route says it sent: its ``response`` holds full Message objects
    (``send-message``) or ``{ack, id}`` (the file routes)."""
    if status == 201 and isinstance(body, dict):
        items = body.get("response")
        first = items[0] if isinstance(items, list) and items else None
        wpp_id = first.get("id") if isinstance(first, dict) else None
        if isinstance(wpp_id, dict):
            wpp_id = wpp_id.get("_serialized")
        if isinstance(wpp_id, str) and wpp_id:
            to = first.get("to") if isinstance(first, dict) else None
            return SentMessage(wpp_id, to if isinstance(to, str) else None)
        raise HostError()  # a 201 we cannot read: it may have been sent
    if status == 404:
        raise HostSessionClosed()
    if status == 400 and _says_number_missing(body):
        raise HostUnknownRecipient()
    if status >= 500 or status == 400:
        raise HostError(maybe_acted=False)  # wppconnect answers 500 when the send threw
    raise HostError()


def state_from(status: int, body: Any) -> HostState:
    """A session's state as ``start-session`` and ``status-session`` give it."""
    if status not in (200, 201) or not isinstance(body, dict):
        raise HostError()
    raw = body.get("status")
    if raw is not None and not isinstance(raw, str):
        raise HostError()
    urlcode = body.get("urlcode")
    phone_code = body.get("phoneCode")
    image = body.get("qrcode")
    return HostState(
        status=raw,
        urlcode=urlcode if isinstance(urlcode, str) and urlcode else None,
        phone_code=phone_code if isinstance(phone_code, str) and phone_code else None,
        qrcode=image if isinstance(image, str) and image else None,
    )


def _says_number_missing(body: Any) -> bool:
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and ("não existe" in message or "not exist" in message)
