"""The caller of a request that comes with an API key.

A key's owner never changes, so a container learns it once (the key's first request there makes
one round trip for it, which is also that request's whole check) and keeps it; every later
request of the key is checked by the database in the round trip its first call makes anyway
(see ``gate``). What is kept is only the digest and the owner: revoking a key refuses its very
next call whatever a container has seen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from wa_gateway.auth.caller import Caller
from wa_gateway.errors import InvalidToken
from wa_gateway.keys import api_key
from wa_gateway.keys.gate import KeyCheck, KeyedTransport, owe, refusal_error, refused

OWNERS_KEPT = 1024
"""Keys whose owner a container keeps, the most recently used."""


class KeyCallers:
    """Turns ``wak_...`` bearer tokens into callers, checked as described above."""

    def __init__(self, transport: KeyedTransport) -> None:
        self.transport = transport
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def caller(self, token: str, scope: str) -> Caller:
        """The key's owner as the caller of a request that needs ``scope``. A malformed key is
        refused without a database call; an unknown, revoked or out-of-scope key, or one past
        its rate, with the round trip that checks it."""
        if not api_key.is_well_formed(token):
            raise InvalidToken("This API key is not valid: it is not one this service made.")
        key_hash = api_key.digest(token)
        with self._lock:
            owner = self._owners.get(key_hash)
            if owner is not None:
                self._owners.move_to_end(key_hash)
        if owner is None:
            answer = self.transport.check(key_hash, scope)
            refusal = refused(answer)
            if refusal is not None:
                raise refusal_error(refusal, scope)
            owner = str(answer["user_id"])
            self._keep(key_hash, owner)
        else:
            owe(KeyCheck(key_hash, owner, scope))
        claims = {"sub": owner, "role": "authenticated", "aud": "authenticated"}
        return Caller(user_id=owner, claims=claims, token="", api_key=key_hash)

    def end_request(self) -> None:
        """Forget a check the request never made (it ended before calling the database)."""
        owe(None)

    def _keep(self, key_hash: str, owner: str) -> None:
        with self._lock:
            self._owners[key_hash] = owner
            while len(self._owners) > OWNERS_KEPT:
                self._owners.popitem(last=False)
