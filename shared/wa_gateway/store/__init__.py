"""The store: every read and write of gateway state, as calls to the SQL functions in
``supabase/migrations``. One façade (:class:`Store`), two transports that carry the same calls:
psycopg to PostgreSQL (``DATABASE_URL``) and supabase-py's PostgREST client (``SUPABASE_URL``).
The records it reads and writes are in ``wa_gateway.records`` and ``wa_gateway.pass_records``.
"""

from typing import TYPE_CHECKING, Any

from wa_gateway.store.facade import Store
from wa_gateway.store.factory import create_store, create_transport
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:
    from wa_gateway.store.postgres import PostgresTransport
    from wa_gateway.store.postgrest import PostgrestTransport

__all__ = [
    "PostgresTransport",
    "PostgrestTransport",
    "Store",
    "Transport",
    "create_store",
    "create_transport",
]


def __getattr__(name: str) -> Any:
    """The two transports, imported only when named: each pulls in its own client library."""
    if name == "PostgresTransport":
        from wa_gateway.store.postgres import PostgresTransport

        return PostgresTransport
    if name == "PostgrestTransport":
        from wa_gateway.store.postgrest import PostgrestTransport

        return PostgrestTransport
    raise AttributeError(name)
