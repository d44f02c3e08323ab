"""Checks of what callers send, each failure an error of the contract naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from wa_gateway.errors import InvalidPhone, InvalidRequest, MessageTooLong

if TYPE_CHECKING:
    from wa_gateway.media.outgoing import MediaRequest

_PHONE_NOISE = re.compile(r"[+\s\-()]")
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
DEFAULT_ACCOUNT = "default"
_DIGITS = re.compile(r"^[0-9]{8,15}$")


def normalize_phone(value: Any, field: str = "phone") -> str:
    """Digits with country code: '+55 (11) 99999-9999' becomes '5511999999999'."""
    if not isinstance(value, str):
        raise InvalidRequest(f"'{field}' must be a string of digits with the country code.")
    digits = _PHONE_NOISE.sub("", value)
    if not _DIGITS.match(digits):
        raise InvalidPhone()
    return digits


def is_plain_text(value: str) -> bool:
    """True for text without control characters (C0 or C1): names and notes users give."""
    import unicodedata  # only the api-keys function's paths ask: no cost to the others

    return not any(unicodedata.category(c) == "Cc" for c in value)


def reject_unknown_fields(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise InvalidRequest(f"Unknown field '{sorted(unknown)[0]}'.")


def parse_account(value: Any) -> str:
    """A WhatsApp account label: 1 to 32 of a-z, 0-9 and '-' (default: "default")."""
    if value is None:
        return DEFAULT_ACCOUNT
    if not isinstance(value, str) or not _ACCOUNT.match(value):
        raise InvalidRequest(
            "'account' must be 1 to 32 lowercase letters, digits or '-', starting with a "
            "letter or digit."
        )
    return value


_REFRESH = {"true": True, "1": True, "false": False, "0": False}


class StatusRequest(NamedTuple):
    refresh: bool = False
    account: str = DEFAULT_ACCOUNT


def parse_status_request(refresh: str | None, account: str | None) -> StatusRequest:
    """The query of a status read: ``refresh`` is true, false, 1 or 0 in any case (absent or
    empty: false)."""
    wanted = _REFRESH.get((refresh or "false").lower())
    if wanted is None:
        raise InvalidRequest("'refresh' must be true or false.")
    return StatusRequest(wanted, parse_account(account))


def parse_disconnect_request(body: dict[str, Any]) -> str:
    """The account a disconnect is for (the body is optional)."""
    reject_unknown_fields(body, {"account"})
    return parse_account(body.get("account"))


class StartRequest(NamedTuple):
    method: Literal["qr", "code"] = "qr"
    phone: str | None = None
    account: str = DEFAULT_ACCOUNT


def parse_start_request(body: dict[str, Any]) -> StartRequest:
    reject_unknown_fields(body, {"method", "phone", "account"})
    account = parse_account(body.get("account"))
    method = body.get("method", "qr")
    if method not in ("qr", "code"):
        raise InvalidRequest('\'method\' must be "qr" or "code".')
    phone = body.get("phone")
    if phone is None:
        if method == "code":
            raise InvalidRequest("'phone' is required when 'method' is \"code\".")
        return StartRequest("qr", None, account)
    return StartRequest(cast(Literal["qr", "code"], method), normalize_phone(phone), account)


MAX_MESSAGE_CHARS = 4096
MAX_CONTACT_NAME_CHARS = 200
MAX_IDEMPOTENCY_KEY_CHARS = 255


LID_SUFFIX = "@lid"
_LID = re.compile(r"^([0-9]{5,20})@lid$")
# The host sends to a LID whatever has more than 14 characters (its contactToArray).
MAX_SENDABLE_PHONE_DIGITS = 14


class SendRequest(NamedTuple):
    """A send: ``message`` is the text, or "" when ``template`` names the caller's template to
    render with ``variables``; ``send_at`` (aware, UTC) schedules it. With ``media``,
    ``message`` is the file's caption (maybe "")."""

    phone: str  # digits, or "<digits>@lid" for a contact known by their privacy id (LID)
    message: str
    contact_name: str | None = None
    account: str = DEFAULT_ACCOUNT
    template: str | None = None
    variables: Mapping[str, str] | None = None
    send_at: datetime | None = None
    media: MediaRequest | None = None

    @property
    def lid(self) -> str | None:
        """The LID's digits when the message goes to a LID, else None."""
        return self.phone.removesuffix(LID_SUFFIX) if self.phone.endswith(LID_SUFFIX) else None


