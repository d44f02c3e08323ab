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


def check_number_status(config: SimConfig, contact: str) -> str | None:
    """WhatsApp's canonical id for a ``...@c.us`` contact, or None if it has no account.

    A number exists when it is 8 to 14 digits and not listed in ``unknown_numbers``;
    ``canonical_numbers`` maps a number to the id WhatsApp reports for it (the Brazilian
    ninth digit, for example).
    """
    number = contact.split("@")[0]
    if not _PLAIN_NUMBER.match(number) or number in config.unknown_numbers:
        return None
    canonical = config.canonical_numbers.get(number, number)
    return canonical if "@" in canonical else f"{canonical}@c.us"
