"""The simulator's status routes answer like wppconnect-server's: the QR code, the connection
check, closing, logging out, restoring. Over real HTTP against the simulator running as its own
process."""

from __future__ import annotations

import time

from tests.integration.simulator.host_client import (
    CLOSED_OK,
    DISCONNECTED,
    PNG_SIGNATURE,
    Host,
    Receiver,
)

# --- 6. status routes -----------------------------------------------------------------------


def test_qrcode_session_serves_a_png_or_the_json_fallbacks(host: Host, name: str) -> None:
    none_yet = host.call("GET", name, "qrcode-session")
    assert none_yet.json() == {
        "status": None,
        "message": "Session not started. Please, use the /start-session route, "
        "for initialization your session",
    }
    host.start_with_qr(name)
    image = host.call("GET", name, "qrcode-session")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)
    host.call("POST", name, "close-session")
    after_close = host.call("GET", name, "qrcode-session").json()
    assert after_close == {"status": None, "message": "QRCode is not available..."}


def test_check_connection_is_always_200(host: Host, name: str) -> None:
    disconnected = host.call("GET", name, "check-connection-session")
    assert disconnected.status_code == 200
    assert disconnected.json() == {"status": False, "message": "Disconnected"}
    host.connect(name)
    connected = host.call("GET", name, "check-connection-session")
    assert connected.json() == {"status": True, "message": "Connected"}


def test_close_session_sends_closesession_and_leaves_status_null(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    answer = host.call("POST", name, "close-session", {})
    assert answer.status_code == 200 and answer.json() == {**CLOSED_OK, "session": name}
    hook = receiver.wait_for(name, "closesession")[0].body
    assert hook == {
        "event": "closesession",
        "session": name,
        "message": f"Session: {name} disconnected",
        "connected": False,
    }
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.call("POST", name, "close-session").status_code == 200


def test_close_session_is_500_if_never_started_or_while_a_qr_is_pending(
    host: Host, name: str
) -> None:
    failed = {"status": False, "message": "Error closing session", "error": {}}
    never = host.call("POST", name, "close-session", {})
    assert never.status_code == 500 and never.json() == {**failed, "session": ""}
    host.start_with_qr(name)
    pending = host.call("POST", name, "close-session")
    assert pending.status_code == 500
    assert host.status(name)["status"] == "CLOSED"
    assert host.sim("GET", name).json()["status"] is None


def test_logout_is_404_unless_connected_and_answers_after_500_ms(
    host: Host, name: str, receiver: Receiver
) -> None:
    not_connected = host.call("POST", name, "logout-session", {})
    assert not_connected.status_code == 404
    assert not_connected.json() == {**DISCONNECTED, "session": ""}
    host.connect(name, receiver)
    started = time.monotonic()
    answer = host.call("POST", name, "logout-session")
    assert time.monotonic() - started >= 0.5
    assert answer.status_code == 200 and answer.json() == CLOSED_OK  # no JSON body, no key
    hook = receiver.wait_for(name, "logoutsession")[0].body
    assert hook["message"] == f"Session: {name} logged out" and hook["connected"] is False
    assert host.status(name)["status"] == "CLOSED"
    assert host.sim("GET", name).json()["exists"] is False
    receiver.wait_for(name, "status-find", "browserClose")  # the old browser is gone
    host.wait_delivered(name)
    receiver.clear()
    host.call("POST", name, "start-session", {"webhook": receiver.url_for(name)})
    receiver.wait_for(name, "qrcode")  # the login is gone: a new QR, not a restore


def test_a_closed_session_restores_its_login_without_a_qr(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    host.call("POST", name, "close-session")
    host.wait_delivered(name)  # webhooks are not awaited: let them all land first
    receiver.clear()
    assert host.call("POST", name, "start-session", {}).json()["status"] == "CLOSED"
    restored = [("status-find", "isLogged"), ("status-find", "inChat")]
    receiver.wait_for_exactly(name, restored)
    assert host.emitted(name)[-2:] == restored
    assert host.status(name) == {
        "status": "CONNECTED",
        "qrcode": None,
        "version": "2.10.4",
    }


def test_unlinking_the_phone_sends_disconnected_mobile_and_removes_the_entry(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.unlink_on_the_phone(name, receiver, until="disconnectedMobile")
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("GET", name).json()["savedLogin"] is None
    assert host.sim("POST", f"{name}/unlink").status_code == 409
