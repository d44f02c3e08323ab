"""Recipient handling of the send routes: ``contactToArray`` and ``checkNumberStatus``."""

from __future__ import annotations

import re
from typing import Any

from local.simulator.config import SimConfig
from local.simulator.forms import js_truthy

_SEPARATORS = re.compile(r"\s*[,;]\s*")
# JavaScript's [^\w ]: \w is ASCII letters, digits and underscore; the space is kept.
_NOT_WORD = re.compile(r"[^A-Za-z0-9_ ]")
_PLAIN_NUMBER = re.compile(r"^\d{8,14}$")


def contact_to_array(number: Any, is_group: Any, is_newsletter: Any, is_lid: Any) -> list[str]:
    """Split and suffix recipients like the server's ``contactToArray``.

    Raises TypeError where the server's code would throw (``phone`` that is neither a
    string nor an array, or an array item that is not a string).
    """
    group, newsletter, lid = js_truthy(is_group), js_truthy(is_newsletter), js_truthy(is_lid)
    if isinstance(number, list):
        items = number
    elif isinstance(number, str):
        items = _SEPARATORS.split(number)
    else:
        raise TypeError("number.split is not a function")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError("contact.split is not a function")
        contact = item.split("@")[0]
        if not (group or newsletter):
            contact = _NOT_WORD.sub("", contact)
        if contact == "":
            continue
        if group:
            result.append(f"{contact}@g.us")
        elif newsletter:
            result.append(f"{contact}@newsletter")
        elif lid or len(contact) > 14:
            result.append(f"{contact}@lid")
        else:
            result.append(f"{contact}@c.us")
    return result


def skips_number_check(contact: str, body: dict[str, Any]) -> bool:
    return (
        js_truthy(body.get("isGroup")) or js_truthy(body.get("isNewsletter")) or "@lid" in contact
    )


def brazil_canonical(number: str) -> str:
    """The number WhatsApp's id uses for a Brazilian mobile.

    Accounts of area codes 31 and above keep the eight-digit form (``55 31 9 8877 6655``
    is ``553188776655``); those of 11 to 28 carry the ninth digit, which WhatsApp adds to
    an eight-digit mobile (``551188776655`` is ``5511988776655``). Anything else is kept.
    """
    if not number.startswith("55") or not number.isdigit():
        return number
    area = int(number[2:4]) if len(number) >= 4 else 0
    if len(number) == 13 and number[4] == "9" and area >= 31:
        return number[:4] + number[5:]
    if len(number) == 12 and 11 <= area <= 28 and number[4] in "6789":
        return number[:4] + "9" + number[4:]
    return number


def canonical_number(config: SimConfig, number: str) -> str:
    """The digits of WhatsApp's id for ``number`` (``canonical_numbers`` wins)."""
    if number in config.canonical_numbers:
        return config.canonical_numbers[number].split("@")[0]
    return brazil_canonical(number) if config.canonical_br_ninth_digit else number


def number_exists(config: SimConfig, number: str) -> bool:
    return bool(_PLAIN_NUMBER.match(number)) and number not in config.unknown_numbers


def check_number_status(config: SimConfig, contact: str) -> str | None:
    """WhatsApp's canonical id for a ``...@c.us`` contact, or None if it has no account.

    A number exists when it is 8 to 14 digits and not listed in ``unknown_numbers``;
    ``canonical_numbers`` maps a number to the id WhatsApp reports for it, and with
    ``canonical_br_ninth_digit`` Brazilian mobiles follow :func:`brazil_canonical`.
    """
    number = contact.split("@")[0]
    if not number_exists(config, number):
        return None
    canonical = config.canonical_numbers.get(number) or canonical_number(config, number)
    return canonical if "@" in canonical else f"{canonical}@c.us"
