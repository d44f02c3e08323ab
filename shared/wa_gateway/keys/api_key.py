"""What an API key is: ``wak_`` and 32 random bytes in base64url (43 characters, no padding).

Only the key's SHA-256 is stored. A key carries 256 bits of chance, so a plain digest cannot be
reversed or guessed, and a slow one (bcrypt, scrypt) would only slow every call.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from wa_gateway.auth.caller import API_KEY_PREFIX

KEY_BYTES = 32
PREFIX_CHARACTERS = 6
"""Characters after ``wak_`` kept and shown, to tell a user's keys apart (36 bits of 256)."""

_SHAPE = re.compile(rf"^{API_KEY_PREFIX}[A-Za-z0-9_-]{{43}}$")


def new_key() -> str:
    """A fresh key, from the operating system's random source."""
    raw = secrets.token_bytes(KEY_BYTES)
    return API_KEY_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_well_formed(token: str) -> bool:
    """True when ``token`` has a key's shape (``wak_`` and 43 base64url characters, the last
    of which holds only 4 bits of the 32 bytes)."""
    if not _SHAPE.match(token):
        return False
    body = token[len(API_KEY_PREFIX) :]
    return base64.urlsafe_b64encode(base64.urlsafe_b64decode(body + "=")).decode() == body + "="


def digest(key: str) -> str:
    """The stored form of a key: its SHA-256, in hex."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def prefix(key: str) -> str:
    """What a key is shown as once made: ``wak_`` and its next 6 characters."""
    return key[: len(API_KEY_PREFIX) + PREFIX_CHARACTERS]
