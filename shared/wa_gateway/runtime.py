"""The container's shared parts, built once on first use and kept for warm invocations, and
what the functions' start and each invocation ask of the container: the settings checked at
start-up, the delivery worker started when a request queued deliveries.

Nothing here connects or imports a module until a request needs it (each part imports its own
module when first built): a status read never loads the host client, and Lambda's init stays
short. The services the handlers call, and the checks of who calls, are wired from these
parts in ``wa_gateway.services``.

One way to hand a part to another: a part every call of its user needs is passed built (the
store, the host directory); a part only some calls need (Storage for a file, the LID lookup, the
fetch of a received file, the start of the media function) is passed as its provider, the
function that builds it (``media_store``, not ``media_store()``), and built by the first call
that needs it. Each part exists once per container: one store, one host directory (one pool of
connections per host).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING

from wa_gateway.errors import SettingsError
from wa_gateway.needs import Need, known_needs, require
from wa_gateway.observability import logger
from wa_gateway.settings import Settings

if TYPE_CHECKING:
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.lambda_invoke import FunctionStart
    from wa_gateway.media.storage import MediaStore
    from wa_gateway.store import Store

_FORGET: list[Callable[[], None]] = []


def part[Part](build: Callable[[], Part]) -> Callable[[], Part]:
    """A part of the container: built by its first call, then the same one (``reset``
    forgets it)."""
    built = cache(build)
    _FORGET.append(built.cache_clear)
    return built


@part
def settings() -> Settings:
    return Settings.load()


def configure(function_name: str, needs: Iterable[Need]) -> Settings:
    """Load and check the settings a function needs; stop the function if one is missing or
    malformed. An unknown need is a ValueError, whatever the environment."""
    needs = known_needs(needs)
    try:
        return require(settings(), needs)
    except SettingsError as exc:
        logger.error(f"{function_name} cannot start: {exc}", extra={"function": function_name})
        raise SystemExit(1) from None


@part
def store() -> Store:
    from wa_gateway.store import create_store

    return create_store(settings())


@part
def hosts() -> HostDirectory:
    from wa_gateway.host.directory import HostDirectory

    s = settings()
    return HostDirectory(s, s.keyring_if_set)


@part
def media_store() -> MediaStore:
    """The functions' Storage client, built when a message first carries a file."""
    from wa_gateway.media.storage import MediaStore

    s = settings()
    if not (s.supabase_storage_url and s.supabase_service_role_key):
        from wa_gateway.errors import StoreUnavailable

        raise StoreUnavailable("Media storage is not configured.")
    return MediaStore(s.supabase_storage_url, s.supabase_service_role_key)


@part
def delivery_kick() -> FunctionStart | None:
    """How a function starts the delivery worker at once (``DELIVERY_FUNCTION``); None
    without one: the worker's schedule delivers."""
    return function_start(settings().delivery_function)


def function_start(name: str | None) -> FunctionStart | None:
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
    """Forget every part built so far, here and in ``wa_gateway.services`` (tests that change
    the environment call this)."""
    for forget in _FORGET:
        forget()
    invoke = sys.modules.get("wa_gateway.lambda_invoke")
    if invoke is not None:  # its client was built for the environment of its first start
        invoke.forget_client()
