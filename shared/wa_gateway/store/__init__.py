"""The store: every read and write of gateway state, as calls to the SQL functions in
``supabase/migrations``. One façade (:class:`Store`), two transports that carry the same calls:
psycopg to PostgreSQL (``DATABASE_URL``) and supabase-py's PostgREST client (``SUPABASE_URL``).
"""

from wa_gateway.store.facade import SessionRecord, StartPlan, Store, Transport
from wa_gateway.store.factory import create_store

__all__ = ["SessionRecord", "StartPlan", "Store", "Transport", "create_store"]
