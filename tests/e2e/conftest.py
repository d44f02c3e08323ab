"""Fixtures the end-to-end modules share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from local import devdb
from tests.conftest import Gateway, GatewayWith, Simulator
from tests.e2e.flows import connected_user

FAST_READ_TIMEOUT_S = 2
FAST_LEASE_S = 5  # well past the read timeout: a send retried at once is still leased
SLOW_HOST_MS = 4000  # a host slower than the fast gateway waits for


@pytest.fixture(scope="module")
def fast_gateway(gateway_with: GatewayWith) -> Iterator[Gateway]:
    """Functions with short host timeouts and a short outbox lease, so failures are quick (a
    test links its user through the standard ``gateway``: linking is not what it tests, and a
    busy machine's host may take longer than these timeouts to start a session)."""
    with gateway_with(
        "fast",
        WPP_READ_TIMEOUT=str(FAST_READ_TIMEOUT_S),
        SEND_LEASE=f"{FAST_LEASE_S}s",
    ) as started:
        yield started


@pytest.fixture()
def alice(gateway: Gateway) -> devdb.DevUser:
    """A new user, not linked."""
    return gateway.new_user("alice")


class FastLinked(NamedTuple):
    user: devdb.DevUser
    token: str  # an access token for ``fast_gateway``
    name: str  # the session's name
    key: str  # the Idempotency-Key of the send the test makes and retries


@pytest.fixture()
def fast_linked(fast_gateway: Gateway, gateway: Gateway, simulator: Simulator) -> FastLinked:
    """A new user linked through the standard ``gateway``, to send through ``fast_gateway``."""
    user, _, name = connected_user(gateway, simulator, "fast")
    return FastLinked(user, fast_gateway.token_for(user), name, str(uuid.uuid4()))
