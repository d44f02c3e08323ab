"""Calls to a session's host on behalf of a caller: the host session, and the new host token it
may have had to get, kept whatever the call's outcome."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from wa_gateway.crypto import Keyring
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.records import HostPlacement, SessionUpdate
from wa_gateway.store import Store


class HostParts(Protocol):
    """What a call to a host needs of the service that makes it."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None


@contextmanager
def host_session(
    parts: HostParts, name: str, host_token: str | None, host: HostPlacement | None
) -> Iterator[HostSession]:
    """Session ``name`` on its host (``host`` None: the default one), with its encrypted token;
    a new token the host gave on the way is stored when the block ends, however it ends."""
    assert parts.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
    session = HostSession(parts.hosts.client_for(host), parts.keyring, name, host_token)
    try:
        yield session
    finally:
        if session.new_token_ciphertext:
            parts.store.apply_host_state(
                SessionUpdate(name, "connected", host_token=session.new_token_ciphertext)
            )
