"""Sessions as the real host has them in time: a login that is not usable yet, a host restart,
a relink right after a logout, a start whose browser never launched, pairing codes that
change. Against the simulator's real behaviours (wppconnect-server 2.10.4 with its library
2.2.7); each test sets the timings it relies on, long enough not to race."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from local.function_url import LambdaContext
from local.gateway import handlers_in_process
from tests.conftest import Gateway, GatewayWith, Handler, HostWith, Simulator
from tests.e2e.flows import (
    assert_error,
    closed_on_the_host,
    connected_user,
    rows_of,
    wait_for_status,
)
from tests.e2e.test_scheduled_waits import a_minute_later, a_pass, due_now, row
from tests.faults.test_reconcile import run_pass as run_reconcile
from tests.integration.test_round_trips import event
from tests.waiting import wait_until
from wa_gateway import runtime

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TO = "5511987654321"


def send(gateway: Gateway, token: str, text: str = "oi") -> Any:
    return gateway.call("POST", "send-message", token, json={"phone": TO, "message": text})


def session_of(gateway: Gateway, token: str) -> dict[str, Any]:
    answer: dict[str, Any] = gateway.call("GET", "status", token).json()["session"]
    return answer


def invoke(handler: Handler, request: dict[str, Any]) -> tuple[int, Any]:
    """A function called in this process, as a warm Lambda container: (status, JSON body)."""
    result = handler(request, LambdaContext("send-message", request["requestContext"]["requestId"]))
    return result["statusCode"], json.loads(result["body"])


def unhandled_rejections(simulator: Simulator) -> int:
    count: int = simulator.control("GET", "host").json()["unhandledRejections"]
    return count


def assert_starting_retry(answer: Any) -> None:
    """A send to a session the host is still bringing up: retryable, nothing sent."""
    assert_error(answer, 503, "session_starting")
    assert int(answer.headers["Retry-After"]) >= 1


def syncing(session: dict[str, Any]) -> bool:
    return session["status"] == "starting" and session["status_reason"] == "syncing"


# --- 1. logged in is not usable yet --------------------------------------------------------


def test_a_restored_login_is_syncing_until_the_host_has_it_and_a_send_meanwhile_is_retried(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "restored")
    # The session is closed on the host by someone else: its saved login stays, so the next
    # start restores it (isLogged), and the library needs a while before the host has it.
    closed_on_the_host(gateway, simulator, name)
    wait_for_status(gateway, token, "disconnected", 5)
    rejections = unhandled_rejections(simulator)
    with simulator.configured(connect_delay_ms=3000):
        assert gateway.call("POST", "start-session", token).status_code == 200
        seen = wait_until(lambda: session_of(gateway, token), syncing, 5, message="syncing")
        assert seen["qr"] is None and seen["pairing_code"] is None
        assert simulator.state(name)["live"] is False

        assert_starting_retry(send(gateway, token, "too soon"))
        assert rows_of(database, user.id, "outbound") == []  # withdrawn, not failed
        assert syncing(session_of(gateway, token))  # nothing marked it lost
        # start-session changes nothing while the host finishes the login.
        again = gateway.call("POST", "start-session", token).json()["session"]
        assert syncing(again) and simulator.state(name)["starts"] == 2

        assert wait_for_status(gateway, token, "connected", 6)["status"] == "connected"
    sent = send(gateway, token, "now")
    assert sent.status_code == 200, sent.text
    assert [r["status"] for r in rows_of(database, user.id, "outbound")] == ["sent"]
    assert unhandled_rejections(simulator) == rejections  # no route behind the middleware


def test_a_scanned_qr_is_syncing_without_its_qr_until_in_chat(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user = gateway.new_user("scanned")
    token = gateway.token_for(user)
    with simulator.configured(connect_delay_ms=3000):
        name = gateway.call("POST", "start-session", token).json()["session"]["name"]
        wait_for_status(gateway, token, "pairing", 5, with_qr=True)
        simulator.control("POST", f"{name}/scan")
        seen = wait_until(lambda: session_of(gateway, token), syncing, 5, message="syncing")
        assert seen["qr"] is None  # the used QR is not shown again
        assert simulator.state(name)["status"] == "QRCODE"  # the host's placeholder keeps it
        assert_starting_retry(send(gateway, token))
        assert rows_of(database, user.id, "outbound") == []
        # A status refresh (a reconcile of this session) leaves a login being finished alone.
        refreshed = gateway.call("GET", "status", token, params={"refresh": "true"})
        assert syncing(refreshed.json()["session"])
        assert wait_for_status(gateway, token, "connected", 6)["status"] == "connected"


@contextmanager
def syncing_again(gateway: Gateway, simulator: Simulator, token: str, name: str) -> Iterator[str]:
    """A connected session whose sent message (its id yielded) is kept, then the host loses
    the client unseen and a start restores the login: inside, it is syncing for 3 s."""
    first = send(gateway, token, "sent before")
    assert first.status_code == 200, first.text
    closed_on_the_host(gateway, simulator, name)
    wait_for_status(gateway, token, "disconnected", 5)
    with simulator.configured(connect_delay_ms=3000):
        assert gateway.call("POST", "start-session", token).status_code == 200
        wait_until(lambda: session_of(gateway, token), syncing, 5, message="syncing")
        yield first.json()["message"]["id"]


def test_a_reply_while_syncing_is_retried_like_any_send_and_quotes_once_the_host_has_it(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "syncreply")
    with syncing_again(gateway, simulator, token, name) as quoted_id:
        reply = {"phone": TO, "message": "the reply", "reply_to": quoted_id}
        assert_starting_retry(gateway.call("POST", "send-message", token, json=reply))
        assert [r["body"] for r in rows_of(database, user.id, "outbound")] == ["sent before"]
        assert wait_for_status(gateway, token, "connected", 6)["status"] == "connected"
    sent = gateway.call("POST", "send-message", token, json=reply)
    assert sent.status_code == 200, sent.text
    assert sent.json()["message"]["reply_to"] == quoted_id
    [_, out] = simulator.outbox(name)
    assert out["id"] == sent.json()["message"]["wpp_message_id"]


def test_an_action_while_syncing_is_retried_like_a_send_and_goes_once_the_host_has_it(
    gateway: Gateway, simulator: Simulator
) -> None:
    """React, edit, delete and read need the session's client on the host, as a send does:
    during the login's sync they are a retry (503), not a session lost (409)."""
    _, token, name = connected_user(gateway, simulator, "syncreact")
    with syncing_again(gateway, simulator, token, name) as message_id:
        actions_before = simulator.control("GET", f"{name}/actions").json()["actions"]
        react = {"id": message_id, "emoji": "👍"}
        to_react = gateway.call("POST", "send-message", token, path="/react", json=react)
        assert_starting_retry(to_react)
        read = {"phone": TO}
        assert_starting_retry(gateway.call("POST", "send-message", token, path="/read", json=read))
        assert simulator.control("GET", f"{name}/actions").json()["actions"] == actions_before
        assert wait_for_status(gateway, token, "connected", 6)["status"] == "connected"
    reacted = gateway.call("POST", "send-message", token, path="/react", json=react)
    assert reacted.status_code == 200, reacted.text


