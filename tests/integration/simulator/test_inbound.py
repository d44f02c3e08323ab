"""What comes in through the simulated host, as wppconnect-server 2.10.4 (wppconnect 2.2.7,
wa-js 4.4.3) reports it by default: a first message twice (as ciphertext, then decrypted),
notices among a chat's messages, a get-messages that fails answering 401, files that fail to
download for a moment, and the owner's own phone messages in the chats. Each quirk turns off
by name for a test of a fixed server. Over real HTTP against the simulator as its own process.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.integration.simulator.host_client import Host, Receiver
from tests.waiting import wait_until

AUTH_BODIES = (
    {"message": "Token is not present. Check your header and try again"},
    {"error": "Check that the Session and Token are correct"},
)


def incoming(host: Host, session: str, **spec: Any) -> dict[str, Any]:
    answer = host.sim("POST", f"{session}/incoming", spec)
    assert answer.status_code == 200, answer.text
    message: dict[str, Any] = answer.json()["message"]
    return message


def messages_of(host: Host, session: str, chat: str) -> list[dict[str, Any]]:
    answer = host.call("GET", session, f"get-messages/{chat}?count=50")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["response"]
    return found


def test_a_first_message_comes_as_ciphertext_then_again_decrypted_with_the_same_id(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_ms=400)
    first = incoming(host, name, **{"from": "5511987650101", "body": "olá"})
    cipher = receiver.wait_for(name, "onmessage")[0].body
    assert (cipher["id"], cipher["type"]) == (first["id"], "ciphertext")
    assert "body" not in cipher and "content" not in cipher
    # Until it is decrypted, the chat holds it as ciphertext too.
    [held] = [m for m in messages_of(host, name, "5511987650101@c.us") if m["id"] == first["id"]]
    assert held["type"] == "ciphertext"
    later = [h.body for h in receiver.wait_for(name, "onmessage", count=2)][1]
    assert (later["id"], later["type"], later["body"]) == (first["id"], "chat", "olá")
    [held] = [m for m in messages_of(host, name, "5511987650101@c.us") if m["id"] == first["id"]]
    assert (held["type"], held["body"]) == ("chat", "olá")
    # The sender's next message needs no new encryption session: it comes once.
    second = incoming(host, name, **{"from": "5511987650101", "body": "tudo bem?"})
    hooks = receiver.wait_for(name, "onmessage", count=3)
    assert [(h.body["id"], h.body["type"]) for h in hooks][2] == (second["id"], "chat")


def test_without_the_quirk_a_message_comes_once(host: Host, name: str, receiver: Receiver) -> None:
    host.connect(name, receiver, ciphertext_first=False)
    first = incoming(host, name, **{"from": "5511987650102", "body": "oi"})
    [hook] = receiver.wait_for(name, "onmessage")
    assert (hook.body["id"], hook.body["type"]) == (first["id"], "chat")


def test_get_messages_lists_the_notice_that_opens_a_chat_and_onmessage_never_posts_it(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False)
    first = incoming(host, name, **{"from": "5511987650103", "body": "um"})
    group = incoming(host, name, **{"from": "5511987650104", "body": "grupo", "group": True})
    receiver.wait_for(name, "onmessage", count=2)
    chat = messages_of(host, name, "5511987650103@c.us")
    assert [(m["type"], m["isNotification"]) for m in chat] == [
        ("e2e_notification", True),
        ("chat", False),
    ]
    assert chat[1]["id"] == first["id"] and chat[0]["t"] == first["t"]
    notice = host.call("GET", name, f"message-by-id/{chat[0]['id']}")
    assert notice.status_code == 201 and notice.json()["response"]["data"] == chat[0]
    in_group = messages_of(host, name, group["chatId"])
    assert [m["type"] for m in in_group] == ["gp2", "chat"]
    assert [h.body["type"] for h in receiver.of(name) if h.body["event"] == "onmessage"] == [
        "chat",
        "chat",
    ]
    host.configure(chat_notices=False)
    incoming(host, name, **{"from": "5511987650105", "body": "sem aviso"})
    assert [m["type"] for m in messages_of(host, name, "5511987650105@c.us")] == ["chat"]


def test_get_messages_of_a_chat_the_host_does_not_hold_answers_401_not_an_auth_body(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    answer = host.call("GET", name, "get-messages/5511900001111@c.us?count=5")
    assert answer.status_code == 401
    # A GET carries no Content-Type: the body has no "session" added.
    assert answer.json() == {"status": "error", "response": "Error on open list", "error": {}}
    assert answer.json() not in AUTH_BODIES
    host.configure(route_errors_401=False)
    answer = host.call("GET", name, "get-messages/5511900001111@c.us?count=5")
    assert answer.status_code == 200 and answer.json()["response"] == []


def test_a_download_fails_for_a_moment_then_gives_the_file(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False, decrypt_error_tries=2)
    data = base64.b64encode(b"%PDF-1.7 tiny").decode()
    doc = incoming(
        host,
        name,
        **{"from": "5511987650106", "media": {"data": data, "mime_type": "application/pdf"}},
    )
    for _ in range(2):
        failed = host.call("POST", name, "download-media", {"messageId": doc["id"]})
        assert failed.status_code == 400
        assert failed.json()["message"] == "Decrypt file error"
    given = host.call("POST", name, "download-media", {"messageId": doc["id"]})
    assert given.status_code == 200 and given.json()["base64"] == data
    # An id the host does not hold: getMessageById throws, the same answer.
    unknown = host.call("POST", name, "download-media", {"messageId": "false_1@c.us_NOPE"})
    assert unknown.status_code == 400 and unknown.json()["message"] == "Decrypt file error"


def test_a_message_the_owner_writes_on_the_phone_is_in_the_chat_and_not_in_the_outbox(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, ciphertext_first=False)
    incoming(host, name, **{"from": "5511987650107", "body": "oi"})
    answer = host.sim("POST", f"{name}/from-phone", {"to": "5511987650107", "body": "do celular"})
    assert answer.status_code == 200, answer.text
    written = answer.json()["message"]
    assert written["fromMe"] is True and written["id"].startswith("true_5511987650107@c.us_")
    chat = messages_of(host, name, "5511987650107@c.us")
    assert [(m["fromMe"], m.get("body")) for m in chat if m["type"] == "chat"] == [
        (False, "oi"),
        (True, "do celular"),
    ]
    assert host.sim("GET", f"{name}/outbox").json()["outbox"] == []
    # onselfmessage only with the host's onSelfMessage (off by default, as on the server).
    assert not [h for h in receiver.of(name) if h.body["event"] == "onselfmessage"]
    host.configure(on_self_message=True)
    host.sim("POST", f"{name}/from-phone", {"to": "5511987650107", "body": "de novo"})
    [self_message] = receiver.wait_for(name, "onselfmessage")
    assert self_message.body["body"] == "de novo" and self_message.body["fromMe"] is True
    assert wait_until(lambda: len(messages_of(host, name, "5511987650107@c.us")) == 4)
