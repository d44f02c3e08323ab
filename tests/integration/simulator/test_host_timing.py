"""The simulator's sessions keep the real host's time: a login is not usable until the
library's create() resolves, a restarted host restores its sessions from its token store, a
logged-out browser lingers on its profile, a browser that fails to launch sticks, and pairing
codes change at every QR rotation. Over real HTTP against the simulator as its own process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.simulator.host_client import (
    DISCONNECTED,
    Host,
    Receiver,
    linked_on_own_host,
    start_host,
)
from tests.waiting import wait_until

SEND = {"phone": "5511987650001", "message": "oi"}


def not_usable(host: Host, session: str) -> bool:
    """The host has no library client for the session: check-connection-session says false
    and a route behind statusConnection answers 404."""
    check = host.call("GET", session, "check-connection-session").json()
    sent = host.call("POST", session, "send-message", SEND)
    refused = sent.status_code == 404 and sent.json() == {**DISCONNECTED, "session": session}
    return check["status"] is False and refused


def held_start(host: Host, session: str, body: dict[str, Any]) -> dict[str, Any]:
    """Start with ``waitQrCode`` in a thread; the dict gets ``answer`` (or ``error``)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = host.call(
                "POST", session, "start-session", {**body, "waitQrCode": True}, timeout=4
            )
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


# --- 1. logged in is not usable yet ---------------------------------------------------------


def test_a_scanned_or_restored_login_is_usable_only_once_create_resolves(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver, connect_delay_ms=1500)
    assert host.sim("POST", f"{name}/scan").status_code == 200
    receiver.wait_for(name, "status-find", "qrReadSuccess")
    # The library still waits for the chat: the entry is the server's placeholder, which
    # keeps its QR status and has no isConnected().
    assert host.status(name)["status"] == "QRCODE"
    assert not_usable(host, name)
    assert wait_until(lambda: host.status(name)["status"] == "CONNECTED", within_s=5.0)
    receiver.wait_for(name, "status-find", "inChat")
    assert host.call("GET", name, "check-connection-session").json()["status"] is True

    other = f"{name}r"
    assert host.sim("POST", f"{other}/restore", {"start": False}).status_code == 200
    started = host.call("POST", other, "start-session", {"webhook": receiver.url_for(other)})
    assert started.status_code == 200
    receiver.wait_for(other, "status-find", "isLogged")
    assert host.status(other)["status"] == "INITIALIZING"
    assert not_usable(host, other)
    assert wait_until(lambda: host.status(other)["status"] == "CONNECTED", within_s=5.0)


# --- 2. a host restart ---------------------------------------------------------------------


def test_a_restarted_host_restores_every_session_from_its_token_store_in_its_own_time(
    tmp_path: Path, receiver: Receiver
) -> None:
    sessions = [f"r{uuid.uuid4().hex[:8]}" for _ in range(2)]
    first, host = linked_on_own_host(tmp_path, receiver, sessions)
    assert first.stop() == 0
    receiver.clear()

    # Restarted on the same data: startAllSession starts every stored session at boot, each
    # restoring its saved login (a browser to launch, then the library's wait for the chat).
    restore = {"init_delay_ms": 400, "connect_delay_ms": 800}
    second = start_host(tmp_path, "--config", json.dumps(restore))
    host.follow(second)
    try:
        for session in sessions:
            assert host.status(session)["status"] == "INITIALIZING"
            assert not_usable(host, session)
        for session in sessions:
            receiver.wait_for(session, "status-find", "isLogged")  # to the stored webhook
            assert not_usable(host, session)
        for session in sessions:
            receiver.wait_for(session, "status-find", "inChat")
            assert host.status(session)["status"] == "CONNECTED"
            assert host.call("GET", session, "check-connection-session").json()["status"]
        assert host.sim("GET", "config").json()["connect_delay_ms"] == 800
    finally:
        assert second.stop() == 0


def test_a_config_that_is_not_an_object_of_known_keys_stops_the_command_line(
    tmp_path: Path,
) -> None:
    for bad in ("[1]", '{"no_such_key": 1}', "{"):
        with pytest.raises(RuntimeError, match="exited with 2"):  # it never answered
            start_host(tmp_path, "--config", bad)


