"""The store's transport for the requests that come with an API key.

A key is checked in the round trip its request's first database call makes anyway: that call
goes as ``gateway_keyed_call``, which finds the key by its digest, checks that it is still
there (a revoked key is deleted), that it is the owner's the function thinks, that it has the
route's scope and that its rate allows, counts the call and, in the same transaction, runs the
call. Later calls of the request go as they are (the key was checked a moment ago), but for a
read made as the user, which goes through ``gateway_keyed_call`` too: there the database takes
the owner's role and claims, as PostgREST does for a token, so RLS decides what a key sees.

Which request a call belongs to is a context variable, so the delivery worker's threads (which
share the store with the functions in the local stack) never pick up a request's check.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, NamedTuple

from wa_gateway.errors import InsufficientScope, InvalidToken, RateLimited
from wa_gateway.store.transport import Call, Transport


class KeyCheck(NamedTuple):
    """The check a key's request still owes: the key's digest, the owner the function
    knows for it, the route's scope."""

    key_hash: str
    user_id: str
    scope: str


_PENDING: ContextVar[KeyCheck | None] = ContextVar("wa_gateway_key_check", default=None)


def owe(check: KeyCheck | None) -> None:
    """Make the next call of this request carry ``check`` (None: nothing owed, at a request's
    end)."""
    _PENDING.set(check)


class KeyRefused(NamedTuple):
    reason: str
    retry_after: int = 1


def refusal_error(refusal: KeyRefused, scope: str | None) -> Exception:
    """The contract's error for a key the database refused."""
    if refusal.reason == "insufficient_scope":
        return InsufficientScope(f"This API key lacks the '{scope}' scope.")
    if refusal.reason == "rate_limited":
        return RateLimited(
            refusal.retry_after, "Too many requests with this API key. Wait and try again."
        )
    return InvalidToken("This API key is not valid: it was revoked, or never existed.")


def refused(answer: Any) -> KeyRefused | None:
    """What ``gateway_keyed_call`` refused, if it did."""
    if isinstance(answer, dict) and answer.get("refused"):
        return KeyRefused(str(answer["refused"]), int(answer.get("retry_after") or 1))
    return None


class KeyedTransport(Transport):
    """A transport that sends the calls of a key's request through ``gateway_keyed_call``;
    every other call goes to ``inner`` unchanged."""

    def __init__(self, inner: Transport, *, burst: float, rate_per_s: float) -> None:
        self.inner = inner
        self._rate = {"burst": burst, "rate_per_s": rate_per_s}

    @property
    def round_trips(self) -> int:
        return self.inner.round_trips

    @round_trips.setter
    def round_trips(self, value: int) -> None:
        self.inner.round_trips = value

    def check(self, key_hash: str, scope: str) -> Any:
        """A key's first call in a container, which only learns its owner: the whole check
        (and the count), answering ``{"user_id"}`` or the refusal."""
        call = {"key_hash": key_hash, "scope": scope, "count": True, **self._rate}
        return self.inner.rpc("gateway_keyed_call", {"p_call": call})

    def send(self, call: Call) -> Any:
        function, params, caller, repeatable = call
        owed = _PENDING.get()
        as_user = caller is not None and caller.api_key is not None
        if owed is None and not as_user:
            return self.inner.send(call)
        keyed: dict[str, Any] = {"function": function, "params": dict(params), "as_user": as_user}
        if owed is not None:
            _PENDING.set(None)
            keyed.update(owed._asdict(), count=True, **self._rate)
        else:
            assert caller is not None and caller.api_key is not None
            keyed.update(key_hash=caller.api_key, user_id=caller.user_id)
        answer = self.inner.rpc("gateway_keyed_call", {"p_call": keyed}, repeatable=repeatable)
        refusal = refused(answer)
        if refusal is not None:
            raise refusal_error(refusal, owed.scope if owed else None)
        return answer["result"]

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
