"""The official Supabase clients, run against the local stack: supabase-js (pinned in
package.json, run by Node from ``supabase_js.mjs``) and supabase-py (pinned in
requirements-dev.txt), each pointed at the gateway as an app points them at a project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from supabase import Client, ClientOptions, create_client

from local import devdb
from tests.conftest import Gateway
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = Path(__file__).resolve().parent / "supabase_js.mjs"
BUCKET = "whatsapp-media"


def run_js(gateway: Gateway, scenario: str, **params: Any) -> dict[str, Any]:
    """Run one supabase-js scenario against ``gateway``; what the client returned."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the supabase-js contract tests"
    finished = subprocess.run(
        # Node 20 has its WebSocket (which supabase-js requires at creation) behind a flag.
        [node, "--experimental-websocket", str(SCENARIOS), scenario, json.dumps(params)],
        cwd=ROOT,
        env={
            **os.environ,
            "SUPABASE_URL": gateway.url,
            "SUPABASE_ANON_KEY": gateway.local_secrets.anon_key,
            "NODE_NO_WARNINGS": "1",
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def py_client(gateway: Gateway) -> Client:
    """A supabase-py client for the local stack, with the anon key, as an app makes one."""
    return create_client(
        gateway.url,
        gateway.local_secrets.anon_key,
        options=ClientOptions(auto_refresh_token=False, persist_session=False),
    )


@pytest.fixture()
def user(gateway: Gateway) -> devdb.DevUser:
    """A user of this test alone (password ``password``)."""
    return gateway.new_user("client")


@pytest.fixture()
def signed_in(gateway: Gateway, user: devdb.DevUser) -> Iterator[Client]:
    """supabase-py signed in as ``user``."""
    client = py_client(gateway)
    client.auth.sign_in_with_password({"email": user.email, "password": "password"})
    yield client


def cancelled_while_locked(database: str, table: str, call: Callable[[], Any]) -> Any:
    """Run ``call`` while ``table`` is locked, cancel the statement it waits on (as a
    statement timeout cancels it: 57014), and return what ``call`` returned or raised."""
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(call())
        except Exception as exc:
            results.append(exc)

    # Watched from a connection of its own: a transaction sees pg_stat_activity as it was
    # when it first looked.
    with (
        psycopg.connect(database, autocommit=True) as watcher,
        psycopg.connect(database) as locker,
        locker.transaction(),
    ):
        locker.execute(f"lock table {table} in access exclusive mode")
        caller = threading.Thread(target=run)
        caller.start()
        waiting = wait_until(
            lambda: watcher.execute(
                "select pid from pg_stat_activity where wait_event_type = 'Lock' and pid <> %s",
                (locker.info.backend_pid,),
            ).fetchall(),
            bool,
            within_s=10,
        )
        locker.execute("select pg_cancel_backend(%s)", (waiting[0][0],))
    caller.join(timeout=30)
    [result] = results
    return result
