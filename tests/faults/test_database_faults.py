"""The database down, and restarting under load, with a PostgreSQL of this module alone.

* Down: every function that needs it answers ``503 store_unavailable`` quickly, in the
  contract's shape; what needs no database (health, refusing a bad token) still works; nothing
  is half written (no outbox row, no host call for a send that could not begin).
* Back: the same gateway process (no cold start: the functions are not imported again) serves
  the very first request after the restart, although every connection it kept is dead.
* Restarting mid-run: under steady reads, sends and incoming messages, every answer is a 200
  or a 503; afterwards every send has one row in a state the send protocol allows, every send
  answered 200 went out once, and a retry with its key completes every send answered 503.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psycopg
import pytest
import requests

from local import devdb
from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway
from tests.e2e.flows import assert_error, connected_user, rows_of
from tests.faults.outbox import assert_outbox_consistent
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ROOT = Path(__file__).resolve().parents[2]
TO = "5511987654321"
LEASE_S = 1


@dataclass
class OwnDatabase:
    data_dir: Path
    dsn: str

    def stop(self) -> None:
        devdb.stop_embedded(self.data_dir)

    def start(self) -> None:
        # pgserver keeps one handle per process and would not start a server it saw stop:
        # start it from a fresh process, as `make dev` would.
        code = (
            "from pathlib import Path; from local import devdb;"
            f" devdb.start_embedded(Path({str(self.data_dir)!r}))"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)])}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            conn.execute("select 1")


@pytest.fixture(scope="module")
def own_db() -> Iterator[OwnDatabase]:
    folder = Path(tempfile.mkdtemp(prefix="wa-pg-faults-"))
    dsn = devdb.start_embedded(folder / "data")
    devdb.prepare(dsn)
    database = OwnDatabase(folder / "data", dsn)
    try:
        yield database
    finally:
        database.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway(
    own_db: OwnDatabase, simulator: Simulator, local_secrets: LocalSecrets, output_dir: Path
) -> Iterator[Gateway]:
    with own_gateway(
        own_db.dsn,
        simulator,
        local_secrets,
        output_dir / "gateway-dbfaults.log",
        DB_TIMEOUT="2",
        SEND_LEASE=f"{LEASE_S}s",
        SEND_BURST="1000",
        SEND_RATE_PER_MINUTE="60000",
    ) as started:
        yield started


def cold_starts(gateway: Gateway) -> int:
    return gateway.log_text().count('"ColdStart"')


def test_the_database_down_is_503_and_nothing_is_half_written(
    own_db: OwnDatabase, gateway: Gateway, simulator: Simulator
) -> None:
    gw = gateway
    user, token, name = connected_user(gw, simulator, "dbdown")
    newcomer_user = gw.new_user("dbdownnew")
    newcomer = gw.token_for(newcomer_user)
    assert gw.call("POST", "send-message", token, json={"phone": TO, "message": "before"}).ok
    # Several requests at once, so the gateway keeps several connections that will all die.
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(a.ok for a in pool.map(lambda _: gw.call("GET", "status", token), range(24)))
    before_rows = rows_of(own_db.dsn, user.id, "outbound")
    key = str(uuid.uuid4())
    proof = {"x-verify": gw.local_secrets.verify_token}

    own_db.stop()
    try:
        calls: list[tuple[str, requests.Response]] = []
        started = time.monotonic()
        calls.append(("start", gw.call("POST", "start-session", newcomer)))
        calls.append(("start linked", gw.call("POST", "start-session", token)))
        calls.append(("status", gw.call("GET", "status", token)))
        calls.append(("refresh", gw.call("GET", "status", token, params={"refresh": "true"})))
        send = {"phone": TO, "message": "during"}
        headers = {"Idempotency-Key": key}
        calls.append(("send", gw.call("POST", "send-message", token, json=send, headers=headers)))
        calls.append(("disconnect", gw.call("POST", "disconnect", token)))
        event = {"event": "status-find", "session": name, "status": "browserClose"}
        hook = requests.post(gw.fn("qr-webhook"), json=event, headers=proof, timeout=30)
        calls.append(("webhook", hook))
        elapsed = time.monotonic() - started
        for label, answer in calls:
            assert answer.status_code == 503, (label, answer.text)
            assert_error(answer, 503, "store_unavailable")
        assert elapsed < 10, "the functions waited too long for a database that is down"
        assert gw.call("GET", "status", path="/health").status_code == 200
        assert_error(gw.call("GET", "status", "not-a-token"), 401, "invalid_token")
        assert [m["body"] for m in simulator.outbox(name)] == ["before"]
        # Every function has served by now (each container's first invocation is its cold
        # start, the ones first called while the database was down included).
        imports = cold_starts(gw)
    finally:
        own_db.start()

    # The first request after the restart is served, by the same warm functions.
    first = gw.call("GET", "status", token)
    assert first.status_code == 200, first.text
    assert first.json()["session"]["status"] == "connected"
    assert gw.running() and cold_starts(gw) == imports
    after_rows = assert_outbox_consistent(own_db.dsn, user.id, simulator, name)
    assert [r["id"] for r in after_rows] == [r["id"] for r in before_rows]
    with psycopg.connect(own_db.dsn) as conn:
        started_rows = conn.execute(
            "select count(*) from whatsapp_sessions where user_id = %s", (newcomer_user.id,)
        ).fetchone()
    assert started_rows == (0,)
    # The send that could not begin: done once now, with its key.
    done = gw.call("POST", "send-message", token, json=send, headers=headers)
    assert done.status_code == 200 and done.json()["message"]["status"] == "sent"
    assert [m["body"] for m in simulator.outbox(name)] == ["before", "during"]


def test_the_first_request_after_a_quiet_restart_is_served(
    own_db: OwnDatabase, gateway: Gateway, simulator: Simulator
) -> None:
    """Every connection the functions kept died with the server; none of them is used twice."""
    gw = gateway
    token = gw.token_for(gw.new_user("dbquiet"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(a.ok for a in pool.map(lambda _: gw.call("GET", "status", token), range(24)))
    imports = cold_starts(gw)
    own_db.stop()
    own_db.start()
    for _ in range(3):
        answer = gw.call("GET", "status", token)
        assert answer.status_code == 200, answer.text
    assert gw.running() and cold_starts(gw) == imports


def test_a_restart_mid_run_answers_200_or_503_and_loses_no_send(
    own_db: OwnDatabase, gateway: Gateway, simulator: Simulator
) -> None:
    gw = gateway
    users = [connected_user(gw, simulator, f"dbload{i}") for i in range(3)]
    answers: list[tuple[str, str, int, str]] = []  # (kind, key, status, code)
    lock = threading.Lock()
    stop = threading.Event()

    def worker(index: int) -> None:
        _, token, name = users[index % len(users)]
        for n in range(400):  # bounded; stops earlier when the outage is over
            if stop.is_set():
                return
            key = f"{index}-{n}-{uuid.uuid4().hex[:6]}"
            if n % 3 == 0:
                answer = gw.call("GET", "status", token)
                kind = "status"
            elif n % 3 == 1:
                body = {"phone": TO, "message": f"load {key}"}
                answer = gw.call(
                    "POST", "send-message", token, json=body, headers={"Idempotency-Key": key}
                )
                kind = "send"
            else:
                simulator.control("POST", f"{name}/incoming", {"from": TO, "body": f"in {key}"})
                continue
            code = answer.json().get("error", {}).get("code", "") if answer.status_code else ""
            with lock:
                answers.append((kind, key, answer.status_code, code))
            time.sleep(0.01)  # a steady load, not a flood: pacing, not waiting

    def answered(status: int, since: int = 0) -> int:
        with lock:
            return sum(1 for _, _, got, _ in answers[since:] if got == status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: answered(200), lambda n: n >= 12, 10, message="load before the outage")
    own_db.stop()
    wait_until(lambda: answered(503), lambda n: n >= 12, 10, message="the outage under load")
    with lock:
        restarted_at = len(answers)
    own_db.start()
    wait_until(lambda: answered(200, restarted_at), lambda n: n >= 12, 10, message="load after it")
    stop.set()
    for thread in threads:
        thread.join(30)

    statuses = Counter((status, code) for _, _, status, code in answers)
    assert set(statuses) <= {(200, ""), (503, "store_unavailable")}, statuses
    assert statuses[(503, "store_unavailable")] > 0, "the outage was not seen"
    assert statuses[(200, "")] > 0
    assert gw.running()

    # Every send answered 503 completes with a retry of its key, once the lease is over.
    refused = [key for kind, key, status, _ in answers if kind == "send" and status == 503]
    sends = {key for kind, key, _, _ in answers if kind == "send"}
    by_key = {key: users[int(key.split("-")[0]) % len(users)] for key in sends}

    def complete(key: str) -> requests.Response:
        retry = partial(
            gw.call,
            "POST",
            "send-message",
            by_key[key][1],
            json={"phone": TO, "message": f"load {key}"},
            headers={"Idempotency-Key": key},
        )
        return wait_until(
            retry,
            lambda a: a.status_code == 200 and a.json()["message"]["status"] != "queued",
            LEASE_S + 4,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        for key, retried in zip(refused, pool.map(complete, refused), strict=True):
            assert retried.status_code == 200, (key, retried.text)

    # One row per send; sends answered 200 went out once; a send in doubt (the database
    # went away after the host was asked, and the acks that would have told so were lost)
    # may have gone out twice, never more.
    for _, _, name in users:  # the last acks land
        wait_until(partial(simulator.settled, name), within_s=5, message=f"{name} settled")
    for user, _, name in users:
        rows = assert_outbox_consistent(own_db.dsn, user.id)
        texts = Counter(m["body"] for m in simulator.outbox(name))
        keys = [r["idempotency_key"] for r in rows if r["idempotency_key"]]
        mine = {k for k in sends if by_key[k][0].id == user.id}
        assert set(keys) == mine
        for kind, key, status, _ in answers:
            if kind != "send" or key not in mine:
                continue
            sent = texts[f"load {key}"]
            assert sent == 1 if status == 200 else 1 <= sent <= 2, (key, status, sent)
    with psycopg.connect(own_db.dsn) as conn:
        inbound = conn.execute(
            "select count(*) from whatsapp_messages where direction = 'inbound'"
        ).fetchone()
    assert inbound is not None and inbound[0] > 0, "no incoming message was stored"
