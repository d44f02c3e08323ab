"""One simulator process (with the stock host's secret key) and one webhook receiver for every
test of the simulator; each test gets them reset (``host``) and a session name of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from local.stack import SimulatorProcess, simulator_process
from tests.integration.simulator.host_client import SECRET, Host, Receiver


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    # Closed, so late webhooks (acks due after the last test) are refused at once instead
    # of waiting for an answer and holding up the simulator's exit.
    hooks.server.stop()


@pytest.fixture(scope="package")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    with simulator_process(
        secret_key=SECRET, data_dir=tmp_path_factory.mktemp("sim"), args=("--no-start-all",)
    ) as started:
        yield started


@pytest.fixture
def host(sim_process: SimulatorProcess, receiver: Receiver) -> Host:
    client = Host(sim_process.url)
    assert client.sim("POST", "reset").status_code == 200
    receiver.clear()
    client.configure(qr_refresh_ms=0, init_delay_ms=20, connect_delay_ms=50)
    return client


@pytest.fixture
def name() -> str:
    return f"s{uuid.uuid4().hex[:10]}"
