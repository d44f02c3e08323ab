"""The store: every read and write of gateway state, as calls to the SQL functions in
``supabase/migrations``. One façade (:class:`Store`), two transports that carry the same calls:
psycopg to PostgreSQL (``DATABASE_URL``) and supabase-py's PostgREST client (``SUPABASE_URL``).
The records it reads and writes are in ``wa_gateway.records``.
"""

from wa_gateway.store.facade import Store
from wa_gateway.store.factory import create_store
from wa_gateway.store.transport import Transport

__all__ = ["Store", "Transport", "create_store"]
