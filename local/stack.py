"""The local stack: a PostgreSQL set up like Supabase, the WPPConnect simulator, the gateway.

``running_stack()`` starts the three and stops them on exit; ``make dev`` (``python -m
local.stack``), the tests' fixtures, the benchmark and the soak all start them through it (the
fixtures through its parts, ``local_database``, ``simulator_process`` and ``gateway_process``,
so a test that needs only the database starts only the database):

1. the database: the embedded PostgreSQL (``pgserver``) in a folder that is kept, or in a
   scratch folder removed at the end; or a new database on a given server, dropped at the end;
   or a given database as it is. Bootstrapped, migrated and seeded by ``local.devdb``;
2. the WPPConnect simulator, as its own process (the real host runs on its own machine);
3. the gateway, as its own process: the functions behind one port with the environment
   template.yaml gives them in AWS, the dev sign-in, the Storage API stand-in (its bytes in a
   folder that is kept, or in a scratch folder removed at the end), the demo page.

``make dev`` also writes ``.local/stack.env`` with the URLs and the local secrets; those are
random, made once per checkout and kept in ``.local/secrets.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests

from local import devdb, processes
from local.dev_auth import legacy_api_key
from local.endpoint_receiver import EndpointReceiver

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local"


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    verify_token: str
    encryption_key: str
    wpp_secret_key: str

    @classmethod
    def generate(cls) -> LocalSecrets:
        return cls(
            jwt_secret=secrets.token_urlsafe(48),
            verify_token=secrets.token_urlsafe(32),
            encryption_key="local1:" + secrets.token_hex(32),
            wpp_secret_key=secrets.token_hex(24),  # also a command-line value: no leading "-"
        )

    @property
    def service_role_key(self) -> str:
        """The stack's legacy service-role API key, made from its JWT secret."""
        return legacy_api_key("service_role", self.jwt_secret)

    @property
    def anon_key(self) -> str:
        """The stack's legacy anon API key, made from its JWT secret."""
        return legacy_api_key("anon", self.jwt_secret)

    @classmethod
    def load_or_create(cls, path: Path) -> LocalSecrets:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made.__dict__))
        path.chmod(0o600)
        return made


def function_env(
    *, dsn: str, gateway_url: str, wpp_url: str, local_secrets: LocalSecrets
) -> dict[str, str]:
    """The environment the functions get locally: what template.yaml gives them in AWS."""
    return {
        "DATABASE_URL": dsn,
        "SUPABASE_JWT_SECRET": local_secrets.jwt_secret,
        "SUPABASE_JWT_ISSUER": f"{gateway_url}/auth/v1",
        # Storage only: SUPABASE_URL would also point token checks (JWKS) and the store at the
        # gateway, which the local stack gives DATABASE_URL and the JWT secret instead.
        "SUPABASE_STORAGE_URL": f"{gateway_url}/storage/v1",
        "SUPABASE_SERVICE_ROLE_KEY": local_secrets.service_role_key,
        "WPP_SERVER_URL": wpp_url,
        "WPP_SECRET_KEY": local_secrets.wpp_secret_key,
        "QR_WEBHOOK_VERIFY_TOKEN": local_secrets.verify_token,
        "ENCRYPTION_KEY": local_secrets.encryption_key,
        "WEBHOOK_PUBLIC_URL": f"{gateway_url}/qr-webhook/",
        "ALLOWED_ORIGINS": f"{gateway_url},http://localhost:{gateway_url.rsplit(':', 1)[-1]}",
        # Functions start the delivery worker and the media function as in AWS, through
        # Lambda's asynchronous Invoke, which the gateway answers; boto3 wants credentials to
        # sign it with, any will do.
        "DELIVERY_FUNCTION": "delivery",
        "MEDIA_FUNCTION": "media",
        "AWS_ENDPOINT_URL_LAMBDA": gateway_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "wa-gateway-local",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "GATEWAY_VERSION": _version(),
    }


