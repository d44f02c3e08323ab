"""The services the functions call, and the checks of who calls (an access token, an API
key), each wired once per container from the runtime's shared parts (``wa_gateway.runtime``:
the settings, the store, the host directory, Storage) and kept while warm.

Nothing here imports a service's module until its first call builds it (each builder imports
its own): a handler names only the service it uses, and a status read never loads the
messaging code or the QR renderer. The way parts are handed on is the runtime's: a part every
call needs is passed built, one only some calls need is passed as its provider (the function
that builds it, ``runtime.media_store``, ``contact_lookup``), built by the first call that
needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wa_gateway import runtime
from wa_gateway.runtime import part

if TYPE_CHECKING:
    from wa_gateway.auth.tokens import TokenVerifier
    from wa_gateway.delivery.endpoints import Endpoints
    from wa_gateway.delivery.worker import Deliverer
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy, EventService
    from wa_gateway.jobs.media import MediaPass
    from wa_gateway.jobs.purge import Purger
    from wa_gateway.jobs.reconcile import Reconciler
    from wa_gateway.jobs.scheduler import Scheduler
    from wa_gateway.keys.callers import KeyCallers
    from wa_gateway.keys.service import ApiKeys
    from wa_gateway.lambda_invoke import FunctionStart
    from wa_gateway.media.incoming import IncomingMedia
    from wa_gateway.messaging.actions import ActionService
    from wa_gateway.messaging.service import MessageService
    from wa_gateway.sessions.service import SessionService


@part
def token_verifier() -> TokenVerifier:
    from wa_gateway.auth.tokens import TokenVerifier

    s = runtime.settings()
    return TokenVerifier(
        hs256_secrets=s.supabase_jwt_secrets,
        jwks_url=s.supabase_jwks_url,
        issuer=s.supabase_jwt_issuer,
        allow_anonymous=s.allow_anonymous_users,
    )


@part
def key_callers() -> KeyCallers:
    """Callers from API keys, built for a container's first key: from then on the store's
    calls go through the key gate (``wa_gateway.keys.gate``), which passes every call of a
    request without a key through unchanged."""
    from wa_gateway.keys.callers import KeyCallers
    from wa_gateway.keys.gate import KeyedTransport

    s = runtime.settings()
    built = runtime.store()
    keyed = built.transport
    if not isinstance(keyed, KeyedTransport):
        keyed = KeyedTransport(
            built.transport, burst=s.api_key_burst, rate_per_s=s.api_key_rate_per_minute / 60
        )
        built.transport = keyed
    return KeyCallers(keyed)


@part
def sessions() -> SessionService:
    from wa_gateway.sessions.service import SessionService

    s = runtime.settings()
    return SessionService(
        store=runtime.store(),
        hosts=runtime.hosts(),
        keyring=s.keyring_if_set,
        webhook_url=s.webhook_public_url,
        webhook_secret=s.webhook_verify_tokens[0] if s.webhook_verify_tokens else None,
        max_accounts=s.max_accounts_per_user,
        start_stuck_after_s=s.start_stuck_after_s,
    )


@part
def messages() -> MessageService:
    from wa_gateway.messaging.service import MessageService

    s = runtime.settings()
    return MessageService(
        store=runtime.store(),
        hosts=runtime.hosts(),
        keyring=s.keyring_if_set,
        media_store=runtime.media_store,
        max_scheduled=s.max_scheduled_per_user,
    )


@part
def actions() -> ActionService:
    """send-message's react, edit, delete and read."""
    from wa_gateway.messaging.actions import ActionService

    s = runtime.settings()
    return ActionService(store=runtime.store(), hosts=runtime.hosts(), keyring=s.keyring_if_set)


@part
def purger() -> Purger:
    from wa_gateway.jobs.purge import Purger

    s = runtime.settings()
    return Purger(
        store=runtime.store(),
        hosts=runtime.hosts(),
        keyring=s.keyring_if_set,
        qr_ttl_s=s.qr_ttl_s,
        stale_after_s=s.stale_after_s,
        event_retention_s=s.event_retention_s,
        drain_idle_after_s=s.drain_idle_after_s,
        message_retention_s=s.message_retention_s,
        media_store=runtime.media_store
        if s.supabase_storage_url and s.supabase_service_role_key
        else None,
    )


@part
def scheduler() -> Scheduler:
    from wa_gateway.jobs.scheduler import Scheduler

    return Scheduler(
        store=runtime.store(), messages=messages(), grace_s=runtime.settings().schedule_grace_s
    )


@part
def reconciler() -> Reconciler:
    from wa_gateway.jobs.reconcile import Reconciler

    s = runtime.settings()
    return Reconciler(
        store=runtime.store(),
        hosts=runtime.hosts(),
        keyring=s.keyring_if_set,
        policy=event_policy(),
        contacts=contact_lookup,
        media=media_kick,
        concurrency=s.reconcile_concurrency,
        ack_window_s=s.reconcile_ack_window_s,
        backfill=s.backfill_on_link,
        max_chats=s.reconcile_chats_per_session,
        max_lookups=s.reconcile_lookups_per_session,
        start_stuck_after_s=s.start_stuck_after_s,
    )


@part
def events() -> EventService:
    from wa_gateway.events.service import EventService

    return EventService(runtime.store(), event_policy(), contacts=contact_lookup, media=media_kick)


@part
def event_policy() -> EventPolicy:
    """Which inbound messages are kept, for the webhook and for reconcile alike."""
    from wa_gateway.events.service import EventPolicy

    s = runtime.settings()
    return EventPolicy(groups=s.inbound_groups, status_broadcasts=s.inbound_status_broadcasts)


@part
def contact_lookup() -> ContactLookup:
    """The way to ask a host for a LID's number, built only when a LID sender needs it."""
    from wa_gateway.events.contacts import ContactLookup

    return ContactLookup(
        store=runtime.store(), hosts=runtime.hosts(), keyring=runtime.settings().keyring_if_set
    )


@part
def media_kick() -> FunctionStart | None:
    """How qr-webhook, reconcile and a status refresh start the media function at once for
    the files they stored (``MEDIA_FUNCTION``); None without one: its schedule fetches them."""
    return runtime.function_start(runtime.settings().media_function)


@part
def media_pass() -> MediaPass:
    from wa_gateway.jobs.media import MediaPass

    s = runtime.settings()
    return MediaPass(
        store=runtime.store(),
        fetcher=incoming_media,
        retry_s=s.media_retry_after_s,
        max_attempts=s.media_fetch_attempts,
    )


@part
def incoming_media() -> IncomingMedia:
    """The media function's way to fetch a received file and store it, built for the first."""
    from wa_gateway.media.incoming import IncomingMedia

    return IncomingMedia(
        store=runtime.store(),
        hosts=runtime.hosts(),
        keyring=runtime.settings().keyring_if_set,
        media_store=runtime.media_store,
    )


@part
def api_keys() -> ApiKeys:
    from wa_gateway.keys.service import ApiKeys

    return ApiKeys(runtime.store().transport, max_keys=runtime.settings().max_api_keys)


@part
def endpoints() -> Endpoints:
    from wa_gateway.delivery.endpoints import Endpoints

    s = runtime.settings()
    return Endpoints(
        runtime.store().transport,
        s.keyring,
        max_endpoints=s.max_endpoints,
        allow_local=s.delivery.allow_local,
    )


@part
def deliverer() -> Deliverer:
    from wa_gateway.delivery.store import DeliveryCalls
    from wa_gateway.delivery.worker import Deliverer

    s = runtime.settings()
    return Deliverer(DeliveryCalls(runtime.store().transport), s.keyring, s.delivery)
