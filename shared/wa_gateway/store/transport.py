"""The one thing a store needs of a database connection."""

from collections.abc import Mapping
from typing import Any, Protocol

from wa_gateway.auth.caller import Caller


class Transport(Protocol):
    """Carries one SQL function call to the database: one round trip, one transaction.

    ``caller`` None runs the call as ``service_role``; otherwise as the caller, with their
    claims applied exactly as PostgREST applies them, so Row Level Security decides.
    ``repeatable``: running the call twice changes nothing more than running it once (true of
    every SQL function the store calls, but a send without an idempotency key), so a call
    whose connection broke under it may be sent again (``wa_gateway.store.failures``).
    A failure that means the database is unavailable raises ``StoreUnavailable``.
    """

    round_trips: int

    def rpc(
        self,
        function: str,
        params: Mapping[str, Any],
        *,
        caller: Caller | None = None,
        repeatable: bool = True,
    ) -> Any:
        """Call ``public.<function>`` with named ``params``; return its JSON result."""
        ...