def parse_recipient(value: Any) -> str:
    """A phone number the host can send to (8 to 14 digits), or a LID as ``<digits>@lid``."""
    if isinstance(value, str) and value.strip().lower().endswith(LID_SUFFIX):
        lid = _LID.match(value.strip().lower())
        if lid is None:
            raise InvalidPhone("A LID is its digits followed by '@lid', like 123456789012345@lid.")
        return f"{lid.group(1)}{LID_SUFFIX}"
    digits = normalize_phone(value)
    if len(digits) > MAX_SENDABLE_PHONE_DIGITS:
        raise InvalidPhone(
            f"The phone number has {len(digits)} digits: the WhatsApp host reads anything longer "
            f"than {MAX_SENDABLE_PHONE_DIGITS} digits as a privacy id (LID), not a phone "
            "number, so it cannot send there. Check the number, or write a LID as "
            "'<digits>@lid'."
        )
    return digits


def parse_send_request(body: dict[str, Any], *, now: datetime | None = None) -> SendRequest:
    reject_unknown_fields(
        body,
        {"phone", "message", "contactName", "account", "template", "variables", "send_at", "media"},
    )
    if "phone" not in body:
        raise InvalidRequest("'phone' is required.")
    phone = parse_recipient(body["phone"])
    template, variables = parse_template_fields(body)
    message = body.get("message")
    media = None
    if "media" in body:
        from wa_gateway.media.outgoing import parse_caption, parse_media

        if template is not None or "send_at" in body:
            raise InvalidRequest(
                "A file is sent now and as it is: not with 'template' or 'send_at'."
            )
        message = parse_caption(message)
        media = parse_media(body["media"])
    elif template is not None:
        message = ""
    elif not isinstance(message, str) or not message.strip():
        raise InvalidRequest("'message' must be a non-empty string.")
    elif len(message) > MAX_MESSAGE_CHARS:
        raise MessageTooLong(
            f"The message has {len(message)} characters; at most {MAX_MESSAGE_CHARS}."
        )
    contact = body.get("contactName")
    if contact is not None and (
        not isinstance(contact, str) or len(contact) > MAX_CONTACT_NAME_CHARS
    ):
        raise InvalidRequest(
            f"'contactName' must be a string of at most {MAX_CONTACT_NAME_CHARS} characters."
        )
    return SendRequest(
        phone,
        message,
        contact or None,
        parse_account(body.get("account")),
        template,
        variables,
        parse_send_at(body.get("send_at"), now or datetime.now(UTC)),
        media,
    )


_TEMPLATE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def parse_template_fields(body: Mapping[str, Any]) -> tuple[str | None, dict[str, str] | None]:
    """``template`` and ``variables`` of a send (both absent, or a template name instead of
    ``message`` with its variables, names mapped to strings)."""
    template = body.get("template")
    variables = body.get("variables")
    if template is None:
        if variables is not None:
            raise InvalidRequest("'variables' goes with 'template'.")
        return None, None
    if "message" in body:
        raise InvalidRequest("Send either 'message' or 'template', not both.")
    if not isinstance(template, str) or not _TEMPLATE_NAME.match(template):
        raise InvalidRequest("'template' must be a template name: 1 to 64 of a-z, 0-9, _ and -.")
    if variables is None:
        return template, {}
    if not isinstance(variables, dict):
        raise InvalidRequest("'variables' must be an object of names and texts.")
    for name, value in variables.items():
        if not _VARIABLE_NAME.match(name):
            raise InvalidRequest(
                f"Variable '{name}' is not a placeholder name: a-z first, then up to 31 of "
                "a-z, 0-9 and _."
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"Variable '{name}' must be a string.")
    return template, dict(variables)


SCHEDULE_MIN_AHEAD = timedelta(minutes=1)
SCHEDULE_MAX_AHEAD = timedelta(days=30)


def parse_send_at(value: Any, now: datetime) -> datetime | None:
    """An ISO 8601 time with its offset, one minute to 30 days after ``now``, in UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(
            "'send_at' must be an ISO 8601 time with its offset, such as 2026-12-01T09:30:00-03:00."
        )
    if not now + SCHEDULE_MIN_AHEAD <= moment <= now + SCHEDULE_MAX_AHEAD:
        raise InvalidRequest("'send_at' must be between one minute and 30 days from now.")
    return moment.astimezone(UTC)


def parse_cancel_request(body: Mapping[str, Any]) -> str:
    """The id of the scheduled message to cancel."""
    import uuid  # only a cancel reads an id: 2 ms off every other cold start

    reject_unknown_fields(dict(body), {"id"})
    value = body.get("id")
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(
            "'id' must be the id of a message, as send-message answered it."
        ) from None


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise InvalidRequest(
            f"'Idempotency-Key' must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters."
        )
    return key
