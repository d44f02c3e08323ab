"""Every product operation against a host that dies of misuse.

wppconnect-server 2.10.4 answers a route behind its ``statusConnection`` middleware for a
session without a live client with a 404, then runs the route's controller anyway; its second
answer throws inside an async handler. The wppconnect library's process-wide
``unhandledRejection`` handler only logs that (docs/host-conformance.md, behaviour 11), but a
host built without it, or run with ``--unhandled-rejections=strict``, exits, taking every
session on it down. This host exits: so every operation here (start, cancel while pairing,
disconnect twice, link again, refresh, send, a send after a logout the product never heard of,
the purge) must call the host only in ways that are safe, and the host must still be up, with
no unhandled rejection logged, at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from local.function_url import LambdaContext
from local.gateway import handlers_in_process
from tests.conftest import Gateway, HostWith, Simulator
from tests.e2e.flows import assert_error, wait_for_status
from tests.waiting import wait_until

# The webhooks a phone's logout sends: lost, as when qr-webhook was down at that moment.
LOGOUT_EVENTS = ["status-find", "logoutsession", "closesession"]


@pytest.fixture()
def fragile_host(host_with: HostWith) -> Iterator[tuple[Simulator, Gateway]]:
    """A simulator of this test alone that behaves like 2.10.4 and exits on a misuse, and a
    gateway in front of it."""
    config = {"exit_on_unhandled_rejection": True, "answer_after_error": True}
    with host_with("fragile", config) as both:
        yield both


def send(gateway: Gateway, token: str, phone: str) -> requests.Response:
    return gateway.call("POST", "send-message", token, json={"phone": phone, "message": "oi"})


def host_alive(simulator: Simulator) -> dict[str, Any]:
    assert simulator.host.running(), "the host exited"
    log: dict[str, Any] = simulator.control("GET", "host").json()
    return log


def test_no_product_operation_makes_the_host_act_on_a_session_it_does_not_hold(
    fragile_host: tuple[Simulator, Gateway], database: str
) -> None:
    simulator, gateway = fragile_host
    user = gateway.new_user("fragile")
    token = gateway.token_for(user)

    # Start, cancel while the QR shows, cancel again.
    pairing = gateway.call("POST", "start-session", token).json()["session"]
    name = pairing["name"]
    assert pairing["status"] == "pairing"
    for _ in range(2):
        cancelled = gateway.call("POST", "disconnect", token)
        assert cancelled.status_code == 200 and cancelled.json()["session"]["status"] == (
            "disconnected"
        )

    # Link again at once, scan, look with a refresh, send.
    assert gateway.call("POST", "start-session", token).json()["session"]["status"] == "pairing"
    simulator.control("POST", f"{name}/scan")
    wait_for_status(gateway, token, "connected", within_s=5.0)
    refreshed = gateway.call("GET", "status", token, params={"refresh": "true"})
    assert refreshed.json()["session"]["status"] == "connected"
    assert send(gateway, token, "5511987654321").status_code == 200

    # The phone logs out and the product hears nothing: a send is refused without sending,
    # a refresh and two disconnects put it right.
    with simulator.configured(webhook_ignore=LOGOUT_EVENTS):
        simulator.control("POST", f"{name}/unlink")
        wait_until(lambda: simulator.state(name).get("live"), lambda live: not live)
        assert_error(send(gateway, token, "5511987654321"), 409, "session_not_connected")
    refreshed = gateway.call("GET", "status", token, params={"refresh": "true"})
    assert refreshed.json()["session"]["status"] == "disconnected"
    for _ in range(2):
        assert gateway.call("POST", "disconnect", token).status_code == 200

    # The purge, for that session made stale.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_sessions set disconnected_at = now() - interval '30 days'"
            " where session_id = %s",
            (name,),
        )
    with handlers_in_process(gateway.env) as handlers:
        report = handlers["purge"](
            {"source": "schedule", "job": "purge"}, LambdaContext("purge", "r-fragile")
        )
    assert report["sessions_deleted"] >= 1 and report["host_errors"] == 0

    log = host_alive(simulator)
    assert log["unhandledRejections"] == 0, log["events"]
