"""Fixtures the store's integration tests share; a module that needs a store tuned otherwise
defines its own ``store`` on top of ``transport``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import devdb
from tests.integration.store_helpers import new_user
from wa_gateway.store import PostgresTransport, Store


@pytest.fixture(scope="module")
def transport(database: str) -> Iterator[PostgresTransport]:
    """One connection to the test database for the module's stores."""
    opened = PostgresTransport(database)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def store(transport: PostgresTransport) -> Store:
    """The store with the product's defaults."""
    return Store(transport)


@pytest.fixture()
def user(database: str) -> devdb.DevUser:
    """A user of one test alone."""
    return new_user(database, "user")
