"""Host answers and webhook events, in our statuses."""

from __future__ import annotations

import base64

import pytest

from wa_gateway.host.answers import HostState
from wa_gateway.sessions.transitions import from_event, from_host_answer

NAME = "user_x"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("notLogged", "pairing"),
        ("inChat", "connected"),
        ("browserClose", "disconnected"),
        ("autocloseCalled", "disconnected"),
        ("disconnectedMobile", "disconnected"),
        ("phoneNotConnected", "disconnected"),
        ("serverClose", "disconnected"),
    ],
)
def test_status_find_values_map_to_our_statuses(status: str, expected: str) -> None:
    update = from_event(NAME, {"event": "status-find", "status": status})
    assert update is not None and update.status == expected
    assert update.reason == (status if expected == "disconnected" else None)


@pytest.mark.parametrize("status", ["qrReadSuccess", "isLogged"])
def test_a_login_is_starting_and_syncing_until_the_host_has_its_client(status: str) -> None:
    # The library's create() resolves (and the host can use the session) only after it.
    update = from_event(NAME, {"event": "status-find", "status": status})
    assert update is not None and (update.status, update.reason) == ("starting", "syncing")


def test_a_qrcode_event_carries_the_raw_string_and_the_host_png() -> None:
    png = base64.b64encode(PNG_SIGNATURE + b"rest of the image").decode()
    update = from_event(NAME, {"event": "qrcode", "qrcode": png, "urlcode": "2@abc"})
    assert update is not None
    assert (update.status, update.qr_code) == ("pairing", "2@abc")
    assert update.qr_image == "data:image/png;base64," + png


def test_a_qrcode_event_whose_image_is_no_png_carries_only_the_raw_string() -> None:
    update = from_event(NAME, {"event": "qrcode", "qrcode": "PHN2Zz4=", "urlcode": "2@abc"})
    assert update is not None
    assert (update.status, update.qr_code, update.qr_image) == ("pairing", "2@abc", None)


def test_a_held_start_answer_carries_the_host_png() -> None:
    png = base64.b64encode(PNG_SIGNATURE + b"x").decode()
    state = HostState("qrcode", urlcode="2@a", qrcode=png)
    update = from_host_answer(NAME, state, after_start=True)
    assert update is not None and update.qr_image == "data:image/png;base64," + png


def test_a_phone_code_event_becomes_a_pairing_code() -> None:
    update = from_event(NAME, {"event": "phoneCode", "phoneCode": "ABCD-EFGH", "phone": "55"})
    assert update is not None and update.pairing_code == "ABCD-EFGH"


@pytest.mark.parametrize(
    ("event", "reason"), [("closesession", "closed"), ("logoutsession", "logged_out")]
)
def test_close_and_logout_disconnect(event: str, reason: str) -> None:
    update = from_event(NAME, {"event": event, "message": "x", "connected": False})
    assert update is not None and (update.status, update.reason) == ("disconnected", reason)


@pytest.mark.parametrize(
    "event",
    [
        {"event": "onpresencechanged", "state": "available"},
        {"event": "status-find", "status": "somethingNew"},
        {"event": "status-find", "status": 3},
        {"event": "qrcode", "urlcode": ""},
        {"event": "qrcode"},
        {"event": "phoneCode", "phoneCode": None},
        {"event": ["qrcode"]},
    ],
)
def test_other_events_change_nothing(event: dict[str, object]) -> None:
    assert from_event(NAME, event) is None


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (HostState("CONNECTED"), "connected"),
        (HostState("INITIALIZING"), "starting"),
        (HostState("QRCODE", urlcode="2@a"), "pairing"),
        (HostState("qrcode", urlcode="2@a"), "pairing"),
        (HostState("phoneCode", phone_code="ABCD-EFGH"), "pairing"),
    ],
)
def test_host_answers_map_to_our_statuses(state: HostState, status: str) -> None:
    update = from_host_answer(NAME, state, after_start=True)
    assert update is not None and update.status == status


def test_closed_right_after_a_start_means_the_start_has_begun() -> None:
    assert from_host_answer(NAME, HostState("CLOSED"), after_start=True) is None
    later = from_host_answer(NAME, HostState("CLOSED"), after_start=False)
    assert later is not None and later.status == "disconnected"
