"""The container's shared parts, built once on first use and kept for warm invocations.

Nothing here connects or imports a module until a request needs it (each part imports its own
module when first built): a status read never loads the host client, the messaging code or
the QR renderer, and Lambda's init stays short.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from wa_gateway.errors import SettingsError
from wa_gateway.observability import logger
from wa_gateway.settings import Need, Settings, known_needs

if TYPE_CHECKING:
    from wa_gateway.auth.tokens import TokenVerifier
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy, EventService
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.jobs.purge import Purger
    from wa_gateway.jobs.reconcile import Reconciler
    from wa_gateway.jobs.scheduler import Scheduler
    from wa_gateway.media.incoming import IncomingMedia
    from wa_gateway.media.storage import MediaStore
    from wa_gateway.messaging.service import MessageService
    from wa_gateway.sessions.service import SessionService
    from wa_gateway.store import Store


@cache
def settings() -> Settings:
    return Settings.load()


def configure(function_name: str, needs: Iterable[Need]) -> Settings:
    """Load and check the settings a function needs; stop the function if one is missing or
    malformed. An unknown need is a ValueError, whatever the environment."""
    needs = known_needs(needs)
    try:
        return settings().require(needs)
    except SettingsError as exc:
        logger.error(f"{function_name} cannot start: {exc}", extra={"function": function_name})
        raise SystemExit(1) from None


@cache
def store() -> Store:
    from wa_gateway.store import create_store

    return create_store(settings())


@cache
def token_verifier() -> TokenVerifier:
    from wa_gateway.auth.tokens import TokenVerifier

    s = settings()
    return TokenVerifier(
        hs256_secrets=s.supabase_jwt_secrets,
        jwks_url=s.supabase_jwks_url,
        issuer=s.supabase_jwt_issuer,
        allow_anonymous=s.allow_anonymous_users,
    )


@cache
def hosts() -> HostDirectory:
    from wa_gateway.host.directory import HostDirectory

    s = settings()
    return HostDirectory(s, s.keyring_if_set)


@cache
def sessions() -> SessionService:
    from wa_gateway.sessions.service import SessionService

    s = settings()
    return SessionService(
        store=store(),
        hosts=hosts(),
        keyring=s.keyring_if_set,
        webhook_url=s.webhook_public_url,
        webhook_secret=s.webhook_verify_tokens[0] if s.webhook_verify_tokens else None,
        max_accounts=s.max_accounts_per_user,
        start_stuck_after_s=s.start_stuck_after_s,
    )


@cache
def messages() -> MessageService:
    from wa_gateway.messaging.service import MessageService

    s = settings()
    return MessageService(
        store=store(), hosts=hosts(), keyring=s.keyring_if_set, media_store=media_store
    )


@cache
def media_store() -> MediaStore:
    """The functions' Storage client, built when a message first carries a file."""
    from wa_gateway.media.storage import MediaStore

    s = settings()
    if not (s.supabase_storage_url and s.supabase_service_role_key):
        from wa_gateway.errors import StoreUnavailable

        raise StoreUnavailable("Media storage is not configured.")
    return MediaStore(s.supabase_storage_url, s.supabase_service_role_key)


@cache
def purger() -> Purger:
    from wa_gateway.jobs.purge import Purger

    s = settings()
    return Purger(
        store=store(),
        hosts=hosts(),
        keyring=s.keyring_if_set,
        qr_ttl_s=s.qr_ttl_s,
        stale_after_s=s.stale_after_s,
        event_retention_s=s.event_retention_s,
        drain_idle_after_s=s.drain_idle_after_s,
    )


@cache
def scheduler() -> Scheduler:
    from wa_gateway.jobs.scheduler import Scheduler

    return Scheduler(store=store(), messages=messages(), grace_s=settings().schedule_grace_s)


@cache
def reconciler() -> Reconciler:
    from wa_gateway.jobs.reconcile import Reconciler

    s = settings()
    return Reconciler(
        store=store(),
        hosts=hosts(),
        keyring=s.keyring_if_set,
        policy=event_policy(),
        contacts=contact_lookup,
        media=incoming_media,
        concurrency=s.reconcile_concurrency,
        ack_window_s=s.reconcile_ack_window_s,
        backfill=s.backfill_on_link,
        start_stuck_after_s=s.start_stuck_after_s,
    )


@cache
def events() -> EventService:
    from wa_gateway.events.service import EventService

    return EventService(store(), event_policy(), contacts=contact_lookup, media=incoming_media)


@cache
def event_policy() -> EventPolicy:
    """Which inbound messages are kept, for the webhook and for reconcile alike."""
    from wa_gateway.events.service import EventPolicy

    s = settings()
    return EventPolicy(groups=s.inbound_groups, status_broadcasts=s.inbound_status_broadcasts)


@cache
def contact_lookup() -> ContactLookup:
    """The webhook's way to the host, built only when a LID sender needs it."""
    from wa_gateway.events.contacts import LOOKUP_READ_TIMEOUT_S, ContactLookup
    from wa_gateway.host.directory import HostDirectory

    s = settings()
    hosts = HostDirectory(s, s.keyring_if_set, read_timeout_s=LOOKUP_READ_TIMEOUT_S)
    return ContactLookup(store=store(), hosts=hosts, keyring=s.keyring_if_set)


@cache
def incoming_media() -> IncomingMedia:
    """The webhook's way to fetch a received file and store it, built for the first one."""
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.media.incoming import IncomingMedia

    s = settings()
    return IncomingMedia(
        store=store(),
        hosts=HostDirectory(s, s.keyring_if_set),
        keyring=s.keyring_if_set,
        media_store=media_store(),
    )


def reset() -> None:
    """Forget everything built so far (tests that change the environment call this)."""
    for built in (
        settings,
        store,
        token_verifier,
        hosts,
        sessions,
        messages,
        purger,
        events,
        event_policy,
        contact_lookup,
        scheduler,
        media_store,
        incoming_media,
        reconciler,
    ):
        built.cache_clear()
