"""Checks of what callers send, each failure an error of the contract naming the field: what
every function shares (an account, a phone number, a body's fields, an Idempotency-Key) and
the session functions' requests; send-message's requests are in ``message_requests``."""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple, cast

from wa_gateway.errors import InvalidPhone, InvalidRequest

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


def parse_choices(value: Any, field: str, choices: tuple[str, ...]) -> list[str]:
    """``value`` as a list of one or more of ``choices``, each once, in the order of
    ``choices``; InvalidRequest naming ``field`` otherwise."""
    if (
        not isinstance(value, list)
        or not value
        or any(item not in choices for item in value)
        or len(set(value)) != len(value)
    ):
        raise InvalidRequest(f"'{field}' must list one or more of {', '.join(choices)}, once each.")
    return [choice for choice in choices if choice in value]


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


MAX_IDEMPOTENCY_KEY_CHARS = 255


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise InvalidRequest(
            f"'Idempotency-Key' must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters."
        )
    return key
