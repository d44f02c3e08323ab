"""The simulator posts its webhooks like wppconnect-server: acks, incoming messages, and the proofs
a stock host sends. Over real HTTP against the simulator running as its own process."""

from __future__ import annotations

import re

from tests.integration.simulator.host_client import (
    Host,
    Receiver,
)
from tests.waiting import wait_until

# --- 8. webhooks ----------------------------------------------------------------------------


def test_every_sent_message_is_acked_2_then_3_with_an_id_object(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    message_id = sent.json()["response"][0]["id"]
    receiver.wait_for(name, "onack", 2)
    receiver.wait_for(name, "onack", 3)
    acks = [h.body for h in receiver.of(name) if h.body["event"] == "onack"]
    assert sorted(a["ack"] for a in acks) == [2, 3]
    assert [ack for event, ack in host.emitted(name) if event == "onack"] == [2, 3]
    for ack in acks:
        assert ack["id"] == {
            "fromMe": True,
            "remote": "5511987654321@c.us",
            "id": message_id.rsplit("_", 1)[1],
            "_serialized": message_id,
        }
        assert ack["to"] == "5511987654321@c.us" and ack["body"] == "oi"
        assert ack["type"] == "chat" and isinstance(ack["t"], int) and ack["from"]
    assert host.sim("GET", f"{name}/outbox").json()["outbox"][0]["ack"] == 3


def test_a_manual_ack_sends_onack(host: Host, name: str, receiver: Receiver) -> None:
    host.connect(name, receiver, auto_ack=False)
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    message_id = sent.json()["response"][0]["id"]
    answer = host.sim("POST", f"{name}/ack", {"id": message_id, "ack": 4})
    assert answer.status_code == 200 and answer.json()["message"]["ack"] == 4
    hook = receiver.wait_for(name, "onack")[0].body
    assert hook["ack"] == 4 and hook["id"]["_serialized"] == message_id
    assert [e for e, _ in receiver.events(name)].count("onack") == 1
    assert host.sim("POST", f"{name}/ack", {"id": "nope", "ack": 3}).status_code == 404


def test_incoming_messages_arrive_and_are_read_only_after_a_2xx(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False)
    own = host.sim("GET", name).json()["wid"]
    sent = host.sim("POST", f"{name}/incoming", {"from": "5511987654321", "body": "oi"})
    message_id = sent.json()["id"]
    hook = receiver.wait_for(name, "onmessage")[0].body
    assert hook["event"] == "onmessage" and hook["session"] == name
    assert re.fullmatch(r"false_5511987654321@c\.us_3A[0-9A-F]{18}", hook["id"])
    assert hook["id"] == message_id and hook["body"] == "oi" and hook["type"] == "chat"
    assert hook["from"] == hook["chatId"] == "5511987654321@c.us" and hook["to"] == own
    assert hook["fromMe"] is False and hook["isGroupMsg"] is False
    assert hook["sender"]["id"] == "5511987654321@c.us"
    seen = wait_until(lambda: host.sim("GET", f"{name}/seen").json()["seen"])
    assert [s["chatId"] for s in seen] == ["5511987654321@c.us"]

    receiver.answer_status = 500
    from_ana = {"from": "5521900001111", "body": "x", "notifyName": "Ana"}
    host.sim("POST", f"{name}/incoming", from_ana)
    late = receiver.wait_for(name, "onmessage", count=2)[1].body
    assert late["notifyName"] == "Ana" and late["sender"]["pushname"] == "Ana"
    # The host has taken the 500 in (it logs the answer before marking the chat seen).
    wait_until(
        lambda: [
            e["results"]
            for e in host.sim("GET", f"{name}/events").json()["events"]
            if e["body"].get("id") == late["id"]
        ],
        lambda results: results == [["500"]],
        message="the host's record of the 500",
    )
    assert len(host.sim("GET", f"{name}/seen").json()["seen"]) == 1

    group = host.sim("POST", f"{name}/incoming", {"from": "5511987654321", "group": True})
    assert group.json()["message"]["isGroupMsg"] is True
    assert group.json()["message"]["author"] == "5511987654321@c.us"
    status = host.sim("POST", f"{name}/incoming", {"from": "status@broadcast", "body": "s"})
    assert status.status_code == 200
    receiver.wait_for(name, "onmessage", count=3)
    # Ignored when emitted: logged as not sent, so no delivery of it can still be on its way.
    [logged] = [
        e
        for e in host.sim("GET", f"{name}/events").json()["events"]
        if e["body"].get("from") == "status@broadcast"
    ]
    assert logged["ignored"] and not logged["sent"] and logged["results"] == []
    bodies = [h.body for h in receiver.of(name) if h.body["event"] == "onmessage"]
    assert len(bodies) == 3 and all(b["from"] != "status@broadcast" for b in bodies)


# --- 9. webhook proofs ----------------------------------------------------------------------


def test_a_stock_host_sends_no_header_proof_unless_configured(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver)
    hook = receiver.wait_for(name, "qrcode")[0]
    assert "x-verify" not in hook.headers and "authorization" not in hook.headers
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["user-agent"].startswith("axios/")
    assert hook.query["verify"] == [f"proof-{name}"]
    host.configure(x_verify_token="verify-secret")
    host.sim("POST", f"{name}/scan")
    proved = receiver.wait_for(name, "status-find", "qrReadSuccess")[0]
    assert proved.headers["x-verify"] == "verify-secret"


def test_the_global_webhook_is_used_without_a_session_webhook(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, webhook_url=receiver.url_for(name))
    assert receiver.wait_for(name, "qrcode")[0].body["session"] == name


def test_after_close_and_restart_events_lack_session_with_that_bug_on(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, bug_no_session_after_restart=True)
    host.call("POST", name, "close-session")
    host.wait_delivered(name)
    receiver.clear()
    host.call("POST", name, "start-session", {})
    hooks = receiver.wait_for(name, "status-find", "inChat")
    is_logged = receiver.wait_for(name, "status-find", "isLogged")[0]
    assert "session" not in is_logged.body
    assert hooks[0].body["session"] == name  # the connected library client has it again
