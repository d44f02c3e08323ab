"""The real local stack (``local.stack.running_stack``), started for one bench run.

* a PostgreSQL: the embedded ``pgserver`` one in a scratch folder (or a new database on
  ``TEST_DATABASE_URL``), bootstrapped like Supabase and migrated by ``local.devdb``;
* the WPPConnect simulator, as its own process, made quiet and quick (``SIM_CONFIG``);
* the local gateway, as its own process: the host's webhooks reach the functions through it.

Everything listens on 127.0.0.1 with free ports, and is stopped and removed at the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests

from local.dev_auth import issue_access_token
from local.stack import LocalSecrets, running_stack

# URL prefix (the function's name in the results) -> folder under functions/.
FUNCTIONS = {
    "status": "status",
    "start-session": "start_session",
    "send-message": "send_message",
    "qr-webhook": "qr_webhook",
    "disconnect": "disconnect",
    "purge": "purge",
}

# What the bench changes in the functions' environment, and why:
# - the send governor (10 at once, 20/minute) would refuse a benchmark's sends with 429;
# - a QR lives 60 s, then 20 s: the idempotent start-session path needs one that stays valid;
BENCH_ENV = {
    "SEND_BURST": "1000000",
    "SEND_RATE_PER_MINUTE": "1000000",
    "QR_FIRST_TTL": "1h",
    "QR_NEXT_TTL": "1h",
    # API keys' own rate (60 at once, 300/minute) would refuse the key path's warm calls;
    # events may go to the bench's endpoint receiver on 127.0.0.1.
    "API_KEY_BURST": "1000000",
    "API_KEY_RATE_PER_MINUTE": "1000000",
    "ALLOW_LOCAL_ENDPOINTS": "true",
}

# The simulator, made quiet and quick: no QR refresh or autoclose timers firing mid-run, no
# simulated browser start-up, connect delay or wait for WhatsApp's server to take a send
# (host think-time is not the functions' cost), no automatic delivery acks (the webhook mix
# sends its own).
SIM_CONFIG = {
    "autoclose_ms": 0,
    "qr_refresh_ms": 0,
    "init_delay_ms": 0,
    "connect_delay_ms": 0,
    "send_time_ms": 0,
    "auto_ack": False,
}

SETUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str
    session: str | None = None  # the host session name, once started


@dataclass
class Stack:
    dsn: str
    sim_url: str
    gateway_url: str
    env: dict[str, str]  # the functions' environment: function_env + BENCH_ENV
    secrets: LocalSecrets
    http: requests.Session

    # --- the simulator -------------------------------------------------------------------

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.sim_url}/_sim/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    # --- users and their sessions --------------------------------------------------------

    def token_for(self, user_id: str, email: str) -> str:
        token, _ = issue_access_token(
            user_id=user_id,
            email=email,
            secret=self.secrets.jwt_secret,
            issuer=self.env["SUPABASE_JWT_ISSUER"],
            lifetime_s=4 * 3600,
        )
        return token

    def new_users(self, count: int, label: str) -> list[User]:
        """``count`` users in auth.users, inserted by one statement."""
        if count <= 0:
            return []
        tag = uuid.uuid4().hex[:8]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "insert into auth.users (id, email) "
                "select gen_random_uuid(), format('bench-%%s-%%s@example.com', %s::text, g) "
                "from generate_series(1, %s::int) g returning id, email",
                (f"{label}-{tag}", count),
            ).fetchall()
        return [User(str(uid), email, self.token_for(str(uid), email)) for uid, email in rows]

    def _call(self, method: str, function: str, user: User, body: Any = None) -> Any:
        response = self.http.request(
            method,
            f"{self.gateway_url}/{function}/",
            headers={"authorization": f"Bearer {user.token}"},
            json=body,
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{function} answered {response.status_code}: {response.text}")
        return response.json()

    def start(self, users: list[User]) -> list[User]:
        """Start pairing for each user (through the gateway, like the browser)."""

        def one(user: User) -> User:
            session = self._call("POST", "start-session", user, {})["session"]
            return User(user.id, user.email, user.token, session["name"])

        with ThreadPoolExecutor(max_workers=6) as pool:
            started = list(pool.map(one, users))
        self.wait_for(started, "pairing")
        return started

    def connect(self, users: list[User]) -> list[User]:
        """Link each user's WhatsApp: start, the phone scans, wait for 'connected'."""
        started = self.start(users)
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda u: self.sim("POST", f"{u.session}/scan", {}), started))
        self.wait_for(started, "connected")
        return started

    def wait_for(self, users: list[User], status: str) -> None:
        names = [u.session for u in users]
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "select count(*) from whatsapp_sessions where session_id = any(%s) "
                    "and status = %s",
                    (names, status),
                ).fetchone()
                if row and row[0] == len(names):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sessions did not reach {status!r} in {SETUP_TIMEOUT_S} s")
                time.sleep(0.02)


@contextmanager
def local_stack(log_dir: Path) -> Iterator[Stack]:
    """Start the database, the simulator and the gateway; stop and remove them afterwards."""
    with (
        running_stack(
            database_server=os.environ.get("TEST_DATABASE_URL"),
            simulator_config=SIM_CONFIG,
            simulator_args=("--no-start-all",),
            env_overrides=BENCH_ENV,
            log_dir=log_dir,
            log_prefix="bench-",
        ) as running,
        requests.Session() as http,
    ):
        yield Stack(
            running.dsn,
            running.sim_url,
            running.gateway_url,
            running.env,
            running.local_secrets,
            http,
        )
