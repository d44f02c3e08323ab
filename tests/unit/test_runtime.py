"""The container's shared parts: each built once, and the host's clients held in one place."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from wa_gateway import runtime, services
from wa_gateway.events.contacts import LOOKUP_READ_TIMEOUT_S

ENV = {
    "DATABASE_URL": "postgresql://u:pw@127.0.0.1:9/db",
    "WPP_SERVER_URL": "http://127.0.0.1:9",
    "WPP_SECRET_KEY": "wpp-secret-" + "w" * 32,
    "ENCRYPTION_KEY": "a" * 64,
    "SUPABASE_STORAGE_URL": "http://127.0.0.1:9/storage/v1",
    "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_" + "s" * 32,
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield
    runtime.reset()


def test_every_part_that_calls_a_host_shares_the_containers_one_host_directory() -> None:
    hosts = runtime.hosts()

    assert services.contact_lookup().hosts is hosts
    assert services.incoming_media().hosts is hosts
    assert services.messages().hosts is hosts
    assert services.sessions().hosts is hosts
    assert services.purger().hosts is hosts
    assert services.reconciler().hosts is hosts


def test_the_lid_lookup_keeps_its_short_read_timeout_on_the_shared_connections() -> None:
    default = runtime.hosts().client_for(None)
    lookup = runtime.hosts().client_for(None, read_timeout_s=LOOKUP_READ_TIMEOUT_S)

    assert lookup.read_timeout_s == LOOKUP_READ_TIMEOUT_S < default.read_timeout_s
    assert lookup.shares_connections_with(default)
    assert runtime.hosts().client_for(None) is default
