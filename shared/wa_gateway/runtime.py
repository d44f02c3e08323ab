"""The container's shared parts, built once on first use and kept for warm invocations.

Nothing here connects or imports a module until a request needs it (each part imports its own
module when first built): a status read never loads the host client, the messaging code or
the QR renderer, and Lambda's init stays short.

One way to hand a part to another: a part every call of its user needs is passed built (the
store, the host directory); a part only some calls need (Storage for a file, the LID lookup, the
fetch of a received file, the start of the media function) is passed as its provider, the
function here that builds it (``media_store``, not ``media_store()``), and built by the first
call that needs it. Each part exists once per container: one store, one host directory (one pool
of connections per host).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from wa_gateway.errors import SettingsError
from wa_gateway.observability import logger
from wa_gateway.settings import Need, Settings, known_needs

if TYPE_CHECKING:
    from wa_gateway.auth.tokens import TokenVerifier
    from wa_gateway.delivery.endpoints import Endpoints
    from wa_gateway.delivery.worker import Deliverer
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy, EventService
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.jobs.media import MediaPass
    from wa_gateway.jobs.purge import Purger
    from wa_gateway.jobs.reconcile import Reconciler
    from wa_gateway.jobs.scheduler import Scheduler
    from wa_gateway.keys.callers import KeyCallers
    from wa_gateway.keys.service import ApiKeys
    from wa_gateway.lambda_invoke import FunctionStart
    from wa_gateway.media.incoming import IncomingMedia
    from wa_gateway.media.storage import MediaStore
    from wa_gateway.messaging.actions import ActionService
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
        store=store(),
        hosts=hosts(),
        keyring=s.keyring_if_set,
        media_store=media_store,
        max_scheduled=s.max_scheduled_per_user,
    )


@cache
def actions() -> ActionService:
    """send-message's react, edit, delete and read."""
    from wa_gateway.messaging.actions import ActionService

    s = settings()
    return ActionService(store=store(), hosts=hosts(), keyring=s.keyring_if_set)


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
        message_retention_s=s.message_retention_s,
        media_store=media_store if s.supabase_storage_url and s.supabase_service_role_key else None,
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
        media=media_kick,
        concurrency=s.reconcile_concurrency,
        ack_window_s=s.reconcile_ack_window_s,
        backfill=s.backfill_on_link,
        max_chats=s.reconcile_chats_per_session,
        max_lookups=s.reconcile_lookups_per_session,
        start_stuck_after_s=s.start_stuck_after_s,
    )


@cache
def events() -> EventService:
    from wa_gateway.events.service import EventService

    return EventService(store(), event_policy(), contacts=contact_lookup, media=media_kick)


@cache
def event_policy() -> EventPolicy:
    """Which inbound messages are kept, for the webhook and for reconcile alike."""
    from wa_gateway.events.service import EventPolicy

    s = settings()
    return EventPolicy(groups=s.inbound_groups, status_broadcasts=s.inbound_status_broadcasts)


@cache
def contact_lookup() -> ContactLookup:
    """The way to ask a host for a LID's number, built only when a LID sender needs it."""
    from wa_gateway.events.contacts import ContactLookup

    return ContactLookup(store=store(), hosts=hosts(), keyring=settings().keyring_if_set)


@cache
def media_kick() -> FunctionStart | None:
    """How qr-webhook, reconcile and a status refresh start the media function at once for
    the files they stored (``MEDIA_FUNCTION``); None without one: its schedule fetches them."""
    return _function_start(settings().media_function)


@cache
def media_pass() -> MediaPass:
    from wa_gateway.jobs.media import MediaPass

    s = settings()
    return MediaPass(
        store=store(),
        fetcher=incoming_media,
        retry_s=s.media_retry_after_s,
        max_attempts=s.media_fetch_attempts,
    )


@cache
def incoming_media() -> IncomingMedia:
    """The media function's way to fetch a received file and store it, built for the first."""
    from wa_gateway.media.incoming import IncomingMedia

    return IncomingMedia(
        store=store(), hosts=hosts(), keyring=settings().keyring_if_set, media_store=media_store
    )


@cache
def key_callers() -> KeyCallers:
    """Callers from API keys, built for a container's first key: from then on the store's
    calls go through the key gate (``wa_gateway.keys.gate``), which passes every call of a
    request without a key through unchanged."""
    from wa_gateway.keys.callers import KeyCallers
    from wa_gateway.keys.gate import KeyedTransport

    s = settings()
    built = store()
    keyed = built.transport
    if not isinstance(keyed, KeyedTransport):
        keyed = KeyedTransport(
            built.transport, burst=s.api_key_burst, rate_per_s=s.api_key_rate_per_minute / 60
        )
        built.transport = keyed
    return KeyCallers(keyed)


@cache
def api_keys() -> ApiKeys:
    from wa_gateway.keys.service import ApiKeys

    return ApiKeys(store().transport, max_keys=settings().max_api_keys)


@cache
def endpoints() -> Endpoints:
    from wa_gateway.delivery.endpoints import Endpoints

    s = settings()
    return Endpoints(
        store().transport,
        s.keyring,
        max_endpoints=s.max_endpoints,
        allow_local=s.allow_local_endpoints,
    )


@cache
def deliverer() -> Deliverer:
    from wa_gateway.delivery.store import DeliveryCalls
    from wa_gateway.delivery.worker import Deliverer, DeliveryPolicy

    s = settings()
    return Deliverer(
        DeliveryCalls(store().transport),
        s.keyring,
        DeliveryPolicy(
            timeout_s=s.delivery_timeout_s,
            retry_base_s=s.delivery_retry_base_s,
            retry_max_s=s.delivery_retry_max_s,
            retry_for_s=s.delivery_retry_for_s,
            lease_s=s.delivery_lease_s,
            concurrency=s.delivery_concurrency,
            allow_local=s.allow_local_endpoints,
            retention_s=s.event_retention_s,
        ),
    )


@cache
def delivery_kick() -> FunctionStart | None:
    """How a function starts the delivery worker at once (``DELIVERY_FUNCTION``); None
    without one: the worker's schedule delivers."""
    return _function_start(settings().delivery_function)


def _function_start(name: str | None) -> FunctionStart | None:
    """An asynchronous start of the function ``name`` (``wa_gateway.lambda_invoke``)."""
    if not name:
        return None
    from wa_gateway.lambda_invoke import FunctionStart

    return FunctionStart(name)


def start_deliveries() -> None:
    """Start the delivery worker if this request's calls queued deliveries (and forget it)."""
    transport = sys.modules.get("wa_gateway.store.transport")
    if transport is None or not transport.deliveries_queued.get():
        return  # no store call, or nothing queued: the common case costs a lookup
    transport.deliveries_queued.set(False)
    kick = delivery_kick()
    if kick is not None:
        kick()


def reset() -> None:
    """Forget everything built so far (tests that change the environment call this)."""
    for built in (
        settings,
        store,
        token_verifier,
        hosts,
        sessions,
        messages,
        actions,
        purger,
        events,
        event_policy,
        contact_lookup,
        scheduler,
        media_store,
        media_kick,
        media_pass,
        incoming_media,
        reconciler,
        key_callers,
        api_keys,
        endpoints,
        deliverer,
        delivery_kick,
    ):
        built.cache_clear()
    invoke = sys.modules.get("wa_gateway.lambda_invoke")
    if invoke is not None:  # its client was built for the environment of its first start
        invoke.forget_client()