# --- 3. relink right after a logout --------------------------------------------------------


def test_a_start_while_the_logged_out_browser_closes_fails_and_its_late_close_wipes_it(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, logout_close_ms=1200)
    assert host.sim("GET", name).json()["browsers"] == 1
    assert host.call("POST", name, "logout-session").status_code == 200
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("GET", name).json()["browsers"] == 1  # the old browser runs on

    start = held_start(host, name, {"webhook": receiver.url_for(name)})
    assert wait_until(lambda: host.sim("GET", name).json().get("launchFailed"), within_s=2.0)
    state = host.sim("GET", name).json()
    assert state["status"] == "INITIALIZING" and state["browsers"] == 1

    # Then the old client sees it is unregistered: disconnectedMobile wipes the entry (the
    # failed start's included), and its browser closes.
    receiver.wait_for(name, "status-find", "browserClose")
    assert host.emitted(name)[-2:] == [
        ("status-find", "disconnectedMobile"),
        ("status-find", "browserClose"),
    ]
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("GET", name).json()["browsers"] == 0
    start["thread"].join(6)
    assert "answer" not in start  # the held reply never came

    again = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert again.status_code == 200 and again.json()["status"] == "qrcode"
    assert host.sim("GET", name).json()["browsers"] == 1


def test_unlinking_on_the_phone_closes_the_browser_after_disconnected_mobile(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.unlink_on_the_phone(name, receiver, until="browserClose")
    assert host.emitted(name)[-2:] == [
        ("status-find", "disconnectedMobile"),
        ("status-find", "browserClose"),
    ]
    assert host.sim("GET", name).json()["browsers"] == 0


# --- 4. a browser that fails to launch -----------------------------------------------------


def test_a_browser_that_fails_to_launch_stays_initializing_until_close_session(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(launch_fail_next=1)
    start = held_start(host, name, {"webhook": receiver.url_for(name)})
    assert wait_until(lambda: host.sim("GET", name).json().get("launchFailed"), within_s=2.0)
    time.sleep(0.3)  # well past the launch time: nothing more happens
    assert host.status(name)["status"] == "INITIALIZING"
    assert host.sim("GET", name).json()["browsers"] == 0
    assert receiver.of(name) == []
    early = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert early.json()["status"] == "INITIALIZING"  # every later start returns early
    assert host.sim("GET", name).json()["starts"] == 1

    closed = host.call("POST", name, "close-session")
    assert closed.status_code == 500  # the placeholder has no close(); the entry is reset
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    fresh = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert fresh.status_code == 200 and fresh.json()["status"] is None  # the reset entry's
    assert wait_until(lambda: host.status(name)["status"] == "QRCODE", within_s=2.0)
    assert host.sim("GET", name).json()["browsers"] == 1
    assert host.sim("GET", "config").json()["launch_fail_next"] == 0
    start["thread"].join(6)
    assert "answer" not in start


# --- 5. pairing codes change ---------------------------------------------------------------


def test_a_pairing_code_changes_at_every_qr_rotation(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(qr_refresh_ms=300)
    body = {"webhook": receiver.url_for(name), "phone": "5511912345678", "waitQrCode": True}
    first = host.call("POST", name, "start-session", body).json()
    assert first["status"] == "phoneCode"
    hooks = receiver.wait_for(name, "phoneCode", count=3)
    codes = {h.body["phoneCode"] for h in hooks}
    assert len(codes) >= 3 and first["phoneCode"] in codes
    assert host.sim("GET", name).json()["status"] == "PHONECODE"

    other = f"{name}k"
    host.configure(phone_code_rotates=False)  # as the kind profile
    kept = host.call("POST", other, "start-session", {**body, "webhook": receiver.url_for(other)})
    time.sleep(1.0)
    [only] = receiver.wait_for(other, "phoneCode")
    assert only.body["phoneCode"] == kept.json()["phoneCode"]
    assert len(receiver.wait_for(other, "phoneCode")) == 1
