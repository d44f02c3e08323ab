"""The local stack of one soak run (``local.stack.running_stack``): a PostgreSQL, the
simulator and the gateway, on 127.0.0.1 with free ports, removed afterwards."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from local import devdb
from local.dev_auth import issue_access_token
from local.stack import LocalSecrets, SimulatorProcess, running_stack

# The governor exists to keep one WhatsApp number from sending like a machine; a soak is one.
GATEWAY_ENV = {
    # As Lambda adds containers when a function's invocations overlap: the host's webhooks
    # (every send's acks, twice each here) come faster than one container applies them.
    "LOCAL_CONTAINERS": "4",
    "SEND_BURST": "1000000",
    "SEND_RATE_PER_MINUTE": "1000000",
    "QR_FIRST_TTL": "1h",
    "QR_NEXT_TTL": "1h",
}
SIM_CONFIG = {
    # The host answers a send at once: the load measures the gateway, and the scheduled phase
    # sets a slow host.
    "send_time_ms": 0,
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


# What the host keeps in memory about a session, lost when it restarts: kept here first.
HOST_LOGS = ("outbox", "inbox", "events")


@dataclass
class Stack:
    dsn: str
    sim_url: str
    gateway_url: str
    env: dict[str, str]
    secrets: LocalSecrets
    log_dir: Path
    host: SimulatorProcess  # started again, on its port and data, by a restart
    # Per log and session, what the host had logged before it last restarted.
    before_restart: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.sim_url}/_sim/{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def host_log(self, session: str, log: str) -> list[Any]:
        """The host's ``outbox``, ``inbox`` or ``events`` of a session over the whole run,
        restarts included."""
        kept = self.before_restart.get(log, {}).get(session, [])
        current: list[Any] = self.sim("GET", f"{session}/{log}")[log]
        return [*kept, *current]

    def restart_host(
        self, sessions: list[str], *, down_s: float, drain: Callable[[], float]
    ) -> dict[str, Any]:
        """The host goes away as a process does and comes back: it refuses new requests,
        finishes those it serves and delivers their webhooks, stops for ``down_s`` and starts
        again on its data, restoring the sessions it keeps (``startAllSession``)."""
        started = time.monotonic()
        connected = [s for s in sessions if self.sim("GET", s).get("status") == "CONNECTED"]
        self.sim("POST", "faults", {"down": True})
        while self.sim("GET", "in-flight")["in_flight"]:
            time.sleep(0.05)
        drain()
        for log in HOST_LOGS:
            kept = self.before_restart.setdefault(log, {})
            for session in sessions:
                kept.setdefault(session, []).extend(self.sim("GET", f"{session}/{log}")[log])
        self.host.stop()
        time.sleep(down_s)
        back = time.monotonic()
        self.host.start()
        self.sim("POST", "config", SIM_CONFIG)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            self.sim("GET", s).get("status") != "CONNECTED" for s in connected
        ):
            time.sleep(0.2)
        restored = sum(self.sim("GET", s).get("status") == "CONNECTED" for s in connected)
        return {
            "sessions_connected_before": len(connected),
            "sessions_restored": restored,
            "down_s": round(back - started, 1),
            "restore_s": round(time.monotonic() - back, 1),
        }

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

    def reconcile_until_done(self, most: int = 5) -> dict[str, Any]:
        """Reconcile passes, as the schedule runs them, until one leaves no session to the next
        (none deferred, no lease lost), at most ``most``: their counts added up, and how many
        passes it took."""
        total: dict[str, Any] = {"passes": 0}
        while total["passes"] < most:
            done = self.reconcile_once()
            total["passes"] += 1
            for key, value in done.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
                elif isinstance(value, dict):  # counts by kind (errors)
                    merged = total.setdefault(key, {})
                    for kind, count in value.items():
                        merged[kind] = merged.get(kind, 0) + count
                else:
                    total[key] = value
            if not (done.get("deferred") or done.get("lease_lost")):
                break
        return total

    def reconcile_once(self) -> dict[str, Any]:
        """One reconcile pass, as EventBridge invokes it, with the gateway's environment."""
        from local.function_url import LambdaContext
        from local.gateway import handlers_in_process

        with handlers_in_process(self.env) as handlers:
            context = LambdaContext("reconcile", str(uuid.uuid4()), timeout_ms=240_000)
            event = {"source": "schedule", "job": "reconcile"}
            result: dict[str, Any] = handlers["reconcile"](event, context)
            return result

    def link(self, user: User, http: requests.Session, timeout_s: float = 30) -> User:
        """Start, scan once the host shows the QR code (a start may answer before the host
        has drawn it, as wppconnect-server's does), and wait until the gateway says
        connected."""
        headers = {"authorization": f"Bearer {user.token}"}
        started = http.post(f"{self.gateway_url}/start-session/", headers=headers, timeout=30)
        started.raise_for_status()
        name = started.json()["session"]["name"]
        deadline = time.monotonic() + timeout_s
        while self.sim("GET", name).get("status") != "QRCODE":
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the host did not show {name}'s QR code within {timeout_s} s")
            time.sleep(0.05)
        self.sim("POST", f"{name}/scan", {})
        while time.monotonic() < deadline:
            status = http.get(f"{self.gateway_url}/status/", headers=headers, timeout=30)
            if status.ok and (status.json()["session"] or {}).get("status") == "connected":
                return User(user.id, user.email, user.token, name)
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not connect within {timeout_s} s")


@contextmanager
def local_stack(log_dir: Path, database_url: str | None = None) -> Iterator[Stack]:
    """``database_url`` is a server to make the run's own database on (dropped at the end);
    without it, the embedded PostgreSQL in a scratch folder. The host keeps its data in the
    log folder, so that it can be restarted on it."""
    host_data_dir = log_dir / "host-data"
    shutil.rmtree(host_data_dir, ignore_errors=True)
    with running_stack(
        database_server=database_url,
        simulator_config=SIM_CONFIG,
        simulator_data_dir=host_data_dir,
        env_overrides=GATEWAY_ENV,
        log_dir=log_dir,
    ) as running:
        stack = Stack(
            running.dsn,
            running.sim_url,
            running.gateway_url,
            running.env,
            running.local_secrets,
            log_dir,
            running.simulator,
        )
        yield stack
