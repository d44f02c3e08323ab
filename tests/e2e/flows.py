"""Steps the end-to-end tests share: waiting for a state, checking an error, linking a user."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from local import devdb
from tests.conftest import Gateway, Simulator


def wait_until[T](probe: Callable[[], T], done: Callable[[T], bool], within_s: float = 2.0) -> T:
    """Call ``probe`` until ``done`` says yes or time runs out; return the last value."""
    deadline = time.monotonic() + within_s
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_for_status(
    gateway: Gateway, token: str, wanted: str, within_s: float = 1.0, *, with_qr: bool = False
) -> Any:
    return wait_until(
        lambda: gateway.call("GET", "status", token).json()["session"],
        lambda s: bool(s) and s["status"] == wanted and (bool(s["qr"]) or not with_qr),
        within_s,
    )


def assert_error(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in answer.text


def connected_user(
    gateway: Gateway, simulator: Simulator, label: str = "linked"
) -> tuple[devdb.DevUser, str, str]:
    """A new user whose WhatsApp is linked: (user, access token, session name)."""
    user = gateway.new_user(label)
    token = gateway.token_for(user)
    session = gateway.call("POST", "start-session", token).json()["session"]
    simulator.control("POST", f"{session['name']}/scan")
    assert wait_for_status(gateway, token, "connected")["status"] == "connected"
    return user, token, session["name"]
