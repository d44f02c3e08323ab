"""Fixtures the end-to-end modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway

FAST_LEASE_S = 2


@pytest.fixture(scope="module")
def fast_gateway(
    database: str, simulator: Simulator, local_secrets: LocalSecrets, output_dir: Path
) -> Iterator[Gateway]:
    """Functions with short host timeouts and a short outbox lease, so failures are quick."""
    with own_gateway(
        database,
        simulator,
        local_secrets,
        output_dir / "gateway-fast.log",
        WPP_READ_TIMEOUT="0.7",
        SEND_LEASE=f"{FAST_LEASE_S}s",
    ) as started:
        yield started
