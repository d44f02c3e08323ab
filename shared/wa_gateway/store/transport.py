"""The one thing a store needs of a database connection."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

from wa_gateway.auth.caller import Caller

DELIVERIES_HEADER = "x-gateway-deliveries"
"""What a transaction that queued deliveries to users' endpoints says (``gateway_notify``
sets it as PostgREST's ``response.headers``): the function that made it starts the worker."""

deliveries_queued: ContextVar[bool] = ContextVar("wa_gateway_deliveries_queued", default=False)
"""Set by a transport when a call of this request queued deliveries; the function reads it once
the request is answered (``wa_gateway.runtime.start_deliveries``)."""


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
