"""Steps the end-to-end tests share: waiting for a state, checking an error, linking a user,
reading rows, starting a host of a test's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from local import devdb
from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway, own_simulator
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


@contextmanager
def simulator_and_gateway(
    database: str,
    local_secrets: LocalSecrets,
    output_dir: Path,
    label: str,
    config: dict[str, Any] | None = None,
    **overrides: str,
) -> Iterator[tuple[Simulator, Gateway]]:
    """A simulator of the calling test alone (with ``config`` from its boot) and a gateway in
    front of it (with ``overrides``), logging to ``simulator-<label>.log`` and
    ``gateway-<label>.log``."""
    with (
        own_simulator(
            local_secrets.wpp_secret_key, output_dir / f"simulator-{label}.log", config=config
        ) as simulator,
        own_gateway(
            database, simulator, local_secrets, output_dir / f"gateway-{label}.log", **overrides
        ) as gateway,
    ):
        yield simulator, gateway
