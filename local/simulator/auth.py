"""Session tokens exactly as wppconnect-server makes and checks them.

A token is ``bcrypt(session + secret, cost 10)`` with ``/`` written as ``_`` and ``+`` as
``-``. Tokens are not stored: any token whose hash matches is valid for its session. A
successful check is remembered per (session, token), because a cost-10 compare takes
tens of milliseconds and a test suite makes many calls.
"""

from __future__ import annotations

import threading

import bcrypt

BCRYPT_COST = 10
# bcrypt only reads the first 72 bytes; Node's bcrypt truncates silently, Python's raises.
_BCRYPT_MAX_BYTES = 72
_CACHE_LIMIT = 4096


def _secret_bytes(session: str, secret: str) -> bytes:
    return (session + secret).encode()[:_BCRYPT_MAX_BYTES]


def encode_token(bcrypt_hash: str) -> str:
    return bcrypt_hash.replace("/", "_").replace("+", "-")


def decode_token(token: str) -> str:
    return token.replace("_", "/").replace("-", "+")


class TokenAuthority:
    def __init__(self, secret_key: str) -> None:
        self.secret_key = secret_key
        self._verified: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def generate(self, session: str) -> str:
        """A new token for ``session`` (a fresh salt each time; every token stays valid)."""
        hashed = bcrypt.hashpw(_secret_bytes(session, self.secret_key), bcrypt.gensalt(BCRYPT_COST))
        return encode_token(hashed.decode())

    def verify(self, session: str, decoded_token: str) -> bool:
        """Check a token whose ``_``/``-`` substitution has already been undone."""
        key = (session, decoded_token)
        with self._lock:
            if key in self._verified:
                return True
        try:
            ok = bcrypt.checkpw(_secret_bytes(session, self.secret_key), decoded_token.encode())
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                if len(self._verified) >= _CACHE_LIMIT:
                    self._verified.clear()
                self._verified.add(key)
        return ok