def _version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() or "dev"
    except (OSError, subprocess.CalledProcessError):
        return "dev"


# --- the parts ---------------------------------------------------------------------------


@contextmanager
def local_database(
    *,
    database_url: str | None = None,
    database_server: str | None = None,
    pg_data_dir: Path | None = None,
) -> Iterator[str]:
    """A PostgreSQL database set up like a Supabase project; yields its URL.

    The first option given wins: ``database_url`` is used as it is (and kept);
    ``database_server`` gets a new database of its own, dropped at the end; ``pg_data_dir``
    runs (or reuses) the embedded PostgreSQL in that folder, stopped at the end and kept for
    the next start. With none, the embedded PostgreSQL runs in a scratch folder, removed at
    the end.
    """
    if database_url:
        devdb.prepare(database_url)
        yield database_url
    elif database_server:
        name = f"wa_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database_server, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        try:
            dsn = psycopg.conninfo.make_conninfo(database_server, dbname=name)
            devdb.prepare(dsn)
            yield dsn
        finally:
            with psycopg.connect(database_server, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
    elif pg_data_dir:
        dsn = devdb.start_embedded(pg_data_dir)
        try:
            devdb.prepare(dsn)
            yield dsn
        finally:
            devdb.stop_embedded(pg_data_dir)
    else:
        import pgserver  # a dev-only dependency, imported only when the embedded one is wanted

        scratch = Path(tempfile.mkdtemp(prefix="wa-pg-"))
        server = pgserver.get_server(scratch / "data", cleanup_mode="stop")
        try:
            dsn = str(server.get_uri())
            devdb.prepare(dsn)
            yield dsn
        finally:
            server.cleanup()
            shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _folder(path: Path | None, prefix: str) -> Iterator[Path]:
    """``path`` (kept), or a scratch folder removed at the end."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class SimulatorProcess:
    """The WPPConnect simulator as its own process on 127.0.0.1:``port``, its sessions in
    ``data_dir``: ``start()`` runs it and returns once it answers, ``stop()`` ends it, and
    ``start()`` again runs a new one on the same port and folder, as a host restarts."""

    port: int
    data_dir: Path
    secret_key: str
    log_path: Path | None = None
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorProcess:
        self.process = processes.start_module(
            "local.simulator",
            [
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--data-dir={self.data_dir}",
                f"--secret-key={self.secret_key}",
                *self.args,
            ],
            env={},
            ready_url=f"{self.url}/healthz",
            log_path=self.log_path,
        )
        return self

    def stop(self) -> int | None:
        """End the process (SIGTERM, then SIGKILL if it lingers); its exit code."""
        if self.process is None:
            return None
        processes.stop(self.process)
        return self.process.returncode

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def configure(self, config: Mapping[str, Any]) -> None:
        """Change the simulator's ``/_sim/config`` (timers, delays, delivery, acks)."""
        answer = requests.post(f"{self.url}/_sim/config", json=dict(config), timeout=10)
        answer.raise_for_status()


@contextmanager
def simulator_process(
    *,
    secret_key: str,
    port: int | None = None,
    data_dir: Path | None = None,
    log_path: Path | None = None,
    config: Mapping[str, Any] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[SimulatorProcess]:
    """The WPPConnect simulator on 127.0.0.1 (a free port unless ``port``), answering once
    yielded, with ``config`` applied; stopped on exit (also after a restart by the caller).
    Without ``data_dir`` its sessions live in a scratch folder, removed at the end."""
    with _folder(data_dir, "wa-sim-") as folder:
        started = SimulatorProcess(
            port or processes.free_port(), folder, secret_key, log_path, args
        ).start()
        try:
            if config:
                started.configure(config)
            yield started
        finally:
            started.stop()


@dataclass(frozen=True)
class GatewayProcess:
    url: str
    env: dict[str, str]  # the functions' environment
    process: subprocess.Popen[bytes]
    log_path: Path | None


@contextmanager
def gateway_process(
    *,
    dsn: str,
    wpp_url: str,
    local_secrets: LocalSecrets,
    port: int | None = None,
    env_overrides: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    storage_dir: Path | None = None,
) -> Iterator[GatewayProcess]:
    """The gateway on 127.0.0.1 (a free port unless ``port``), answering once yielded, stopped
    on exit: the functions get ``function_env`` with ``env_overrides`` on top; the Storage
    stand-in keeps its bytes in ``storage_dir`` (without one, ``/storage/v1/`` answers that it
    is not set up)."""
    port = port or processes.free_port()
    url = f"http://127.0.0.1:{port}"
    env = function_env(dsn=dsn, gateway_url=url, wpp_url=wpp_url, local_secrets=local_secrets)
    env.update(env_overrides or {})
    gateway_env = {**env, "DEV_STORAGE_DIR": str(storage_dir)} if storage_dir else env
    process = processes.start_module(
        "local.gateway",
        ["--host=127.0.0.1", f"--port={port}"],
        env=gateway_env,
        ready_url=f"{url}/status/health",
        log_path=log_path,
    )
    try:
        yield GatewayProcess(url, env, process, log_path)
    finally:
        processes.stop(process)


# --- the whole stack ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunningStack:
    dsn: str
    local_secrets: LocalSecrets
    simulator: SimulatorProcess
    gateway: GatewayProcess

    @property
    def sim_url(self) -> str:
        return self.simulator.url

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    @property
    def env(self) -> dict[str, str]:
        """The functions' environment, as the gateway runs them."""
        return self.gateway.env

    def all_running(self) -> bool:
        return self.simulator.running() and self.gateway.process.poll() is None

    def settings(self) -> dict[str, str]:
        """What a client of the stack needs (``make dev`` writes it to .local/stack.env)."""
        return {
            "GATEWAY_URL": self.gateway_url,
            "DATABASE_URL": self.dsn,
            "WPP_URL": self.sim_url,
            # Where supabase-js or the Storage API find the local stand-ins, and its keys.
            "SUPABASE_URL": self.gateway_url,
            "SUPABASE_ANON_KEY": self.local_secrets.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.local_secrets.service_role_key,
            "SUPABASE_JWT_SECRET": self.local_secrets.jwt_secret,
            "QR_WEBHOOK_VERIFY_TOKEN": self.local_secrets.verify_token,
            "WPP_SECRET_KEY": self.local_secrets.wpp_secret_key,
        }


@contextmanager
def running_stack(
    *,
    local_secrets: LocalSecrets | None = None,
    database_url: str | None = None,
    database_server: str | None = None,
    pg_data_dir: Path | None = None,
    simulator_port: int | None = None,
    simulator_data_dir: Path | None = None,
    simulator_config: Mapping[str, Any] | None = None,
    simulator_args: tuple[str, ...] = (),
    gateway_port: int | None = None,
    env_overrides: Mapping[str, str] | None = None,
    storage_dir: Path | None = None,
    log_dir: Path | None = None,
    log_prefix: str = "",
) -> Iterator[RunningStack]:
    """The database, the simulator and the gateway, all answering once yielded; all stopped
    (and whatever was scratch removed) on exit, also when starting one of them fails.

    The database options are ``local_database``'s; ports default to free ones; stored objects'
    bytes go to ``storage_dir`` (kept) or a scratch folder (removed); the servers
    log to ``log_dir``/``log_prefix``simulator.log and gateway.log (appended), or nowhere;
    fresh random secrets unless ``local_secrets``.
    """
    local_secrets = local_secrets or LocalSecrets.generate()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)

    def log(name: str) -> Path | None:
        return log_dir / f"{log_prefix}{name}.log" if log_dir is not None else None

    with contextlib.ExitStack() as parts:
        dsn = parts.enter_context(
            local_database(
                database_url=database_url,
                database_server=database_server,
                pg_data_dir=pg_data_dir,
            )
        )
        simulator = parts.enter_context(
            simulator_process(
                secret_key=local_secrets.wpp_secret_key,
                port=simulator_port,
                data_dir=simulator_data_dir,
                log_path=log("simulator"),
                config=simulator_config,
                args=simulator_args,
            )
        )
        gateway = parts.enter_context(
            gateway_process(
                dsn=dsn,
                wpp_url=simulator.url,
                local_secrets=local_secrets,
                port=gateway_port,
                env_overrides=env_overrides,
                log_path=log("gateway"),
                storage_dir=parts.enter_context(_folder(storage_dir, "wa-storage-")),
            )
        )
        yield RunningStack(dsn, local_secrets, simulator, gateway)


# --- make dev ----------------------------------------------------------------------------


def main() -> None:
    gateway_port = int(os.environ.get("GATEWAY_PORT", "3000"))
    wpp_port = int(os.environ.get("WPP_PORT", "21465"))
    LOCAL_DIR.mkdir(exist_ok=True)
    log_dir = LOCAL_DIR / "logs"
    try:
        with (
            running_stack(
                local_secrets=LocalSecrets.load_or_create(LOCAL_DIR / "secrets.json"),
                database_url=os.environ.get("DATABASE_URL"),
                pg_data_dir=LOCAL_DIR / "pgdata",
                simulator_port=wpp_port,
                simulator_data_dir=LOCAL_DIR / "simulator",
                gateway_port=gateway_port,
                storage_dir=LOCAL_DIR / "storage",
                # Scheduled messages go out within 10 s of their time (EventBridge: every minute);
                # files that could not be fetched at once are tried again within 15 s; events
                # may go to the test endpoint receiver on this machine, and retries are swept
                # every 5 s (the media and delivery schedules in AWS: every minute).
                env_overrides={
                    "LOCAL_SCHEDULER_EVERY_S": "10",
                    "LOCAL_RECONCILE_EVERY_S": "30",
                    "LOCAL_MEDIA_EVERY_S": "15",
                    "LOCAL_DELIVERY_EVERY_S": "5",
                    "ALLOW_LOCAL_ENDPOINTS": "true",
                },
                log_dir=log_dir,
            ) as stack,
            _receiver(int(os.environ.get("RECEIVER_PORT", "3100"))) as receiver,
        ):
            (LOCAL_DIR / "stack.env").write_text(
                "".join(f"{key}={value}\n" for key, value in stack.settings().items())
            )
            gateway_url = stack.gateway_url
            print(
                "\nLocal stack is up (Ctrl-C stops it):\n"
                f"  demo page      {gateway_url}/\n"
                f"  functions      {gateway_url}/<function>/  (start-session, status, ...)\n"
                f"  dev sign-in    POST {gateway_url}/auth/v1/token?grant_type=password\n"
                f"  storage        {gateway_url}/storage/v1/object/whatsapp-media/...\n"
                f"  simulator      {stack.sim_url}  (controls under /_sim/)\n"
                f"  test endpoint  {receiver.url}/<any path>  (prints the events it gets)\n"
                f"  database       {stack.dsn}\n"
                f"  settings       {LOCAL_DIR / 'stack.env'}\n"
                f"  logs           {log_dir}/\n"
                "  users          alice@example.com, bob@example.com (password: password)\n",
                flush=True,
            )
            while stack.all_running():
                time.sleep(0.5)
            print("A local server stopped; see the logs.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        print("Local stack stopped.", file=sys.stderr)


@contextmanager
def _receiver(port: int) -> Iterator[EndpointReceiver]:
    """The test endpoint receiver ``make dev`` runs, printing every event it gets."""
    with EndpointReceiver(port, echo=True) as receiver:
        yield receiver


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    main()
