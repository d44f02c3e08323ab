"""The simulator's fidelity options: each one shows what wppconnect-server 2.10.4 really does (the
simulator's default), and a test that compares it with a fixed server turns the option off by
name. Over real HTTP against the simulator running as its own process."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import requests

from local.simulator.config import DEFAULT_FIDELITY, FIDELITIES, KIND_DEFAULTS, REAL_DEFAULTS
from local.simulator.host import UNHANDLED_REJECTION_EXIT
from tests.integration.simulator.host_client import (
    DISCONNECTED,
    SECRET,
    Host,
    Receiver,
    linked_on_own_host,
    start_host,
)
from tests.waiting import wait_until

CLOSE_FAILED = {"status": False, "message": "Error closing session", "error": {}}


def onmessages(receiver: Receiver, session: str, count: int = 1) -> list[dict[str, Any]]:
    return [h.body for h in receiver.wait_for(session, "onmessage", count=count)]


def incoming(host: Host, session: str, **spec: Any) -> dict[str, Any]:
    answer = host.sim("POST", f"{session}/incoming", spec)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# --- the switch -------------------------------------------------------------------------------


def test_the_fidelity_switch_sets_every_option_and_reset_returns_to_the_starting_profile(
    host: Host,
) -> None:
    start = host.sim("GET", "config").json()
    starting = FIDELITIES[DEFAULT_FIDELITY]
    assert {key: start[key] for key in REAL_DEFAULTS} == starting
    assert start["orphan_pairing_browser"] is True and start["delivery_mode"] == "concurrent"
    kind = host.sim("POST", "config", {"fidelity": "kind"}).json()
    assert {key: kind[key] for key in REAL_DEFAULTS} == KIND_DEFAULTS
    assert kind["orphan_pairing_browser"] is False and kind["delivery_mode"] == "normal"
    real = host.sim("POST", "config", {"fidelity": "real", "autoclose_ms": 1234}).json()
    assert {key: real[key] for key in REAL_DEFAULTS} == REAL_DEFAULTS
    assert real["autoclose_ms"] == 1234  # other keys of the same update apply on top
    assert host.sim("POST", "config", {"fidelity": "strict"}).status_code == 400
    [other] = set(FIDELITIES) - {DEFAULT_FIDELITY}
    host.configure(fidelity=other)
    assert host.sim("GET", "config").json()["delivery_mode"] != start["delivery_mode"]
    host.sim("POST", "reset")
    after = host.sim("GET", "config").json()
    assert {key: after[key] for key in REAL_DEFAULTS} == starting


def test_the_command_line_can_start_a_real_simulator(tmp_path: Path) -> None:
    process = start_host(tmp_path, "--no-start-all", "--fidelity", "real")
    try:
        config = Host(process.url).sim("GET", "config").json()
        assert {key: config[key] for key in REAL_DEFAULTS} == REAL_DEFAULTS
    finally:
        assert process.stop() == 0


# --- 1. close-session while pairing -----------------------------------------------------------


def test_close_while_pairing_fails_but_the_browser_lives_on_and_can_still_link(
    host: Host, name: str, receiver: Receiver
) -> None:
    first = host.start_with_qr(name, receiver, orphan_pairing_browser=True)
    closed = host.call("POST", name, "close-session", {})
    assert closed.status_code == 500 and closed.json() == {**CLOSE_FAILED, "session": name}
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("GET", name).json()["status"] is None

    # The orphaned browser still posts QR codes, to the webhook it was started with.
    refreshed = host.sim("POST", f"{name}/refresh-qr").json()
    assert refreshed["urlcode"] != first["urlcode"]
    qrs = [h.body for h in receiver.wait_for(name, "qrcode", count=2)]
    [qr] = [b for b in qrs if b["urlcode"] == refreshed["urlcode"]]  # in any order
    assert qr["session"] == name
    assert host.status(name)["status"] == "CLOSED"  # the entry is not the orphan

    # A scan links it: create() resolves and its client replaces the entry.
    scanned = host.sim("POST", f"{name}/scan", {"wait": True}).json()
    assert scanned["status"] == "CONNECTED"
    status = host.status(name)
    assert status["status"] == "CONNECTED" and status["urlcode"] == refreshed["urlcode"]
    receiver.wait_for(name, "status-find", "inChat")
    receiver.wait_for(name, "status-find", "qrReadSuccess")
    assert host.emitted(name)[-2:] == [
        ("status-find", "qrReadSuccess"),
        ("status-find", "inChat"),
    ]
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    assert sent.status_code == 201


def test_the_orphan_ends_at_its_autoclose_without_touching_the_entry(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver, orphan_pairing_browser=True, autoclose_ms=400)
    assert host.call("POST", name, "close-session").status_code == 500
    hooks = receiver.wait_for(name, "status-find", "browserClose")
    assert hooks[0].body["session"] == name
    assert host.sim("GET", name).json()["orphans"] == []
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("POST", f"{name}/scan").status_code == 409


def test_a_start_while_the_orphan_runs_stays_initializing_for_good(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver, orphan_pairing_browser=True)
    host.call("POST", name, "close-session")
    other = f"{receiver.base}/hook?session={name}-second"
    again = host.call("POST", name, "start-session", {"webhook": other})
    assert (again.json()["status"], again.json()["qrcode"]) == ("CLOSED", None)
    state = host.sim("GET", name).json()
    assert state["status"] == "INITIALIZING" and state["launchFailed"] is True
    # The failed start still wrote its body to the token store, as setToken does.
    assert state["storedConfig"] == {"webhook": other}
    third = host.call("POST", name, "start-session", {}).json()
    assert third["status"] == "INITIALIZING"
    assert host.sim("GET", name).json()["starts"] == 2

    # The orphan times out; the entry is still stuck until a close-session resets it.
    assert host.sim("POST", f"{name}/expire").status_code == 200
    receiver.wait_for(name, "status-find", "browserClose")
    assert host.status(name)["status"] == "INITIALIZING"
    assert host.call("POST", name, "close-session").status_code == 500
    host.call("POST", name, "start-session", {"webhook": receiver.url_for(name)})
    assert wait_until(lambda: host.status(name)["status"] == "QRCODE")
    assert receiver.of(f"{name}-second") == []


# --- 2. a running session keeps its first webhook ---------------------------------------------


def test_a_start_on_a_running_session_keeps_its_first_webhook(
    host: Host, name: str, receiver: Receiver
) -> None:
    first = {"webhook": receiver.url_for(name)}
    host.start_with_qr(name, receiver)
    second = {"webhook": receiver.url_for(f"{name}-b"), "phone": "5511987650000"}
    assert host.call("POST", name, "start-session", second).json()["status"] == "QRCODE"
    state = host.sim("GET", name).json()
    assert state["config"] == first and state["storedConfig"] == first
    host.sim("POST", f"{name}/scan", {"wait": True})
    assert host.call("POST", name, "start-session", second).json()["status"] == "CONNECTED"
    incoming(host, name, **{"from": "5511987654321", "body": "oi"})
    onmessages(receiver, name)
    assert receiver.of(f"{name}-b") == []
    assert host.sim("GET", name).json()["storedConfig"] == first


# --- 3. @lid senders --------------------------------------------------------------------------


def test_registered_numbers_write_from_their_lid_and_pn_lid_maps_both_ways(
    host: Host, name: str, receiver: Receiver
) -> None:
    lid = "123456789012345"
    host.configure(lid_senders=True, lid_numbers={"5511987650001": lid})
    assert host.call("GET", name, "contact/pn-lid/5511987650001@c.us").json() == DISCONNECTED
    host.connect(name, receiver)
    bia = {"from": "5511987650001", "body": "oi", "notifyName": "Bia"}
    via_lid_id = incoming(host, name, **bia)["id"]
    plain_id = incoming(host, name, **{"from": "5511987650002", "body": "oi"})["id"]
    arrived = {m["id"]: m for m in onmessages(receiver, name, 2)}
    via_lid, plain = arrived[via_lid_id], arrived[plain_id]
    assert via_lid["from"] == via_lid["chatId"] == via_lid["sender"]["id"] == f"{lid}@lid"
    assert via_lid["id"].startswith(f"false_{lid}@lid_")
    assert plain["from"] == "5511987650002@c.us"

    phone = {"id": "5511987650001", "server": "c.us", "_serialized": "5511987650001@c.us"}
    lid_info = {"id": lid, "server": "lid", "_serialized": f"{lid}@lid"}
    contact = {"pushname": "Bia", "type": "in", "isBusiness": False, "isEnterprise": False}
    by_phone = host.call("GET", name, "contact/pn-lid/5511987650001@c.us")
    assert by_phone.status_code == 200
    assert by_phone.json() == {"lid": lid_info, "phoneNumber": phone, "contact": contact}
    by_lid = host.call("GET", name, f"contact/pn-lid/{lid}@lid").json()
    assert by_lid == {"lid": lid_info, "phoneNumber": phone, "contact": contact}
    unknown = host.call("GET", name, "contact/pn-lid/5511987650003@c.us").json()
    assert unknown == {
        "phoneNumber": {
            "id": "5511987650003",
            "server": "c.us",
            "_serialized": "5511987650003@c.us",
        }
    }
    group = host.call("GET", name, "contact/pn-lid/120363000000000000@g.us")
    assert group.status_code == 500 and group.json()["message"] == "Error on get contact by PN-LID"


def test_from_lid_makes_any_sender_a_lid_and_long_numbers_are_sent_as_lid(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    group = "120363000000000001@g.us"
    sent = incoming(host, name, **{"from": "5511987650004", "from_lid": True, "group": group})
    message = sent["message"]
    assert message["chatId"] == group and message["author"].endswith("@lid")
    lid = message["author"].split("@")[0]
    mapped = host.call("GET", name, f"contact/pn-lid/{lid}@lid").json()
    assert mapped["phoneNumber"]["_serialized"] == "5511987650004@c.us"
    explicit = incoming(host, name, **{"from": "5511987650005", "lid": "99887766554433"})
    assert explicit["message"]["from"] == "99887766554433@lid"
    answer = host.call("POST", name, "send-message", {"phone": "123456789012345", "message": "x"})
    assert answer.status_code == 201 and answer.json()["response"][0]["to"] == "123456789012345@lid"


# --- 4. bcrypt's 72 bytes ---------------------------------------------------------------------


def test_tokens_ignore_everything_after_the_72nd_byte_of_session_and_secret(
    host: Host, tmp_path: Path
) -> None:
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    token_a = host.token(long_a)
    borrowed = host.http.get(
        f"{host.url}/api/{long_b}/status-session",
        headers={"Authorization": f"Bearer {token_a}"},
        timeout=10,
    )
    assert borrowed.status_code == 200
    short = "short"
    secret_1, secret_2 = "K" * 70 + "1", "K" * 70 + "2"
    first = start_host(tmp_path / "one", "--no-start-all", secret_key=secret_1)
    second = start_host(tmp_path / "two", "--no-start-all", secret_key=secret_2)
    try:
        made = requests.post(f"{first.url}/api/{short}/{secret_1}/generate-token", timeout=10)
        token = made.json()["token"]
        checked = requests.get(
            f"{second.url}/api/{short}/status-session",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert checked.status_code == 200
        other = requests.get(
            f"{second.url}/api/other/status-session",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert other.status_code == 401
    finally:
        first.stop()
        second.stop()


# --- 5. a failed existence check -------------------------------------------------------------


def test_a_failed_existence_check_answers_400_and_the_host_may_send_anyway(
    host: Host, name: str
) -> None:
    host.connect(name)
    not_found = {"response": None, "status": "Connected", "message": ""}
    # A fixed server: the controller stops at its 400. (How long wa-js keeps the miss is
    # test_simulator_sends's; here it is not kept.)
    host.configure(number_check_fail_next=1, answer_after_error=False, number_miss_cache_ms=0)
    body = {"phone": "5511987650006", "message": "one"}
    first = host.call("POST", name, "send-message", body)
    assert first.status_code == 400
    expected = {**not_found, "message": "O número 5511987650006 não existe.", "session": name}
    assert first.json() == expected
    assert host.sim("GET", f"{name}/outbox").json()["outbox"] == []
    assert host.call("POST", name, "send-message", body).status_code == 201  # one-shot

    host.configure(number_check_fault_rate=1.0, answer_after_error=True)
    other = {**body, "phone": "5511987650008", "message": "two"}  # not found before
    again = host.call("POST", name, "send-message", other)
    assert again.status_code == 400
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [(m["body"], m["to"]) for m in outbox] == [
        ("one", "5511987650006@c.us"),
        ("two", "5511987650008@c.us"),
    ]


def test_check_number_status_confirms_a_number_and_answers_a_failed_lookup_as_no_account(
    host: Host, name: str
) -> None:
    host.connect(name, canonical_br_ninth_digit=True)
    known = host.call("GET", name, "check-number-status/5531998877665")
    assert known.status_code == 200
    profile = known.json()["response"]
    assert profile["numberExists"] is True
    assert profile["id"]["_serialized"] == "553198877665@c.us"
    missing = host.call("GET", name, "check-number-status/5511900000000").json()["response"]
    assert missing["numberExists"] is False and missing["id"] == "5511900000000@c.us"
    # wa-js answers a lookup WhatsApp's server failed as no account (queryWidExists.ts);
    # a number found before is known and not looked up again.
    host.configure(number_check_fail_next=1)
    failed = host.call("GET", name, "check-number-status/5511987650009")
    assert failed.status_code == 200
    assert failed.json()["response"]["numberExists"] is False
    host.configure(number_check_fail_next=1)
    known_again = host.call("GET", name, "check-number-status/5531998877665").json()["response"]
    assert known_again["numberExists"] is True


def test_faults_can_be_limited_to_some_routes(host: Host, name: str) -> None:
    host.connect(name)
    assert host.sim("POST", "faults", {"error_rate": 1.0, "routes": ["send-message"]}).ok
    try:
        connected = host.call("GET", name, "check-connection-session")
        assert connected.status_code == 200 and connected.json()["status"] is True
        sent = host.call("POST", name, "send-message", {"phone": "5511987650007", "message": "x"})
        assert sent.status_code == 500
    finally:
        host.sim("POST", "faults", {"error_rate": 0.0, "routes": []})


# --- 6, 12. canonical ids ---------------------------------------------------------------------


def test_brazilian_mobiles_of_area_31_and_up_lose_the_ninth_digit(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, canonical_br_ninth_digit=True)
    answer = host.call("POST", name, "send-message", {"phone": "5531998877665", "message": "x"})
    sent = answer.json()["response"][0]
    assert sent["to"] == "553198877665@c.us"
    assert sent["id"].startswith("true_553198877665@c.us_")
    ack = receiver.wait_for(name, "onack", 2)[0].body
    assert ack["to"] == "553198877665@c.us" and ack["id"]["remote"] == "553198877665@c.us"
    reply = incoming(host, name, **{"from": "5531998877665", "body": "oi"})["message"]
    assert reply["from"] == "553198877665@c.us"
    sp = host.call("POST", name, "send-message", {"phone": "551187654321", "message": "x"})
    assert sp.json()["response"][0]["to"] == "5511987654321@c.us"
    kept = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "x"})
    assert kept.json()["response"][0]["to"] == "5511987654321@c.us"


# --- 7. what stays on disk --------------------------------------------------------------------


def test_logout_and_clear_leave_the_token_and_start_all_relaunches_everything(
    tmp_path: Path, receiver: Receiver
) -> None:
    logged_out, cleared, closed = (f"d{uuid.uuid4().hex[:8]}" for _ in range(3))
    first, host = linked_on_own_host(tmp_path, receiver, [logged_out, cleared, closed])
    assert host.call("POST", logged_out, "logout-session").status_code == 200
    wiped = host.http.post(f"{host.url}/api/{cleared}/{SECRET}/clear-session-data", json={})
    assert wiped.status_code == 200 and wiped.json() == {"success": True, "session": ""}
    assert host.status(cleared)["status"] == "CONNECTED"  # the browser is left running
    assert host.sim("GET", cleared).json()["savedLogin"] is None
    assert host.call("POST", closed, "close-session").status_code == 200
    listed = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions").json()["response"]
    assert sorted(listed) == sorted([logged_out, cleared, closed])
    assert first.stop() == 0

    second = start_host(tmp_path)  # startAllSession at boot
    host.follow(second)
    try:
        assert wait_until(lambda: host.status(closed)["status"] == "CONNECTED", within_s=3.0)
        assert wait_until(lambda: host.status(logged_out)["status"] == "QRCODE", within_s=3.0)
        assert wait_until(lambda: host.status(cleared)["status"] == "QRCODE", within_s=3.0)
    finally:
        assert second.stop() == 0


def test_a_fixed_server_would_drop_the_token_and_a_bad_secret_still_clears(
    host: Host, name: str
) -> None:
    host.connect(name, tokens_survive_logout=False)
    assert host.call("POST", name, "logout-session").status_code == 200
    listed = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions").json()
    assert name not in listed["response"]

    other = f"{name}x"
    host.connect(other, tokens_survive_logout=True)
    url = f"{host.url}/api/{other}/WRONG/clear-session-data"
    host.configure(answer_after_error=False)  # a fixed server stops at the 400
    refused = host.http.post(url)
    assert refused.status_code == 400
    assert refused.json() == {"response": "error", "message": "The token is incorrect"}
    assert host.sim("GET", other).json()["savedLogin"] is not None
    assert host.sim("GET", "host").json()["unhandledRejections"] == 0
    host.configure(answer_after_error=True)
    assert host.http.post(url).status_code == 400
    assert host.sim("GET", other).json()["savedLogin"] is None
    assert host.sim("GET", "host").json()["unhandledRejections"] == 1


# --- 8. defaults that hurt a gateway ----------------------------------------------------------


def test_presence_around_messages_read_marks_and_downloaded_media(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False)
    incoming(host, name, **{"from": "5511987650007", "body": "oi"})
    receiver.wait_for(name, "onpresencechanged", count=2)
    receiver.wait_for(name, "onmessage")
    # Emitted in this order; delivered in any (the host does not await its webhooks).
    around = [
        e["body"]
        for e in host.sim("GET", f"{name}/events").json()["events"]
        if e["event"] in ("onpresencechanged", "onmessage")
    ]
    assert [(b["event"], b.get("state")) for b in around] == [
        ("onpresencechanged", "composing"),
        ("onmessage", None),
        ("onpresencechanged", "available"),
    ]
    composing = around[0]
    assert composing["id"] == "5511987650007@c.us" and composing["isUser"] is True
    assert isinstance(composing["t"], int) and composing["t"] > 10**12
    delivered = [h.body for h in receiver.of(name) if h.body["event"] == "onpresencechanged"]
    assert sorted(b["state"] for b in delivered) == ["available", "composing"]
    seen = wait_until(lambda: host.sim("GET", name).json()["seen"])
    assert [s["chatId"] for s in seen] == ["5511987650007@c.us"]

    data = base64.b64encode(b"%PDF-1.4 whole file").decode()
    media = {"from": "5511987650007", "body": "nota", "mimetype": "application/pdf"}
    downloaded_id = incoming(host, name, **media, base64=data)["id"]
    host.configure(auto_download=False)
    kept_id = incoming(host, name, **media, base64=data)["id"]
    bodies = {m["id"]: m["body"] for m in onmessages(receiver, name, 3)}
    assert bodies[downloaded_id] == data and bodies[kept_id] == "nota"


# --- 9. concurrent webhooks -------------------------------------------------------------------


def test_concurrent_delivery_reorders_a_burst(host: Host, name: str, receiver: Receiver) -> None:
    host.connect(name, receiver)
    host.configure(
        delivery_mode="concurrent",
        concurrent_jitter_ms=300,
        read_message=False,
        ciphertext_first=False,
    )
    bodies = [f"m{i:02d}" for i in range(20)]
    for body in bodies:
        incoming(host, name, **{"from": "5511987650008", "body": body})
    arrived = [m["body"] for m in onmessages(receiver, name, len(bodies))]
    assert sorted(arrived) == bodies and arrived != bodies


def test_after_close_and_start_the_real_profile_loses_the_session_key(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, fidelity="real", delivery_mode="normal")
    host.call("POST", name, "close-session")
    host.wait_delivered(name)
    receiver.clear()
    host.call("POST", name, "start-session", {"webhook": receiver.url_for(name)})
    # The profile still holds the link, so the login is restored without a QR code.
    hooks = receiver.wait_for(name, "status-find", "isLogged")
    assert "session" not in hooks[0].body and hooks[0].session == name


# --- 10. acks ---------------------------------------------------------------------------------


def test_incoming_messages_are_acked_when_read_and_acks_span_minus_7_to_5(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, incoming_acks=True)
    own = host.sim("GET", name).json()["wid"]
    message = incoming(host, name, **{"from": "5511987650009", "body": "oi"})["message"]
    ack = receiver.wait_for(name, "onack", 3)[0].body
    assert ack["id"]["fromMe"] is False and ack["id"]["_serialized"] == message["id"]
    assert ack["id"]["remote"] == "5511987650009@c.us"
    assert ack["from"] == "5511987650009@c.us" and ack["to"] == own
    played = host.sim("POST", f"{name}/ack", {"id": message["id"], "ack": 4})
    assert played.status_code == 200
    assert receiver.wait_for(name, "onack", 4)[0].body["id"]["fromMe"] is False
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "x"})
    sent_id = sent.json()["response"][0]["id"]
    for level in (-7, 5):
        assert host.sim("POST", f"{name}/ack", {"id": sent_id, "ack": level}).status_code == 200
        assert receiver.wait_for(name, "onack", level)
    assert host.sim("POST", f"{name}/ack", {"id": sent_id, "ack": 6}).status_code == 400


# --- 11. the answer after a 404 ---------------------------------------------------------------


def test_after_a_404_the_host_logs_an_unhandled_rejection_and_stays_up(
    host: Host, name: str
) -> None:
    body = {"phone": "5511987654321", "message": "x"}
    host.configure(answer_after_error=False)  # a fixed server: nothing after the 404
    assert host.call("POST", name, "send-message", body).status_code == 404
    assert host.sim("GET", "host").json()["unhandledRejections"] == 0
    host.configure(answer_after_error=True)
    for route in ("send-message", "logout-session", "download-media"):
        answer = host.call("POST", name, route, body)
        assert answer.status_code == 404 and answer.json() == {**DISCONNECTED, "session": ""}
    unread = host.call("GET", name, "all-unread-messages")
    assert unread.status_code == 404
    state = host.sim("GET", "host").json()
    assert state["unhandledRejections"] == 4
    assert [e["event"] for e in state["events"]] == ["unhandledRejection"] * 4
    assert "ERR_HTTP_HEADERS_SENT" in state["events"][0]["error"]
    assert requests.get(f"{host.url}/healthz", timeout=5).status_code == 200


def test_a_host_without_the_rejection_handler_exits_after_its_404(tmp_path: Path) -> None:
    process = start_host(tmp_path, "--no-start-all")
    host = Host(process.url)
    host.configure(answer_after_error=True, exit_on_unhandled_rejection=True)
    answer = host.call("POST", "gone", "send-message", {"phone": "5511987654321"})
    assert answer.status_code == 404 and answer.json()["status"] == "Disconnected"
    assert process.process is not None and process.process.wait(10) == UNHANDLED_REJECTION_EXIT
    lines = (tmp_path / "host-events.log").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["unhandledRejection", "exit"]


# --- read-back routes -------------------------------------------------------------------------


def test_read_back_routes_list_unread_chats_messages_and_media(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False, decrypt_error_tries=0)
    receiver.answer_status = 500  # no 2xx, so no sendSeen: the chat stays unread
    first = incoming(host, name, **{"from": "5511987650010", "body": "um"})["message"]
    data = base64.b64encode(b"\x89PNG fake image").decode()
    photo = incoming(
        host, name, **{"from": "5511987650010", "mimetype": "image/png", "base64": data}
    )["message"]
    onmessages(receiver, name, 2)
    unread = host.call("GET", name, "all-unread-messages").json()
    assert unread["status"] == "success"
    assert [m["id"] for m in unread["response"]] == [first["id"], photo["id"]]
    assert host.call("GET", name, "all-new-messages").json() == unread

    reply = host.call("POST", name, "send-message", {"phone": "5511987650010", "message": "ok"})
    reply_id = reply.json()["response"][0]["id"]
    chat = host.call("GET", name, "get-messages/5511987650010@c.us?count=2").json()
    assert [m["id"] for m in chat["response"]] == [photo["id"], reply_id]
    by_id = host.call("GET", name, f"message-by-id/{first['id']}")
    assert by_id.status_code == 201
    assert by_id.json()["response"] == {
        "message": "Information retrieved successfully.",
        "session": name,
        "data": first,
    }
    missing = host.call("GET", name, "message-by-id/false_x@c.us_NOPE")
    assert missing.status_code == 400 and missing.json()["status"] == "Error"
    chats = host.call("POST", name, "list-chats", {}).json()
    assert [(c["id"], c["unreadCount"]) for c in chats] == [("5511987650010@c.us", 2)]
    media = host.call("POST", name, "download-media", {"messageId": photo["id"]})
    assert media.status_code == 200
    assert media.json() == {"base64": data, "mimetype": "image/png", "session": name}
    plain = host.call("POST", name, "download-media", {"messageId": first["id"]})
    assert plain.status_code == 400 and plain.json()["message"] == "Message does not contain media"

    receiver.answer_status = 200
    incoming(host, name, **{"from": "5511987650010", "body": "tres"})
    assert wait_until(
        lambda: host.call("GET", name, "all-unread-messages").json()["response"] == []
    )
