"""Steps the end-to-end tests share: waiting for a state, checking an error, linking a user,
reading rows."""

from __future__ import annotations

from typing import Any

import psycopg
import requests

from local import devdb
from tests.conftest import Gateway, Simulator
from tests.waiting import PATIENCE_S, wait_until
from wa_gateway.host.client import HostClient


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


def started_user(gateway: Gateway, label: str) -> tuple[devdb.DevUser, str, dict[str, Any]]:
    """A new user who has started linking: (user, access token, the session start answered)."""
    user = gateway.new_user(label)
    token = gateway.token_for(user)
    started = gateway.call("POST", "start-session", token)
    assert started.status_code == 200, started.text
    return user, token, started.json()["session"]


def connected_user(
    gateway: Gateway, simulator: Simulator, label: str = "linked"
) -> tuple[devdb.DevUser, str, str]:
    """A new user whose WhatsApp is linked: (user, access token, session name). The phone scans
    once the host shows the QR code: a start may answer before the host has drawn it."""
    user, token, started = started_user(gateway, label)
    name = started["name"]
    wait_until(
        lambda: simulator.state(name).get("status"),
        lambda s: s == "QRCODE",
        PATIENCE_S,
        message=f"the host showing {name}'s QR code",
    )
    simulator.control("POST", f"{name}/scan")
    assert wait_for_status(gateway, token, "connected")["status"] == "connected"
    return user, token, name


def sent_text(
    gateway: Gateway, token: str, phone: str, text: str, **fields: Any
) -> requests.Response:
    """send-message's answer (a 200) to a text to ``phone``, with more of the body's
    ``fields`` (such as an ``account``)."""
    sent = gateway.call(
        "POST", "send-message", token, json={"phone": phone, "message": text, **fields}
    )
    assert sent.status_code == 200, sent.text
    return sent


def closed_on_the_host(gateway: Gateway, simulator: Simulator, name: str) -> None:
    """Someone else closes the session ``name`` on the host (the gateway never closes one);
    its saved login stays."""
    other = HostClient(simulator.url, gateway.local_secrets.wpp_secret_key)
    assert other.close_session(name, other.generate_token(name)) is True


def dict_rows(database: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The rows ``sql`` selects, each a dict by column name."""
    with psycopg.connect(database) as conn:
        cursor = conn.execute(sql, params)
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def one_row(database: str, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
    """The first row ``sql`` selects as a dict by column name, or ``{}`` when there is none."""
    rows = dict_rows(database, sql, params)
    return rows[0] if rows else {}


def one_value(database: str, sql: str, params: tuple[Any, ...]) -> Any:
    """The first column of the one row ``sql`` selects."""
    with psycopg.connect(database) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def rows_of(database: str, user_id: str, direction: str) -> list[dict[str, Any]]:
    """The user's message rows in one direction, oldest first."""
    return dict_rows(
        database,
        "select * from whatsapp_messages where user_id = %s and direction = %s order by created_at",
        (user_id, direction),
    )
