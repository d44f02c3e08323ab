"""Fixtures the end-to-end modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway

FAST_READ_TIMEOUT_S = 2
FAST_LEASE_S = 5  # well past the read timeout: a send retried at once is still leased
SLOW_HOST_MS = 4000  # a host slower than the fast gateway waits for


@pytest.fixture(scope="module")
def fast_gateway(
    database: str, simulator: Simulator, local_secrets: LocalSecrets, output_dir: Path
) -> Iterator[Gateway]:
    """Functions with short host timeouts and a short outbox lease, so failures are quick (a
    test links its user through the standard ``gateway``: linking is not what it tests, and a
    busy machine's host may take longer than these timeouts to start a session)."""
    with own_gateway(
        database,
        simulator,
        local_secrets,
        output_dir / "gateway-fast.log",
        WPP_READ_TIMEOUT=str(FAST_READ_TIMEOUT_S),
        SEND_LEASE=f"{FAST_LEASE_S}s",
    ) as started:
        yield started
