"""Steps the end-to-end tests share: waiting for a state, checking an error, linking a user."""

from __future__ import annotations

from typing import Any

import psycopg
import requests

from local import devdb
from tests.conftest import Gateway, Simulator
from tests.waiting import PATIENCE_S, wait_until


def wait_for_status(
    gateway: Gateway,
    token: str,
    wanted: str,
    within_s: float = PATIENCE_S,
    *,
    with_qr: bool = False,
) -> Any:
    return wait_until(
        lambda: gateway.call("GET", "status", token).json()["session"],
        lambda s: bool(s) and s["status"] == wanted and (bool(s["qr"]) or not with_qr),
        within_s,
        message=f"status {wanted!r}" + (" with a QR" if with_qr else ""),
    )


def assert_error(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in answer.text


def connected_user(
    gateway: Gateway, simulator: Simulator, label: str = "linked"
) -> tuple[devdb.DevUser, str, str]:
    """A new user whose WhatsApp is linked: (user, access token, session name). The phone scans
    once the host shows the QR code: a start may answer before the host has drawn it."""
    user = gateway.new_user(label)
    token = gateway.token_for(user)
    started = gateway.call("POST", "start-session", token)
    assert started.status_code == 200, started.text
    name = started.json()["session"]["name"]
    wait_until(
        lambda: simulator.state(name).get("status"),
        lambda s: s == "QRCODE",
        PATIENCE_S,
        message=f"the host showing {name}'s QR code",
    )
    simulator.control("POST", f"{name}/scan")
    assert wait_for_status(gateway, token, "connected")["status"] == "connected"
    return user, token, name


def rows_of(database: str, user_id: str, direction: str) -> list[dict[str, Any]]:
    """The user's message rows in one direction, oldest first."""
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select * from whatsapp_messages where user_id = %s and direction = %s"
            " order by created_at",
            (user_id, direction),
        )
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
