"""Cancelling, linking again and switching method against a host that behaves like
wppconnect-server 2.10.4: close-session fails while a QR shows and leaves the pairing browser
running until its autoClose, a start on a running session returns early and keeps its first
webhook URL, and a route behind statusConnection acts after its 404. Each test turns on the
simulator options it relies on, so it holds whatever fidelity the simulator started with."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bcrypt
import requests

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, started_user, wait_for_status
from tests.waiting import wait_until
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.host.answers import HostUnauthorized
from wa_gateway.host.client import HostClient
from wa_gateway.sessions.accounts import session_name_for

REAL_PAIRING = {"orphan_pairing_browser": True, "answer_after_error": True}


def unhandled_rejections(simulator: Simulator) -> int:
    count: int = simulator.control("GET", "host").json()["unhandledRejections"]
    return count


def host_sessions(gateway: Gateway, simulator: Simulator) -> list[str]:
    secret = gateway.local_secrets.wpp_secret_key
    answer = requests.get(f"{simulator.url}/api/{secret}/show-all-sessions", timeout=10)
    names: list[str] = answer.json()["response"]
    return names


@contextmanager
def pairing_by_qr(
    gateway: Gateway, simulator: Simulator, label: str, **config: Any
) -> Iterator[tuple[str, str, str]]:
    """A new user's start, showing a QR code, on a host that pairs as 2.10.4 does (with
    ``config`` too) until the block ends: (access token, session name, the QR's text)."""
    with simulator.configured(**REAL_PAIRING, **config):
        _, token, session = started_user(gateway, label)
        assert session["status"] == "pairing" and session["qr"]
        yield token, session["name"], session["qr"]["raw"]


def test_a_cancelled_qr_link_can_be_linked_again_at_once_and_connects_on_scan(
    gateway: Gateway, simulator: Simulator
) -> None:
    with pairing_by_qr(gateway, simulator, "relink") as (token, name, _):
        rejections = unhandled_rejections(simulator)

        cancelled = gateway.call("POST", "disconnect", token)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["session"]["status"] == "disconnected"
        assert gateway.call("POST", "disconnect", token).status_code == 200  # twice: harmless
        # Nothing was closed: the pairing browser still runs, and no statusConnection route
        # was called for a session that was not connected.
        assert simulator.state(name)["status"] == "QRCODE"
        assert unhandled_rejections(simulator) == rejections

        again = gateway.call("POST", "start-session", token)
        assert again.status_code == 200, again.text
        relinked = again.json()["session"]
        host = simulator.state(name)
        assert relinked["status"] == "pairing" and relinked["qr"]["raw"] == host["urlcode"]

        simulator.control("POST", f"{name}/scan")
        scanned = time.monotonic()
        assert wait_for_status(gateway, token, "connected", within_s=5.0)["status"] == "connected"
        assert time.monotonic() - scanned < 5.0
        host = simulator.state(name)
        assert host["status"] == "CONNECTED" and host["live"] and not host["launchFailed"]
        assert host["orphans"] == [] and host["starts"] == 1
        assert host_sessions(gateway, simulator).count(name) == 1
        assert unhandled_rejections(simulator) == rejections


def test_after_the_cancelled_pairing_ends_a_new_link_starts_a_fresh_browser(
    gateway: Gateway, simulator: Simulator
) -> None:
    with pairing_by_qr(gateway, simulator, "afterclose", autoclose_ms=2000) as pairing:
        token, name, first_qr = pairing
        assert gateway.call("POST", "disconnect", token).status_code == 200
        wait_until(lambda: simulator.state(name)["status"], lambda s: s == "CLOSED", 5.0)

        again = gateway.call("POST", "start-session", token)
        assert again.status_code == 200, again.text
        assert simulator.state(name)["starts"] == 2
        fresh = wait_for_status(gateway, token, "pairing", with_qr=True)
        assert fresh["qr"]["raw"] != first_qr
        simulator.control("POST", f"{name}/scan")
        assert wait_for_status(gateway, token, "connected", within_s=5.0)["status"] == "connected"
        assert simulator.state(name)["status"] == "CONNECTED"


def test_a_logout_posted_to_the_held_attempts_url_after_an_early_start_disconnects(
    gateway: Gateway, simulator: Simulator
) -> None:
    with pairing_by_qr(gateway, simulator, "heldurl") as (token, name, _):
        gateway.call("POST", "disconnect", token)
        gateway.call("POST", "start-session", token)  # the host returns early: attempt 1 runs
        simulator.control("POST", f"{name}/scan")
        wait_for_status(gateway, token, "connected", within_s=5.0)

        # The host posts to the URL it was started with: the first attempt's.
        secret = gateway.local_secrets.verify_token
        query = f"?session={name}&attempt=1&verify={session_proof(secret, name, None, 1)}"
        logout = {"event": "logoutsession", "session": name, "connected": False}
        answer = requests.post(f"{gateway.fn('qr-webhook')}{query}", json=logout, timeout=10)
        assert answer.status_code == 200
        assert wait_for_status(gateway, token, "disconnected")["status"] == "disconnected"


def test_switching_method_while_the_host_still_pairs_by_qr_is_busy_until_it_ends(
    gateway: Gateway, simulator: Simulator
) -> None:
    with pairing_by_qr(gateway, simulator, "switch") as (token, name, _):
        by_code = {"method": "code", "phone": "5511988887777"}

        busy = gateway.call("POST", "start-session", token, json=by_code)
        assert_error(busy, 409, "session_busy")
        assert int(busy.headers["Retry-After"]) >= 1
        assert "minute" in busy.json()["error"]["message"]
        host = simulator.state(name)  # the pairing browser was left alone
        assert host["status"] == "QRCODE" and host["orphans"] == [] and host["starts"] == 1

        simulator.control("POST", f"{name}/expire")
        answer = gateway.call("POST", "start-session", token, json=by_code)
        assert answer.status_code == 200, answer.text
        assert answer.json()["session"]["status"] in ("starting", "pairing")
        wait_until(
            lambda: gateway.call("GET", "status", token).json()["session"],
            lambda s: s["status"] == "pairing" and bool(s["pairing_code"]),
            5.0,
        )
        simulator.control("POST", f"{name}/scan")
        assert wait_for_status(gateway, token, "connected", within_s=5.0)["status"] == "connected"


def test_a_token_minted_with_a_wrong_secret_is_refused_for_every_session_name(
    gateway: Gateway, simulator: Simulator
) -> None:
    user_id = gateway.new_user("bcrypt").id
    longest = session_name_for(user_id, "a" * 32)
    wrong = "not-the-host-secret-" + "x" * 40

    def forged(name: str) -> str:
        hashed = bcrypt.hashpw((name + wrong).encode()[:72], bcrypt.gensalt(4)).decode()
        return hashed.replace("/", "_").replace("+", "-")

    host = HostClient(simulator.url, gateway.local_secrets.wpp_secret_key)
    for name in (session_name_for(user_id), longest):
        try:
            host.status_session(name, forged(name))
        except HostUnauthorized:
            pass
        else:
            raise AssertionError(f"a forged token was accepted for {name}")
    # The names of old, 74 bytes with a 32-character label, left the secret out of bcrypt's
    # 72 bytes: any secret made a valid token.
    old_style = f"user_{user_id}_{'a' * 32}"
    assert host.status_session(old_style, forged(old_style)).status == "CLOSED"
