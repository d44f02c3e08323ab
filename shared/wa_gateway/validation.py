"""Checks of what callers send, each failure an error of the contract naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, cast

from wa_gateway.errors import InvalidPhone, InvalidRequest

_PHONE_NOISE = re.compile(r"[+\s\-()]")
_DIGITS = re.compile(r"^[0-9]{8,15}$")


def normalize_phone(value: Any, field: str = "phone") -> str:
    """Digits with country code: '+55 (11) 99999-9999' becomes '5511999999999'."""
    if not isinstance(value, str):
        raise InvalidRequest(f"'{field}' must be a string of digits with the country code.")
    digits = _PHONE_NOISE.sub("", value)
    if not _DIGITS.match(digits):
        raise InvalidPhone()
    return digits


@dataclass(frozen=True)
class StartRequest:
    method: Literal["qr", "code"] = "qr"
    phone: str | None = None


def parse_start_request(body: dict[str, Any]) -> StartRequest:
    unknown = set(body) - {"method", "phone"}
    if unknown:
        raise InvalidRequest(f"Unknown field '{sorted(unknown)[0]}'.")
    method = body.get("method", "qr")
    if method not in ("qr", "code"):
        raise InvalidRequest('\'method\' must be "qr" or "code".')
    phone = body.get("phone")
    if phone is None:
        if method == "code":
            raise InvalidRequest("'phone' is required when 'method' is \"code\".")
        return StartRequest("qr")
    return StartRequest(cast(Literal["qr", "code"], method), normalize_phone(phone))
