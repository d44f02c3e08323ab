"""Picks the transport from the settings: a direct connection when ``DATABASE_URL`` is set
(local stack, tests, or Supabase's pooler), otherwise Supabase's REST API."""

from __future__ import annotations

from wa_gateway.errors import SettingsError
from wa_gateway.settings import Settings
from wa_gateway.store.facade import Store
from wa_gateway.store.transport import Transport


def create_transport(settings: Settings) -> Transport:
    if settings.database_url:
        from wa_gateway.store.postgres import PostgresTransport

        return PostgresTransport(settings.database_url, timeout_s=settings.db_timeout_s)
    if settings.supabase_url and settings.supabase_service_role_key:
        from wa_gateway.store.postgrest import PostgrestTransport

        return PostgrestTransport(
            settings.supabase_url,
            settings.supabase_service_role_key,
            publishable_key=settings.supabase_publishable_key,
            timeout_s=settings.db_http_timeout_s,
        )
    raise SettingsError("DATABASE_URL, or SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY, must be set")


def create_store(settings: Settings) -> Store:
    return Store(
        create_transport(settings),
        qr_first_ttl_s=settings.qr_first_ttl_s,
        qr_next_ttl_s=settings.qr_next_ttl_s,
        send_burst=settings.send_burst,
        send_rate_per_s=settings.send_rate_per_minute / 60,
        send_lease_s=settings.send_lease_s,
    )
