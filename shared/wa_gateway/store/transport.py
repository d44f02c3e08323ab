"""The one thing a store needs of a database connection."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

from wa_gateway.auth.caller import Caller


class Call(NamedTuple):
    """One call of ``public.<function>`` with named ``params``.

    ``caller`` None runs it as ``service_role``; otherwise as the caller, with their claims
    applied exactly as PostgREST applies them, so Row Level Security decides. ``repeatable``:
    running it twice changes nothing more than running it once (true of every SQL function the
    store calls, but a send without an idempotency key), so a call whose connection broke under
    it may be sent again (``wa_gateway.store.failures``)."""

    function: str
    params: Mapping[str, Any]
    caller: Caller | None = None
    repeatable: bool = True


class Transport(ABC):
    """Carries one SQL function call to the database: one round trip, one transaction. A
    failure that means the database is unavailable raises ``StoreUnavailable``."""

    round_trips: int

    def rpc(
        self,
        function: str,
        params: Mapping[str, Any],
        *,
        caller: Caller | None = None,
        repeatable: bool = True,
    ) -> Any:
        """Call ``public.<function>`` with named ``params`` (see :class:`Call`); return its JSON
        result."""
        return self.send(Call(function, params, caller, repeatable))

    @abstractmethod
    def send(self, call: Call) -> Any:
        """Carry ``call`` to the database; return its JSON result."""