# --- 2. a host restart ---------------------------------------------------------------------


Restart = Callable[[dict[str, Any]], None]


@pytest.fixture()
def restartable_host(host_with: HostWith) -> Iterator[tuple[Simulator, Gateway, Restart]]:
    """A simulator and a gateway of this test's own; ``restart(config)`` stops the simulator
    and starts it again on the same port and data with ``config`` from its boot (its
    startAllSession restores)."""
    with host_with("restart") as both:
        simulator, gateway = both

        def restart(config: dict[str, Any]) -> None:
            simulator.host.stop()
            simulator.host.args = ("--config", json.dumps(config))
            simulator.host.start()

        yield simulator, gateway, restart


def test_a_host_restart_brings_ten_sessions_back_connected_and_fails_no_message(
    restartable_host: tuple[Simulator, Gateway, Restart], database: str
) -> None:
    simulator, gateway, restart = restartable_host
    users = [connected_user(gateway, simulator, f"restart{i}") for i in range(10)]
    for _, token, _ in users:
        assert send(gateway, token, "before").status_code == 200

    with handlers_in_process(gateway.env) as loaded:  # the reconcile function, warm
        # Each session's browser takes 3 s to launch and load, then the library 3 s more.
        restore_s = 6.0
        restart({"init_delay_ms": 3000, "connect_delay_ms": 3000})
        restarted = time.monotonic()
        first_user, first_token, first_name = users[0]
        wait_until(lambda: simulator.state(first_name).get("status"), lambda s: s == "INITIALIZING")
        assert_starting_retry(send(gateway, first_token, "during the restore"))

        # A pass during the restore shows each session as it is: being brought up again.
        run_reconcile(loaded["reconcile"])
        during = [session_of(gateway, token) for _, token, _ in users]
        assert all(s["status"] in ("starting", "connected") for s in during), during
        assert any(syncing(s) for s in during), during

        time.sleep(max(0.0, restore_s + 1.0 - (time.monotonic() - restarted)))
        run_reconcile(loaded["reconcile"])  # one pass once the restore time is over
    assert [session_of(gateway, token)["status"] for _, token, _ in users] == ["connected"] * 10

    for _, token, _ in users:
        assert send(gateway, token, "after").status_code == 200
    with psycopg.connect(database) as conn:
        failed = conn.execute(
            "select count(*) from whatsapp_messages m join whatsapp_sessions s"
            " on s.id = m.whatsapp_session_id where s.session_id = any(%s)"
            " and m.status = 'failed'",
            ([name for _, _, name in users],),
        ).fetchone()
    assert failed == (0,)
    assert len(rows_of(database, first_user.id, "outbound")) == 2  # before, after


