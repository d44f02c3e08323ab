"""AES-256-GCM encryption of secrets stored in the database (such as host tokens).

A ciphertext is the text ``v1.<key id>.<base64url(nonce | ciphertext+tag)>``
(no padding), with a fresh random 96-bit nonce per message. The caller's
``context`` (for example the session name) is the AES-GCM associated data:
a ciphertext copied to another row, whose context differs, fails to decrypt.

Keys come from one setting, either 64 hex characters (one key, id ``k1``) or
``id1:hex64,id2:hex64``: the first key encrypts, every key decrypts. To
rotate, put the new key first and keep the old one until every row for which
``Keyring.needs_reencryption`` is True has been re-encrypted.

No message, ``repr`` or ``str`` in this module shows key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = "v1"
DEFAULT_KEY_ID = "k1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_HEX_KEY = re.compile(rf"[0-9a-fA-F]{{{2 * KEY_BYTES}}}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class DecryptionError(Exception):
    """A ciphertext could not be decrypted: bad format, unknown key, tampering or wrong context.

    The message never contains key material or plaintext.
    """


class Keyring:
    """A set of AES-256 keys by id; the first one (the active key) encrypts.

    Build it with ``Keyring.from_setting``, or directly from ``(key id, 32
    key bytes)`` pairs. Raises ValueError on an invalid id, a key that is not
    32 bytes, a duplicate id or an empty list; the message never contains key
    material.
    """

    __slots__ = ("_active_key_id", "_ciphers", "_keys")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("the keyring needs at least one key")
        ciphers: dict[str, bytes] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"entry {position}: the key id must be 1 to 32 characters from A-Z a-z 0-9 _ -"
                )
            if key_id in ciphers:
                raise ValueError(f"entry {position}: the key id {key_id!r} is used twice")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"entry {position} ({key_id}): a key must be {KEY_BYTES} bytes")
            ciphers[key_id] = key
        self._keys = ciphers
        self._ciphers: dict[str, AESGCM] = {}  # built on first use: cryptography loads then
        self._active_key_id = keys[0][0]

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Parse a key setting: ``<64 hex>`` or ``id1:<64 hex>,id2:<64 hex>,...``.

        A lone key gets the id ``k1``. The first entry is the active key.
        Whitespace around entries is ignored. Raises ValueError naming the
        entry and the problem (never the key material, nor a malformed id,
        which might be a misplaced key).
        """
        if not isinstance(value, str) or not value.strip():
            raise ValueError("the key setting is empty")
        entries = [entry.strip() for entry in value.split(",")]
        if len(entries) == 1 and ":" not in entries[0]:
            return cls([(DEFAULT_KEY_ID, _parse_hex_key(entries[0], 1))])
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(entries, start=1):
            key_id, separator, hex_key = entry.partition(":")
            key_id = key_id.strip()
            if not separator:
                raise ValueError(f"entry {position}: expected '<key id>:<64 hex characters>'")
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"entry {position}: the key id must be 1 to 32 characters from A-Z a-z 0-9 _ -"
                )
            keys.append((key_id, _parse_hex_key(hex_key.strip(), position)))
        return cls(keys)

    @property
    def active_key_id(self) -> str:
        """The id of the key that ``encrypt`` uses."""
        return self._active_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, the active one first."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(active_key_id={self._active_key_id!r}, key_ids={list(self._keys)!r})"

    __str__ = __repr__

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` (UTF-8) under the active key, bound to ``context``.

        Every call uses a fresh random nonce, so equal inputs give different
        outputs. Raises ValueError if ``context`` is empty.
        """
        aad = _associated_data(context)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(self._active_key_id).encrypt(nonce, plaintext.encode("utf-8"), aad)
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{FORMAT_VERSION}.{self._active_key_id}.{body}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        """Decrypt a ``v1`` ciphertext made by ``encrypt`` with the same ``context``.

        Raises DecryptionError for a malformed ciphertext, an unknown key id,
        tampering or a different context; ValueError if ``context`` is empty.
        """
        aad = _associated_data(context)
        from cryptography.exceptions import InvalidTag

        key_id, blob = _parse(ciphertext)
        if key_id not in self._keys:
            raise DecryptionError(f"the ciphertext is encrypted under an unknown key id {key_id!r}")
        cipher = self._cipher(key_id)
        try:
            plaintext = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError(
                "the ciphertext failed authentication: wrong key or context, or altered"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("the decrypted value is not UTF-8 text") from None

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[key_id] = AESGCM(self._keys[key_id])
        return cipher

    def needs_reencryption(self, ciphertext: str) -> bool:
        """True if ``ciphertext`` was encrypted under a key other than the active one.

        Looks at the format and key id only (no decryption). Raises
        DecryptionError if ``ciphertext`` is not a ``v1`` ciphertext.
        """
        key_id, _ = _parse(ciphertext)
        return key_id != self._active_key_id


def _parse_hex_key(hex_key: str, position: int) -> bytes:
    """32 key bytes from 64 hex characters; ValueError (without the value) otherwise."""
    if len(hex_key) != 2 * KEY_BYTES:
        raise ValueError(
            f"entry {position}: a key must be {2 * KEY_BYTES} hex characters "
            f"({KEY_BYTES} bytes), got {len(hex_key)} characters"
        )
    if not _HEX_KEY.fullmatch(hex_key):
        raise ValueError(f"entry {position}: a key must contain only hex characters 0-9 a-f")
    return bytes.fromhex(hex_key)


def _associated_data(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty string")
    return context.encode("utf-8")


def _parse(ciphertext: str) -> tuple[str, bytes]:
    """Key id and ``nonce | ciphertext+tag`` bytes of a ``v1`` ciphertext."""
    if not isinstance(ciphertext, str):
        raise DecryptionError("the ciphertext is not text")
    parts = ciphertext.split(".")
    if len(parts) != 3 or parts[0] != FORMAT_VERSION:
        raise DecryptionError(f"the ciphertext is not in the {FORMAT_VERSION} format")
    key_id, body = parts[1], parts[2]
    if not _KEY_ID.fullmatch(key_id) or not _BASE64URL.fullmatch(body):
        raise DecryptionError(f"the ciphertext is not in the {FORMAT_VERSION} format")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError(f"the ciphertext is not in the {FORMAT_VERSION} format") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("the ciphertext is too short")
    return key_id, blob
