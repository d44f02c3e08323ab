"""The host failing in every way it can, for every call the functions make to it: answering
500, answering garbage, a mix of both, too slow, or dying in the middle of a request.

Each failure is the contract's 502 ``host_error`` or 504 ``host_timeout``; nothing stored says
more than what happened (no session marked logged out while the host still has it, no message
marked sent that was not); the outbox stays consistent; and once the host is back, a retry
completes the operation, a send exactly once. (tests/e2e/test_messaging.py covers a send under
500s, a slow send and a host that hangs up; here is the matrix over the other calls and modes.)
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from tests.conftest import Gateway, GatewayWith, HostWith, Simulator
from tests.e2e.flows import (
    assert_error,
    connected_user,
    rows_of,
    wait_for_status,
)
from tests.faults.outbox import assert_outbox_consistent
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TO = "5511987654321"
LEASE_S = 1
# Short, yet longer than a busy machine's host takes to answer (each call checks a bcrypt token).
FAST_TIMEOUT_S = 2
SLOW_HOST_MS = 4000


@pytest.fixture(scope="module")
def fast(gateway_with: GatewayWith) -> Iterator[Gateway]:
    """Functions with short host timeouts and a short outbox lease, so failures are quick."""
    with gateway_with(
        "faults",
        WPP_READ_TIMEOUT=str(FAST_TIMEOUT_S),
        WPP_START_TIMEOUT=str(FAST_TIMEOUT_S),
        SEND_LEASE=f"{LEASE_S}s",
    ) as gateway:
        yield gateway


@contextmanager
def host_failing(simulator: Simulator, **faults: Any) -> Iterator[None]:
    with simulator.faulty(**faults):
        try:
            yield
        finally:
            simulator.control("POST", "faults", {"error_mode": "500", "routes": []})


def send(gateway: Gateway, token: str, key: str, message: str = "Olá!") -> requests.Response:
    return gateway.call(
        "POST",
        "send-message",
        token,
        json={"phone": TO, "message": message},
        headers={"Idempotency-Key": key},
    )


def sent_once(gateway: Gateway, token: str, key: str) -> requests.Response:
    """Retry with ``key`` until the send completes (a row in doubt waits out its lease)."""
    return wait_until(
        lambda: send(gateway, token, key),
        lambda a: a.status_code == 200 and a.json()["message"]["status"] != "queued",
        LEASE_S + 4,
    )


ERROR_MODES = ["500", "garbage", "mixed"]


@pytest.mark.parametrize("mode", ERROR_MODES)
def test_a_send_the_host_fails_is_a_host_error_and_a_retry_sends_it_once(
    fast: Gateway, simulator: Simulator, database: str, mode: str
) -> None:
    user, token, name = connected_user(fast, simulator, f"send{mode}")
    key = str(uuid.uuid4())
    with host_failing(simulator, error_rate=1.0, error_mode=mode, routes=["send-message"]):
        assert_error(send(fast, token, key), 502, "host_error")
        again = send(fast, token, key)  # a refused send is tried again; one in doubt is not
        if again.status_code == 200:
            assert again.json()["message"]["status"] == "queued"
        else:
            assert_error(again, 502, "host_error")
    [row] = assert_outbox_consistent(database, user.id, simulator, name)
    assert simulator.outbox(name) == [] and row["wpp_message_id"] is None
    # A 500 is a refusal (retry at once); a 200 with garbage may have been a send (retry
    # after the lease, unless a late ack says it went out).
    assert row["send_state"] in {"500": ("retryable",), "garbage": ("unknown",)}.get(
        mode, ("retryable", "unknown")
    )
    done = sent_once(fast, token, key)
    assert done.status_code == 200 and done.json()["message"]["status"] in ("sent", "delivered")
    assert send(fast, token, key).json()["message"]["id"] == str(row["id"])
    assert len(simulator.outbox(name)) == 1
    assert_outbox_consistent(database, user.id, simulator, name)


@pytest.mark.parametrize("mode", ERROR_MODES)
def test_starting_while_the_host_fails_leaves_nothing_half_done(
    fast: Gateway, simulator: Simulator, database: str, mode: str
) -> None:
    token = fast.token_for(fast.new_user(f"start{mode}"))
    with host_failing(simulator, error_rate=1.0, error_mode=mode):
        assert_error(fast.call("POST", "start-session", token), 502, "host_error")
        session = fast.call("GET", "status", token).json()["session"]
    assert session is None or session["status"] == "disconnected"
    started = fast.call("POST", "start-session", token)
    assert started.status_code == 200 and started.json()["session"]["status"] == "pairing"
    assert started.json()["session"]["qr"]["data_url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("mode", ERROR_MODES)
def test_refresh_and_disconnect_while_the_host_fails_change_nothing(
    fast: Gateway, simulator: Simulator, mode: str
) -> None:
    _, token, name = connected_user(fast, simulator, f"refresh{mode}")
    with host_failing(simulator, error_rate=1.0, error_mode=mode):
        refresh = fast.call("GET", "status", token, params={"refresh": "true"})
        assert_error(refresh, 502, "host_error")
        assert_error(fast.call("POST", "disconnect", token), 502, "host_error")
    # The host still has the session linked, so the stored row must still say so.
    assert fast.call("GET", "status", token).json()["session"]["status"] == "connected"
    assert simulator.state(name)["status"] == "CONNECTED"
    fresh = fast.call("GET", "status", token, params={"refresh": "true"})
    assert fresh.status_code == 200 and fresh.json()["session"]["status"] == "connected"
    gone = fast.call("POST", "disconnect", token)
    assert gone.status_code == 200 and gone.json()["session"]["status"] == "disconnected"


def test_a_slow_host_is_a_timeout_for_every_call_and_the_rows_follow_what_it_did(
    fast: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(fast, simulator, "slowall")
    newcomer = fast.token_for(fast.new_user("slowstart"))
    refresh = {"refresh": "true"}
    with host_failing(simulator, latency_ms=SLOW_HOST_MS):
        assert_error(fast.call("GET", "status", token, params=refresh), 504, "host_timeout")
        assert_error(fast.call("POST", "disconnect", token), 504, "host_timeout")
        assert_error(fast.call("POST", "start-session", newcomer), 504, "host_timeout")
    # The disconnect timed out on its first question (is the session connected?), so it asked
    # the host for nothing more: the host and the row both still say connected.
    assert simulator.state(name).get("status") == "CONNECTED"
    assert fast.call("GET", "status", token).json()["session"]["status"] == "connected"
    again = fast.call("POST", "start-session", newcomer)
    assert again.status_code == 200 and again.json()["session"]["status"] == "pairing"
    assert rows_of(database, user.id, "outbound") == []


# --- the host process dying mid-request, and coming back ------------------------------------


@pytest.fixture()
def own_host(host_with: HostWith) -> Iterator[tuple[Simulator, Gateway]]:
    """A simulator process of this test alone (it gets killed), and a gateway in front of it."""
    with host_with(
        "dying",
        WPP_READ_TIMEOUT="3",
        SEND_LEASE=f"{LEASE_S}s",
    ) as both:
        yield both


def test_the_host_dying_mid_send_and_coming_back_sends_exactly_once(
    own_host: tuple[Simulator, Gateway], database: str
) -> None:
    simulator, gateway = own_host
    user, token, name = connected_user(gateway, simulator, "dying")
    key = str(uuid.uuid4())
    # The host takes its time over the send ...
    simulator.control("POST", "faults", {"latency_ms": 1500, "routes": ["send-message"]})
    answers: list[requests.Response] = []
    sender = threading.Thread(target=lambda: answers.append(send(gateway, token, key)))
    sender.start()
    wait_until(simulator.in_flight, lambda n: n == 1, message="the host holding the send")
    simulator.host.stop()  # ... and dies before it answers
    sender.join(10)
    assert len(answers) == 1
    assert_error(answers[0], 502, "host_error")
    [row] = assert_outbox_consistent(database, user.id)
    assert row["status"] == "queued" and row["send_state"] == "unknown"

    simulator.host.start()  # the host restarts and restores its stored logins
    assert wait_for_status(gateway, token, "connected", 5)["status"] == "connected"
    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "CONNECTED", 5)
    done = sent_once(gateway, token, key)
    assert done.status_code == 200 and done.json()["message"]["id"] == str(row["id"])
    assert len(simulator.outbox(name)) == 1
    assert send(gateway, token, key).json()["message"]["id"] == str(row["id"])
    assert len(simulator.outbox(name)) == 1
    assert_outbox_consistent(database, user.id, simulator, name)