# --- 3. relink right after a logout --------------------------------------------------------


def test_disconnect_then_link_again_at_once_shows_a_qr_within_5_s_on_one_browser(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "relink")
    with simulator.configured(logout_close_ms=1500):
        out = gateway.call("POST", "disconnect", token)
        assert out.status_code == 200 and out.json()["session"]["status"] == "disconnected"
        asked = time.monotonic()
        again = gateway.call("POST", "start-session", token)
        assert again.status_code == 200, again.text
        session = wait_for_status(gateway, token, "pairing", 5, with_qr=True)
        assert time.monotonic() - asked < 5.0
        host = simulator.state(name)
        assert host["browsers"] == 1 and not host["launchFailed"]
        assert session["qr"]["raw"] == host["urlcode"]
        simulator.control("POST", f"{name}/scan")
        assert wait_for_status(gateway, token, "connected", 5)["status"] == "connected"
        assert simulator.state(name)["browsers"] == 1


def test_a_start_right_after_a_logout_goes_on_once_the_old_browser_has_closed(
    gateway: Gateway, simulator: Simulator
) -> None:
    """The start waits for the old browser's browserClose, which reaches the gateway as a
    webhook while the start is waiting: it goes on then, not at the 3 s bound. Each function
    runs in a container of its own, so the waiting start holds up no webhook."""
    _, token, name = connected_user(gateway, simulator, "relinkwait")
    with simulator.configured(logout_close_ms=1500):  # the server's own: 1 s after our answer
        assert gateway.call("POST", "disconnect", token).status_code == 200
        asked = time.monotonic()
        again = gateway.call("POST", "start-session", token)
        waited = time.monotonic() - asked
        assert again.status_code == 200, again.text
        assert simulator.state(name)["browsers"] == 1  # the old one closed before the new one
        assert 0.5 < waited < 2.2, waited


# --- 4. a browser that fails to launch -----------------------------------------------------

STUCK_AFTER_S = 2


@pytest.fixture(scope="module")
def stuck_gateway(gateway_with: GatewayWith) -> Iterator[Gateway]:
    """Functions that hold a start for 1 s and call a start stuck after 2 s."""
    overrides = {"WPP_START_TIMEOUT": "1", "START_STUCK_AFTER": f"{STUCK_AFTER_S}s"}
    with gateway_with("stuck", **overrides) as started:
        yield started


def start_that_never_launches(
    gateway: Gateway, simulator: Simulator, label: str
) -> tuple[str, str]:
    """A new user's start whose browser fails to launch: (access token, session name)."""
    token = gateway.token_for(gateway.new_user(label))
    simulator.control("POST", "config", {"launch_fail_next": 1})
    first = gateway.call("POST", "start-session", token)
    assert first.status_code == 200, first.text
    assert first.json()["session"]["status"] == "starting"
    name: str = first.json()["session"]["name"]
    assert simulator.state(name)["launchFailed"] is True
    return token, name


def test_a_start_whose_browser_never_launched_is_closed_and_started_again(
    stuck_gateway: Gateway, simulator: Simulator
) -> None:
    gateway = stuck_gateway
    token, name = start_that_never_launches(gateway, simulator, "stuck")

    # Not yet stalled: a start returns early from the host and changes nothing.
    assert gateway.call("POST", "start-session", token).json()["session"]["status"] == "starting"
    time.sleep(STUCK_AFTER_S + 0.5)
    recovered = gateway.call("POST", "start-session", token)
    assert recovered.status_code == 200, recovered.text
    session = wait_for_status(gateway, token, "pairing", 5, with_qr=True)
    host = simulator.state(name)
    assert host["browsers"] == 1 and not host["launchFailed"] and host["starts"] == 2
    simulator.control("POST", f"{name}/scan")
    assert wait_for_status(gateway, token, "connected", 5)["status"] == "connected"
    assert session["status"] == "pairing"


