"""The real parts the tests run against, each started once per test run.

* ``database``: a real PostgreSQL (the embedded ``pgserver`` one in a fresh folder, or a new
  database on ``TEST_DATABASE_URL``), bootstrapped like Supabase and migrated;
* ``simulator``: the WPPConnect simulator as its own process;
* ``gateway``: the functions behind the local gateway, as its own process.

Each is a part of ``local.stack.running_stack`` (what ``make dev``, the bench and the soak
run), started by the same code; a test that needs only the database starts only that. A test
that needs a host or a gateway of its own (other settings, a host it kills) starts it with
``own_simulator`` or ``own_gateway``, the same code again (``gateway_with`` and ``host_with``
start them on the test database, logging beside the others).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
import requests

from local import devdb
from local.dev_auth import issue_access_token
from local.endpoint_receiver import EndpointReceiver
from local.gateway import handlers_in_process
from local.stack import (
    LocalSecrets,
    SimulatorProcess,
    gateway_process,
    local_database,
    simulator_process,
)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    with local_database(database_server=os.environ.get("TEST_DATABASE_URL")) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def make_database(database: str) -> Iterator[Callable[[], str]]:
    """Another database in the same server, bootstrapped and migrated: for tests that change
    what is global to a database (the host pool) or stop it."""
    with ExitStack() as made:
        yield lambda: made.enter_context(local_database(database_server=database))


@pytest.fixture(scope="session")
def local_secrets() -> LocalSecrets:
    return LocalSecrets.generate()


@dataclass
class Simulator:
    host: SimulatorProcess

    @property
    def url(self) -> str:
        return self.host.url

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        response = requests.request(method, f"{self.url}/_sim/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response

    def state(self, session: str) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", session).json()
        return result

    def outbox(self, session: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", f"{session}/outbox").json()["outbox"]
        return result

    def in_flight(self) -> int:
        """The ``/api`` requests the host has received and not answered yet."""
        count: int = self.control("GET", "in-flight").json()["in_flight"]
        return count

    def settled(self, session: str) -> bool:
        """Nothing of ``session`` is on its way any more: the host has read-acked every message
        it sent (as it does by default, shortly after sending) and delivered every event it
        logged (the outbox is read first: an ack is logged as an event when it is applied)."""
        read = all(m["ack"] >= 3 for m in self.outbox(session))
        return read and self.delivered(session)

    def delivered(self, session: str) -> bool:
        """Every event of ``session`` the host logged has been delivered and answered (the
        real host posts its webhooks without waiting: one may land after the call that
        caused it has returned), and no message is still to be reported decrypted."""
        events = self.control("GET", f"{session}/events").json()["events"]
        return self.decrypted(session) and all(e["results"] for e in events if e["sent"])

    def decrypted(self, session: str) -> bool:
        """No message of ``session`` is still undecrypted (type ``ciphertext``): its second
        report, with its text, has been posted."""
        inbox = self.control("GET", f"{session}/inbox").json()["inbox"]
        return all(m.get("type") != "ciphertext" for m in inbox)

    @contextmanager
    def configured(self, **changes: Any) -> Iterator[None]:
        """Run with these ``/_sim/config`` changes, then put the old values back."""
        before = self.control("GET", "config").json()
        self.control("POST", "config", changes)
        try:
            yield
        finally:
            self.control("POST", "config", {k: before[k] for k in changes})

    @contextmanager
    def faulty(self, **faults: Any) -> Iterator[None]:
        """Run with these ``/_sim/faults``, then clear them."""
        self.control("POST", "faults", faults)
        try:
            yield
        finally:
            self.control(
                "POST", "faults", {"latency_ms": 0, "error_rate": 0.0, "down": False, "routes": []}
            )


@pytest.fixture(scope="session")
def output_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / ".local" / "test-output"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def own_simulator(
    secret_key: str, log_path: Path, *, data_dir: Path | None = None, **options: Any
) -> Iterator[Simulator]:
    """A simulator process of the calling test alone (``local.stack.simulator_process``'s
    options: ``config``, ``args``, ``port``), logging to ``log_path`` (emptied first), its
    sessions in ``data_dir`` or a scratch folder; ``simulator.host.stop()`` and ``start()``
    restart it on the same port and folder. Stopped on exit."""
    log_path.unlink(missing_ok=True)
    with simulator_process(
        secret_key=secret_key, log_path=log_path, data_dir=data_dir, **options
    ) as host:
        yield Simulator(host)


@pytest.fixture(scope="session")
def simulator(local_secrets: LocalSecrets, output_dir: Path) -> Iterator[Simulator]:
    with own_simulator(local_secrets.wpp_secret_key, output_dir / "simulator.log") as started:
        yield started


@dataclass
class Gateway:
    url: str
    env: dict[str, str]
    log_path: Path
    dsn: str
    local_secrets: LocalSecrets
    storage_dir: Path | None = None  # where the Storage stand-in keeps bytes, if it runs
    process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fn(self, name: str, path: str = "/") -> str:
        return f"{self.url}/{name}{path}"

    def token_for(self, user: devdb.DevUser, **overrides: Any) -> str:
        token, _ = issue_access_token(
            user_id=user.id,
            email=user.email,
            secret=self.local_secrets.jwt_secret,
            issuer=self.env["SUPABASE_JWT_ISSUER"],
            **overrides,
        )
        return token

    def new_user(self, label: str = "user") -> devdb.DevUser:
        """A user of this test alone, so tests don't share sessions."""
        email = f"{label}-{uuid.uuid4().hex[:10]}@example.com"
        return devdb.create_user(self.dsn, email, "password")

    def sign_in(self, email: str, password: str = devdb.DEV_PASSWORD) -> requests.Response:
        return requests.post(
            f"{self.url}/auth/v1/token?grant_type=password",
            json={"email": email, "password": password},
            timeout=10,
        )

    def call(
        self, method: str, name: str, token: str | None = None, path: str = "/", **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.fn(name, path), headers=headers, timeout=30, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def own_gateway(
    database: str,
    simulator: Simulator,
    local_secrets: LocalSecrets,
    log_path: Path,
    storage_dir: Path | None = None,
    **overrides: str,
) -> Iterator[Gateway]:
    """The functions behind a gateway process of their own (``local.stack.gateway_process``),
    with ``overrides`` in their env, logging to ``log_path`` (emptied first), with the Storage
    stand-in if given a ``storage_dir``. Stopped on exit."""
    log_path.unlink(missing_ok=True)
    with gateway_process(
        dsn=database,
        wpp_url=simulator.url,
        local_secrets=local_secrets,
        env_overrides=overrides,
        log_path=log_path,
        storage_dir=storage_dir,
    ) as started:
        yield Gateway(
            started.url,
            started.env,
            log_path,
            database,
            local_secrets,
            storage_dir,
            started.process,
        )


class GatewayWith(Protocol):
    def __call__(
        self, label: str, storage_dir: Path | None = None, **overrides: str
    ) -> AbstractContextManager[Gateway]: ...


@pytest.fixture(scope="session")
def gateway_with(
    database: str, simulator: Simulator, local_secrets: LocalSecrets, output_dir: Path
) -> GatewayWith:
    """``gateway_with(label, **overrides)``: ``own_gateway`` on the test database and simulator,
    logging to ``gateway-<label>.log``."""

    def start(
        label: str, storage_dir: Path | None = None, **overrides: str
    ) -> AbstractContextManager[Gateway]:
        log_path = output_dir / f"gateway-{label}.log"
        return own_gateway(database, simulator, local_secrets, log_path, storage_dir, **overrides)

    return start


class HostWith(Protocol):
    def __call__(
        self, label: str, config: dict[str, Any] | None = None, **overrides: str
    ) -> AbstractContextManager[tuple[Simulator, Gateway]]: ...


@pytest.fixture(scope="session")
def host_with(database: str, local_secrets: LocalSecrets, output_dir: Path) -> HostWith:
    """``host_with(label, config, **overrides)``: a simulator of the calling test alone (with
    ``config`` from its boot) and a gateway in front of it (with ``overrides``), logging to
    ``simulator-<label>.log`` and ``gateway-<label>.log``."""

    @contextmanager
    def start(
        label: str, config: dict[str, Any] | None = None, **overrides: str
    ) -> Iterator[tuple[Simulator, Gateway]]:
        simulator_log = output_dir / f"simulator-{label}.log"
        gateway_log = output_dir / f"gateway-{label}.log"
        with (
            own_simulator(local_secrets.wpp_secret_key, simulator_log, config=config) as simulator,
            own_gateway(database, simulator, local_secrets, gateway_log, **overrides) as gateway,
        ):
            yield simulator, gateway

    return start


@pytest.fixture(scope="session")
def gateway(
    database: str,
    simulator: Simulator,
    local_secrets: LocalSecrets,
    output_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    with own_gateway(
        database,
        simulator,
        local_secrets,
        output_dir / "gateway.log",
        storage_dir=tmp_path_factory.mktemp("storage"),
        # A file whose first try failed is due again after 2 s (30 s by default), so a test
        # can run the media function's next pass without waiting.
        MEDIA_RETRY_AFTER="2s",
    ) as started:
        yield started


DELIVERY_RETRY_FOR_S = 8


@pytest.fixture(scope="module")
def receiver() -> Iterator[EndpointReceiver]:
    """A test endpoint for event delivery (local.endpoint_receiver)."""
    with EndpointReceiver() as started:
        yield started


@pytest.fixture(scope="module")
def delivering(
    make_database: Callable[[], str],
    simulator: Simulator,
    local_secrets: LocalSecrets,
    output_dir: Path,
) -> Iterator[Gateway]:
    """A gateway that delivers events to local endpoints (``ALLOW_LOCAL_ENDPOINTS``), sweeping
    every 0.3 s and retrying every second for 8 seconds, with a 2 s timeout; on a database of
    its own (another gateway's worker, which refuses local endpoints, would take its
    endpoints' deliveries)."""
    with own_gateway(
        make_database(),
        simulator,
        local_secrets,
        output_dir / "gateway-delivery.log",
        ALLOW_LOCAL_ENDPOINTS="true",
        LOCAL_DELIVERY_EVERY_S="0.3",
        DELIVERY_RETRY_BASE="1s",
        DELIVERY_RETRY_MAX="1s",
        DELIVERY_RETRY_FOR=f"{DELIVERY_RETRY_FOR_S}s",
        DELIVERY_TIMEOUT="2",
        DELIVERY_LEASE="6s",
    ) as started:
        yield started


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture(scope="module")
def handlers(gateway: Gateway) -> Iterator[dict[str, Handler]]:
    """Every function's handler in this process, with the gateway's environment."""
    with handlers_in_process(gateway.env) as loaded:
        yield loaded


@pytest.fixture()
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


def as_role(conn: psycopg.Connection[Any], role: str, user_id: str | None = None) -> None:
    """Switch ``conn``'s open transaction to a client role, as PostgREST would."""
    claims: dict[str, Any] = {"role": role}
    if user_id:
        claims.update(sub=user_id, aud="authenticated")
    conn.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
        (role, json.dumps(claims)),
    )
