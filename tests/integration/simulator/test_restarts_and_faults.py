"""The simulator's bug flags, secret routes, restarts and faults. Over real HTTP against the
simulator running as its own process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.integration.simulator.host_client import (
    SECRET,
    Host,
    Receiver,
    linked_on_own_host,
    start_host,
)
from tests.waiting import wait_until

# --- 10. delivery and bug flags, secret routes, restarts, faults -------------------------


def test_wait_qr_code_on_a_restored_login_answers_once_connected_or_hangs_with_that_bug(
    host: Host, name: str
) -> None:
    host.configure(bug_wait_qr_hang_on_restore=False)
    assert host.sim("POST", f"{name}/restore", {"start": False}).json()["started"] is False
    answer = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert answer.json() == {
        "status": "CONNECTED",
        "qrcode": None,
        "version": "2.10.4",
        "session": "",  # the wrapper's req.client was looked up before the start
    }
    other = f"{name}b"
    host.configure(bug_wait_qr_hang_on_restore=True)
    host.sim("POST", f"{other}/restore", {"start": False})
    with pytest.raises(requests.ReadTimeout):
        host.call("POST", other, "start-session", {"waitQrCode": True}, timeout=0.5)
    assert wait_until(lambda: host.status(other)["status"] == "CONNECTED")


def test_show_all_sessions_and_start_all_check_the_secret(host: Host, name: str) -> None:
    host.call("POST", name, "start-session", {})
    listed = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions")
    assert listed.status_code == 200 and listed.json() == {"response": [name]}
    bad = host.http.get(f"{host.url}/api/WRONG/show-all-sessions")
    assert bad.status_code == 400
    assert bad.json() == {"response": False, "message": "The token is incorrect"}
    bad_start = host.http.post(f"{host.url}/api/WRONG/start-all")
    assert bad_start.status_code == 400
    assert bad_start.json() == {"response": "error", "message": "The token is incorrect"}


def test_config_survives_a_restart_and_start_all_restores_the_login(
    tmp_path: Path, receiver: Receiver, name: str
) -> None:
    first, host = linked_on_own_host(tmp_path, receiver, [name])
    assert first.stop() == 0

    second = start_host(tmp_path, "--no-start-all")
    host.follow(second)
    host.configure(init_delay_ms=20, connect_delay_ms=50)
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    shown = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions").json()
    assert shown["response"] == [name]
    receiver.clear()
    started = host.http.post(f"{host.url}/api/{SECRET}/start-all")
    assert started.status_code == 201
    assert started.json() == {"status": "success", "message": "Starting all sessions"}
    restored = [("status-find", "isLogged"), ("status-find", "inChat")]
    receiver.wait_for_exactly(name, restored)  # the stored webhook is used
    assert host.emitted(name) == restored
    assert host.status(name)["status"] == "CONNECTED"
    assert second.stop() == 0

    third = start_host(tmp_path)  # startAllSession at boot
    host.follow(third)
    assert wait_until(lambda: host.status(name)["status"] == "CONNECTED", within_s=3.0)
    assert third.stop() == 0


def test_start_all_with_a_bad_secret_still_starts_when_that_bug_is_on(
    host: Host, name: str
) -> None:
    # A linked session, closed: a close while pairing would leave its browser running
    # (orphan_pairing_browser), and a start-all could not start it again anyway.
    host.connect(name)
    assert host.call("POST", name, "close-session").status_code == 200
    assert host.status(name)["status"] == "CLOSED"
    host.configure(bug_start_all_bad_secret=True)
    assert host.http.post(f"{host.url}/api/WRONG/start-all").status_code == 400
    assert wait_until(lambda: host.status(name)["status"] == "CONNECTED")


def test_faults_slow_down_break_and_take_down_the_api_only(host: Host, name: str) -> None:
    host.token(name)
    assert host.sim("POST", "faults", {"latency_ms": 300}).status_code == 200
    started = time.monotonic()
    assert host.call("GET", name, "status-session").status_code == 200
    assert time.monotonic() - started >= 0.3
    host.sim("POST", "faults", {"latency_ms": 0, "error_rate": 1.0})
    assert host.call("GET", name, "status-session").status_code == 500
    host.sim("POST", "faults", {"error_rate": 1.0, "error_mode": "garbage"})
    with pytest.raises(ValueError):
        host.call("GET", name, "status-session").json()
    host.sim("POST", "faults", {"error_rate": 0.0, "down": True})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{host.url}/api/{name}/status-session", timeout=5)
    assert requests.get(f"{host.url}/healthz", timeout=5).status_code == 200
    assert host.sim("GET", "faults").json()["down"] is True
    host.sim("POST", "faults", {"down": False})
    assert host.call("GET", name, "status-session").status_code == 200
    assert host.sim("POST", "faults", {"nope": 1}).status_code == 400


def test_in_flight_counts_the_api_requests_the_host_holds(host: Host, name: str) -> None:
    host.token(name)
    host.sim("POST", "faults", {"latency_ms": 500})
    held = threading.Thread(target=lambda: host.call("GET", name, "status-session"))
    held.start()
    try:
        wait_until(lambda: host.sim("GET", "in-flight").json()["in_flight"], lambda n: n == 1)
        assert host.sim("GET", name).status_code == 200  # /_sim is neither held nor counted
        assert host.sim("GET", "in-flight").json()["in_flight"] == 1
    finally:
        held.join(5)
        host.sim("POST", "faults", {"latency_ms": 0})
    assert host.sim("GET", "in-flight").json()["in_flight"] == 0


def test_healthz_answers_like_the_server(host: Host) -> None:
    body = requests.get(f"{host.url}/healthz", timeout=5).json()
    assert set(body) == {"uptime", "message", "timestamp"} and body["message"] == "OK"
    assert abs(body["timestamp"] / 1000 - time.time()) < 60