def test_reconcile_ends_a_stuck_start_so_the_page_offers_to_link_again(
    stuck_gateway: Gateway, simulator: Simulator
) -> None:
    gateway = stuck_gateway
    token, name = start_that_never_launches(gateway, simulator, "stuckpass")
    time.sleep(STUCK_AFTER_S + 0.5)
    with handlers_in_process(gateway.env) as loaded:
        run_reconcile(loaded["reconcile"])
    ended = session_of(gateway, token)
    assert (ended["status"], ended["status_reason"]) == ("disconnected", "start_failed")

    assert gateway.call("POST", "start-session", token).status_code == 200
    wait_for_status(gateway, token, "pairing", 5, with_qr=True)
    assert simulator.state(name)["browsers"] == 1


# --- 5. pairing codes change ---------------------------------------------------------------


def test_the_pairing_code_follows_the_host_as_it_changes(
    gateway: Gateway, simulator: Simulator
) -> None:
    token = gateway.token_for(gateway.new_user("codes"))
    with simulator.configured(qr_refresh_ms=700):
        body = {"method": "code", "phone": "5511912345678"}
        first = gateway.call("POST", "start-session", token, json=body).json()["session"]
        name = first["name"]
        code = wait_until(
            lambda: session_of(gateway, token)["pairing_code"], bool, 5, message="a code"
        )
        later = wait_until(
            lambda: session_of(gateway, token)["pairing_code"],
            lambda c: bool(c) and c != code,
            5,
            message="a new code",
        )
        assert simulator.state(name)["status"] == "PHONECODE" and later != code
        # start-session answers the current code, not the first one, without a new browser.
        current = gateway.call("POST", "start-session", token, json=body).json()["session"]
        assert current["pairing_code"] not in (None, code)
        assert simulator.state(name)["starts"] == 1


# --- 6. the send path's connection check ---------------------------------------------------


def test_a_warm_send_asks_whether_the_session_is_connected_while_it_writes_the_outbox(
    gateway: Gateway, simulator: Simulator, handlers: dict[str, Handler]
) -> None:
    _, token, name = connected_user(gateway, simulator, "early")
    request = {"phone": TO, "message": "first"}
    assert invoke(handlers["send-message"], event("POST", token=token, body=request))[0] == 200

    # The next send of this session in the same container: the host's answer to the check is
    # still on its way (held 1 s) when the outbox row is written.
    store = runtime.store()
    write = store.transport.rpc
    in_flight_at_write: list[bool] = []

    def rpc(function: str, *args: Any, **kwargs: Any) -> Any:
        if function == "gateway_begin_send":
            waited = time.monotonic() + 0.8
            while simulator.in_flight() < 1 and time.monotonic() < waited:
                time.sleep(0.02)
            in_flight_at_write.append(simulator.in_flight() == 1)
        return write(function, *args, **kwargs)

    store.transport.rpc = rpc
    try:
        with simulator.faulty(latency_ms=1000, routes=["check-connection-session"]):
            status, body = invoke(
                handlers["send-message"],
                event("POST", token=token, body={**request, "message": "x"}),
            )
    finally:
        store.transport.rpc = write
    assert status == 200 and body["message"]["status"] == "sent"
    assert in_flight_at_write == [True]
    assert [m["body"] for m in simulator.outbox(name)] == ["first", "x"]


def test_a_scheduled_message_due_during_a_restore_waits_and_goes_once_after_it(
    restartable_host: tuple[Simulator, Gateway, Restart], database: str
) -> None:
    """A send the host cannot make yet is withdrawn when a caller is there to retry it; a
    scheduled message has none, so it waits for a later pass instead of being deleted."""
    simulator, gateway, restart = restartable_host
    _, _, name = connected_user(gateway, simulator, "restore-scheduled")
    message_id = due_now(database, name, "due during the restore")

    restart({"init_delay_ms": 3000, "connect_delay_ms": 1000})
    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "INITIALIZING")
    report = a_pass(gateway).run()
    assert report.sent == 0 and report.errors == {"session_starting": 1}
    waiting = row(database, message_id)  # still there, waiting for its next pass
    assert (waiting["status"], waiting["error_code"]) == ("scheduled", "session_not_connected")

    wait_until(lambda: simulator.state(name).get("status"), lambda s: s == "CONNECTED", 10)
    a_minute_later(database, message_id)
    assert a_pass(gateway).run().sent == 1
    assert [m["body"] for m in simulator.outbox(name)] == ["due during the restore"]
