"""The local stack of one soak run: a PostgreSQL, the simulator and the gateway, on 127.0.0.1
with free ports, started the way tests/conftest.py starts them and removed afterwards."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests

from local import devdb, processes
from local.dev_auth import issue_access_token
from local.stack import LocalSecrets, function_env

# The governor exists to keep one WhatsApp number from sending like a machine; a soak is one.
GATEWAY_ENV = {
    "SEND_BURST": "1000000",
    "SEND_RATE_PER_MINUTE": "1000000",
    "QR_FIRST_TTL": "1h",
    "QR_NEXT_TTL": "1h",
}
SIM_CONFIG = {
    "delivery_mode": "shuffle+duplicate",
    "qr_refresh_ms": 0,
    "autoclose_ms": 0,
    "init_delay_ms": 0,
    "connect_delay_ms": 20,
}


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str
    session: str = ""


@dataclass
class Stack:
    dsn: str
    sim_url: str
    gateway_url: str
    env: dict[str, str]
    secrets: LocalSecrets
    log_dir: Path

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.sim_url}/_sim/{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def new_users(self, count: int) -> list[User]:
        tag = uuid.uuid4().hex[:8]
        users = []
        for i in range(count):
            made = devdb.create_user(self.dsn, f"soak-{tag}-{i}@example.com", "password")
            token, _ = issue_access_token(
                user_id=made.id,
                email=made.email,
                secret=self.secrets.jwt_secret,
                issuer=self.env["SUPABASE_JWT_ISSUER"],
                lifetime_s=6 * 3600,
            )
            users.append(User(made.id, made.email, token))
        return users

    def link(self, user: User, http: requests.Session, timeout_s: float = 30) -> User:
        """Start, scan, and wait until the gateway says connected."""
        headers = {"authorization": f"Bearer {user.token}"}
        started = http.post(f"{self.gateway_url}/start-session/", headers=headers, timeout=30)
        started.raise_for_status()
        name = started.json()["session"]["name"]
        self.sim("POST", f"{name}/scan", {})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = http.get(f"{self.gateway_url}/status/", headers=headers, timeout=30)
            if status.ok and (status.json()["session"] or {}).get("status") == "connected":
                return User(user.id, user.email, user.token, name)
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not connect within {timeout_s} s")


@contextmanager
def local_stack(log_dir: Path, database_url: str | None = None) -> Iterator[Stack]:
    log_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="wa-soak-"))
    secrets = LocalSecrets.generate()
    children: list[Any] = []
    server = None
    db_name = f"wa_soak_{uuid.uuid4().hex[:8]}"
    try:
        if database_url:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f'create database "{db_name}"')
            dsn = psycopg.conninfo.make_conninfo(database_url, dbname=db_name)
        else:
            import pgserver

            server = pgserver.get_server(scratch / "pg", cleanup_mode="stop")
            dsn = str(server.get_uri())
        devdb.prepare(dsn)

        sim_port, gateway_port = processes.free_port(), processes.free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        simulator, _ = processes.start_simulator(
            port=sim_port,
            data_dir=scratch / "simulator",
            secret_key=secrets.wpp_secret_key,
            log_path=log_dir / "simulator.log",
        )
        children.append(simulator)
        env = (
            function_env(dsn=dsn, gateway_url=gateway_url, wpp_url=sim_url, local_secrets=secrets)
            | GATEWAY_ENV
        )
        gateway, _ = processes.start_gateway(
            port=gateway_port, env=env, log_path=log_dir / "gateway.log"
        )
        children.append(gateway)
        stack = Stack(dsn, sim_url, gateway_url, env, secrets, log_dir)
        stack.sim("POST", "config", SIM_CONFIG)
        yield stack
    finally:
        for child in reversed(children):
            processes.stop(child)
        if database_url:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{db_name}" with (force)')
        if server is not None:
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
