"""The simulator starts sessions like wppconnect-server: start-session's answers, and the events
each way of linking sends. Over real HTTP against the simulator running as its own process."""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from typing import Any

from tests.integration.simulator.host_client import (
    PNG_SIGNATURE,
    Host,
    Receiver,
)
from tests.waiting import wait_until

# --- 4. start-session -----------------------------------------------------------------------


def test_first_start_answers_closed_then_initializing_then_qrcode(host: Host, name: str) -> None:
    host.configure(init_delay_ms=300)
    first = host.call("POST", name, "start-session", {})
    assert first.status_code == 200
    assert first.json() == {"status": "CLOSED", "qrcode": None, "session": ""}
    second = host.call("POST", name, "start-session", {}).json()
    assert second == {
        "status": "INITIALIZING",
        "qrcode": None,
        "version": "2.10.4",
        "session": name,
    }
    status = wait_until(lambda: (s := host.status(name))["status"] == "QRCODE" and s)
    assert status["qrcode"].startswith("data:image/png;base64,")
    assert status["urlcode"].startswith("2@") and status["version"] == "2.10.4"
    png = base64.b64decode(status["qrcode"].split(",", 1)[1])
    assert png.startswith(PNG_SIGNATURE)


def test_a_start_while_pending_restarts_nothing(host: Host, name: str) -> None:
    pending = host.start_with_qr(name)
    again = host.call("POST", name, "start-session", {}).json()
    assert again["status"] == "QRCODE" and again["urlcode"] == pending["urlcode"]
    state = host.sim("GET", name).json()
    assert state["start_calls"] == 2 and state["starts"] == 1


def test_the_start_body_is_stored_as_config(host: Host, name: str, receiver: Receiver) -> None:
    body = {"webhook": receiver.url_for(name), "deviceName": "Loja"}
    host.call("POST", name, "start-session", body)
    assert host.sim("GET", name).json()["storedConfig"] == body


def test_wait_qr_code_holds_the_reply_until_the_first_qr(host: Host, name: str) -> None:
    host.configure(init_delay_ms=200)
    started = time.monotonic()
    answer = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert time.monotonic() - started >= 0.15
    body = answer.json()
    assert set(body) == {"status", "qrcode", "urlcode", "session"}
    assert body["status"] == "qrcode" and body["session"] == name
    assert not body["qrcode"].startswith("data:")
    assert base64.b64decode(body["qrcode"]).startswith(PNG_SIGNATURE)
    assert body["urlcode"] == host.status(name)["urlcode"]


def test_wait_qr_code_with_a_phone_answers_the_pairing_code(
    host: Host, name: str, receiver: Receiver
) -> None:
    body = {"waitQrCode": True, "phone": "5511988887777", "webhook": receiver.url_for(name)}
    answer = host.call("POST", name, "start-session", body).json()
    assert set(answer) == {"status", "phone", "phoneCode", "session"}
    assert answer["status"] == "phoneCode" and answer["phone"] == "5511988887777"
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", answer["phoneCode"])
    assert host.status(name)["status"] == "PHONECODE"
    hook = receiver.wait_for(name, "phoneCode")[0].body
    assert hook["phoneCode"] == answer["phoneCode"] and hook["phone"] == "5511988887777"
    scanned = host.sim("POST", f"{name}/scan", {"wait": True}).json()
    assert scanned["status"] == "CONNECTED" and scanned["wid"] == "5511988887777@c.us"


# --- 5. event sequences ---------------------------------------------------------------------


def test_a_scan_sends_the_connect_sequence_in_order(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver)
    qr_hook = receiver.wait_for(name, "qrcode")[0]
    assert not qr_hook.body["qrcode"].startswith("data:")
    assert "attempt" not in qr_hook.body and qr_hook.body["session"] == name
    assert host.sim("POST", f"{name}/scan").status_code == 200
    sequence = [
        ("status-find", "notLogged"),
        ("qrcode", None),
        ("status-find", "qrReadSuccess"),
        ("status-find", "inChat"),
    ]
    receiver.wait_for_exactly(name, sequence)
    assert host.emitted(name) == sequence
    status = host.status(name)
    assert status["status"] == "CONNECTED"
    # urlcode is never cleared: a connected session still shows its old QR code
    assert status["urlcode"] == qr_hook.body["urlcode"]
    assert status["qrcode"].startswith("data:image/png;base64,")


def test_qr_refreshes_on_demand_and_on_an_interval(
    host: Host, name: str, receiver: Receiver
) -> None:
    first = host.start_with_qr(name, receiver)["urlcode"]
    refreshed = host.sim("POST", f"{name}/refresh-qr").json()["urlcode"]
    assert refreshed != first and host.status(name)["urlcode"] == refreshed
    host.configure(qr_refresh_ms=100)
    other = f"{name}b"
    host.start_with_qr(other, receiver)
    assert len(receiver.wait_for(other, "qrcode", count=3)) >= 3


def test_duplicate_mode_delivers_every_event_twice(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, delivery_mode="duplicate")
    receiver.wait_for(name, "status-find", "inChat", count=2)
    assert Counter(receiver.events(name)) == {
        ("status-find", "notLogged"): 2,
        ("qrcode", None): 2,
        ("status-find", "qrReadSuccess"): 2,
        ("status-find", "inChat"): 2,
    }


def test_shuffle_mode_delivers_the_same_events(host: Host, name: str, receiver: Receiver) -> None:
    host.connect(name, receiver, delivery_mode="shuffle+duplicate", shuffle_window_ms=100)
    expected: list[tuple[str, Any]] = [
        ("status-find", "notLogged"),
        ("qrcode", None),
        ("status-find", "qrReadSuccess"),
        ("status-find", "inChat"),
    ]
    # Shuffled, the last to arrive may be any of them (not the second inChat): wait for all.
    wait_until(
        lambda: Counter(receiver.events(name)),
        lambda got: got == Counter(2 * expected),
        message="each event twice",
    )


def test_an_unscanned_qr_autocloses_with_browser_close_only(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(autoclose_ms=300)
    urlcode = host.start_with_qr(name, receiver)["urlcode"]
    receiver.wait_for(name, "status-find", "browserClose")
    assert ("status-find", "autocloseCalled") not in receiver.events(name)
    status = host.status(name)
    assert status["status"] == "CLOSED" and status["urlcode"] == urlcode
    assert host.call("POST", name, "start-session", {}).json()["status"] == "CLOSED"
    assert wait_until(lambda: host.status(name)["urlcode"] != urlcode)


def test_expire_now_sends_autoclose_called_when_that_bug_is_off(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver, bug_lost_autoclose=False)
    assert host.sim("POST", f"{name}/expire").status_code == 200
    receiver.wait_for(name, "status-find", "browserClose")
    receiver.wait_for(name, "status-find", "autocloseCalled")
    assert host.emitted(name)[-2:] == [
        ("status-find", "autocloseCalled"),
        ("status-find", "browserClose"),
    ]
    assert host.sim("POST", f"{name}/expire").status_code == 409
