"""A pool of three WPPConnect hosts (three simulator processes): placement up to capacity, a
clear 503 beyond it, a host going down and its users placed anew, draining, and each host's
webhooks accepted only for its own sessions."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway, own_simulator
from tests.e2e.flows import assert_error, one_value, wait_for_status
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.purge import Purger
from wa_gateway.settings import Settings
from wa_gateway.store import create_store

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Pool:
    gateway: Gateway
    dsn: str
    hosts: dict[str, Simulator]  # name -> simulator

    def cli(self, *args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.gateway.env, "PYTHONPATH": str(ROOT / "shared")}
        if secret:
            env["WPP_HOST_SECRET_KEY"] = secret
        return subprocess.run(
            [sys.executable, "-m", "wa_gateway.host.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def placement(self) -> Counter[str]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "select h.name from whatsapp_sessions s join wpp_hosts h on h.id = s.host_id"
                " where s.status <> 'disconnected'"
            ).fetchall()
        return Counter(r[0] for r in rows)

    def purger(self) -> Purger:
        settings = Settings.load(self.gateway.env)
        return Purger(
            store=create_store(settings),
            hosts=HostDirectory(settings, settings.keyring),
            keyring=settings.keyring,
            qr_ttl_s=settings.qr_ttl_s,
            stale_after_s=settings.stale_after_s,
            drain_idle_after_s=0,
            health_pause_s=0.05,
        )


@pytest.fixture(scope="module")
def pool(make_database: Any, local_secrets: LocalSecrets, output_dir: Path) -> Iterator[Pool]:
    dsn = make_database()
    secrets = {name: f"{name}-secret-{uuid.uuid4().hex}" for name in ("host-a", "host-b", "host-c")}
    with ExitStack() as started:
        sims = {
            name: started.enter_context(own_simulator(secret, output_dir / f"simulator-{name}.log"))
            for name, secret in secrets.items()
        }
        gateway = started.enter_context(
            own_gateway(dsn, sims["host-a"], local_secrets, output_dir / "gateway-pool.log")
        )
        pool = Pool(gateway, dsn, sims)
        for name, sim in sims.items():
            added = pool.cli("add", name, sim.url, "--capacity", "2", secret=secrets[name])
            assert added.returncode == 0, added.stderr
        yield pool


def start(pool: Pool, label: str) -> tuple[str, Any]:
    token = pool.gateway.token_for(pool.gateway.new_user(label))
    return token, pool.gateway.call("POST", "start-session", token)


def host_of(pool: Pool, session_name: str) -> str:
    return str(
        one_value(
            pool.dsn,
            "select h.name from whatsapp_sessions s join wpp_hosts h on h.id = s.host_id"
            " where s.session_id = %s",
            (session_name,),
        )
    )


def test_the_pool_fills_evenly_refuses_beyond_capacity_and_replaces_after_a_host_dies(
    pool: Pool,
) -> None:
    # Six concurrent starts fill three hosts of capacity 2; a seventh is refused clearly.
    with ThreadPoolExecutor(max_workers=7) as workers:
        answers = list(workers.map(lambda i: start(pool, f"pool{i}"), range(7)))
    codes = Counter(a.status_code for _, a in answers)
    assert codes == {200: 6, 503: 1}
    refused = next(a for _, a in answers if a.status_code == 503)
    assert_error(refused, 503, "no_capacity")
    assert pool.placement() == {"host-a": 2, "host-b": 2, "host-c": 2}
    sessions = {a.json()["session"]["name"]: t for t, a in answers if a.status_code == 200}
    for name in sessions:
        sim = pool.hosts[host_of(pool, name)]
        assert sim.state(name)["status"] == "QRCODE"  # started on the host it was placed on

    listed = pool.cli("list")
    assert listed.returncode == 0 and "host-a" in listed.stdout and "2/2" in listed.stdout
    assert "secret" not in listed.stdout

    # Each host's webhooks are accepted with its own proof: a scan on host-b connects.
    on_b = [n for n in sessions if host_of(pool, n) == "host-b"]
    pool.hosts["host-b"].control("POST", f"{on_b[0]}/scan")
    assert wait_for_status(pool.gateway, sessions[on_b[0]], "connected")["status"] == "connected"

    # host-a dies: the purge marks it down and disconnects its sessions.
    on_a = [n for n in sessions if host_of(pool, n) == "host-a"]
    pool.hosts["host-a"].host.stop()
    report = pool.purger().run()
    assert (report.hosts_marked_down, report.sessions_disconnected) == (1, 2)
    for name in on_a:
        now = pool.gateway.call("GET", "status", sessions[name]).json()["session"]
        assert now["status"] == "disconnected"

    # With room made on the others, host-a's users are placed anew on their next start.
    for name in ("host-b", "host-c"):
        assert pool.cli("set", name, "--capacity", "3").returncode == 0
    for name in on_a:
        again = pool.gateway.call("POST", "start-session", sessions[name])
        assert again.status_code == 200, again.text
        assert host_of(pool, name) in ("host-b", "host-c")
    assert pool.placement() == {"host-b": 3, "host-c": 3}

    # A late event from the dead host for a session now elsewhere changes nothing.
    moved = on_a[0]
    host_a_id = _host_id(pool, "host-a")
    secret = pool.gateway.local_secrets.verify_token
    late = pool.gateway.call(
        "POST",
        "qr-webhook",
        params={"session": moved, "host": host_a_id,
                "verify": session_proof(secret, moved, host_a_id)},
        json={"event": "status-find", "session": moved, "status": "inChat"},
    )  # fmt: skip
    assert late.status_code == 200
    status = pool.gateway.call("GET", "status", sessions[moved]).json()["session"]["status"]
    assert status != "connected"


def test_a_draining_host_takes_no_new_sessions_and_its_idle_ones_are_closed(
    pool: Pool,
) -> None:
    assert pool.cli("set", "host-c", "--state", "draining").returncode == 0
    report = pool.purger().run()
    assert report.sessions_drained == 3
    assert pool.placement()["host-c"] == 0
    _, full = start(pool, "while-full")  # host-b is full, host-c takes no one, host-a is down
    assert_error(full, 503, "no_capacity")
    assert pool.cli("set", "host-b", "--capacity", "4").returncode == 0
    token, answer = start(pool, "after-drain")
    assert answer.status_code == 200
    assert host_of(pool, answer.json()["session"]["name"]) == "host-b"
    assert pool.gateway.call("POST", "disconnect", token).status_code == 200


def test_hosts_are_unreadable_by_users_and_their_secrets_encrypted(pool: Pool) -> None:
    with psycopg.connect(pool.dsn) as conn:
        keys = [r[0] for r in conn.execute("select secret_key from wpp_hosts").fetchall()]
    assert keys and all(k.startswith("v1.") and "secret" not in k for k in keys)
    bad = pool.cli("add", "host-x", "http://127.0.0.1:9", "--capacity", "1", secret="s" * 32)
    assert bad.returncode == 2 and "does not answer" in bad.stderr
    short = pool.cli("add", "host-y", "http://127.0.0.1:9", "--capacity", "1", secret="s" * 31)
    assert short.returncode == 2 and "at least 32 bytes" in short.stderr


def _host_id(pool: Pool, name: str) -> str:
    with psycopg.connect(pool.dsn) as conn:
        row = conn.execute("select id from wpp_hosts where name = %s", (name,)).fetchone()
    assert row is not None
    return str(row[0])
