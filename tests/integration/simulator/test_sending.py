"""The simulator sends like wppconnect-server: who can be sent to, the answers, files. Over real
HTTP against the simulator running as its own process."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.integration.simulator.host_client import (
    DISCONNECTED,
    PNG_SIGNATURE,
    Host,
)

# --- 7. sending -----------------------------------------------------------------------------


def test_send_message_is_404_disconnected_unless_connected(host: Host, name: str) -> None:
    answer = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    assert answer.status_code == 404 and answer.json() == {**DISCONNECTED, "session": ""}
    host.start_with_qr(name)
    pending = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "x"})
    assert pending.status_code == 404 and pending.json() == {**DISCONNECTED, "session": name}


def test_send_message_answers_201_with_full_message_objects(host: Host, name: str) -> None:
    host.connect(name)
    own = host.sim("GET", name).json()["wid"]
    answer = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "Olá"})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"status", "response", "mapper", "session"}
    assert body["status"] == "success" and body["mapper"] == "return" and body["session"] == name
    [message] = body["response"]
    assert re.fullmatch(r"true_5511987654321@c\.us_3EB0[0-9A-F]{16}", message["id"])
    assert message["body"] == message["content"] == "Olá" and message["type"] == "chat"
    assert message["from"] == own and message["to"] == message["chatId"] == "5511987654321@c.us"
    assert message["fromMe"] is True and message["self"] == "out" and message["ack"] == 1
    assert message["isGroupMsg"] is False and message["timestamp"] == message["t"]
    assert message["sender"]["id"] == own and message["sender"]["isMe"] is True
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [(m["id"], m["to"], m["body"]) for m in outbox] == [
        (message["id"], "5511987654321@c.us", "Olá")
    ]


def test_an_unknown_number_is_400_and_nothing_is_sent(host: Host, name: str) -> None:
    host.connect(name)
    answer = host.call("POST", name, "send-message", {"phone": "5511900000000", "message": "x"})
    assert answer.status_code == 400
    assert answer.json() == {
        "response": None,
        "status": "Connected",
        "message": "O número 5511900000000 não existe.",
        "session": name,
    }
    assert host.sim("GET", f"{name}/outbox").json()["outbox"] == []
    # The number gets an account; wa-js would answer its kept miss for 15 s more.
    host.configure(unknown_numbers=["5511911112222"], number_miss_cache_ms=0)
    assert (
        host.call("POST", name, "send-message", {"phone": "5511911112222", "message": "x"})
    ).status_code == 400
    assert (
        host.call("POST", name, "send-message", {"phone": "5511900000000", "message": "x"})
    ).status_code == 201


def test_phone_is_normalised_like_contact_to_array(host: Host, name: str) -> None:
    host.connect(name)
    host.configure(canonical_numbers={"5531988887777": "553188887777"})

    def sent_to(body: dict[str, Any]) -> list[str]:
        answer = host.call("POST", name, "send-message", {"message": "x", **body})
        assert answer.status_code == 201, answer.text
        return [m["to"] for m in answer.json()["response"]]

    assert sent_to({"phone": "+55(11)98765-4321"}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5511987654321@s.whatsapp.net"}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5511987654321, 5521987654321;5511912340000"}) == [
        "5511987654321@c.us",
        "5521987654321@c.us",
        "5511912340000@c.us",
    ]
    assert sent_to({"phone": ["5511987654321"]}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5531988887777"}) == ["553188887777@c.us"]  # ninth digit
    assert sent_to({"phone": "123456789012345"}) == ["123456789012345@lid"]
    # A group is sent to only when the account is in it (wa-js assertGetChat).
    host.sim("POST", f"{name}/group", {"id": "120363000000000001@g.us", "subject": "g"})
    assert sent_to({"phone": "120363000000000001", "isGroup": True}) == ["120363000000000001@g.us"]
    assert sent_to({"phone": "abc", "isNewsletter": True}) == ["abc@newsletter"]
    # a number that is not a string or an array makes the middleware throw
    number = host.call("POST", name, "send-message", {"phone": 5511987654321, "message": "x"})
    assert number.status_code == 404 and number.json()["status"] == "Disconnected"
    empty = host.call("POST", name, "send-message", {"message": "x"})
    assert empty.status_code == 400 and empty.json() == "Error sending message"


def test_a_multipart_is_group_false_is_truthy(host: Host, name: str) -> None:
    host.connect(name)
    host.sim("POST", f"{name}/group", {"id": "5511987654321@g.us", "subject": "g"})
    answer = host.call(
        "POST",
        name,
        "send-file",
        files={"file": ("a.txt", b"hello", "text/plain")},
        data={"phone": "5511987654321", "isGroup": "false"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["response"][0]["id"].startswith("true_5511987654321@g.us_")
    assert "session" not in answer.json()  # multipart is not exactly application/json


def test_file_routes_answer_ack_and_id_and_want_a_data_uri(host: Host, name: str) -> None:
    host.connect(name)
    data_uri = "data:image/png;base64," + base64.b64encode(PNG_SIGNATURE + b"rest").decode()
    for route in ("send-image", "send-file", "send-file-base64"):
        body = {"phone": "5511987654321", "base64": data_uri, "caption": "foto"}
        answer = host.call("POST", name, route, body)
        assert answer.status_code == 201, answer.text
        [item] = answer.json()["response"]
        assert set(item) == {"ack", "id"} and item["ack"] == 1
        assert re.fullmatch(r"true_5511987654321@c\.us_3EB0[0-9A-F]{16}", item["id"])
    raw = host.call(
        "POST", name, "send-file-base64", {"phone": "5511987654321", "base64": "iVBORw0KGgo="}
    )
    assert raw.status_code == 500
    assert raw.json()["status"] == "Error"
    assert raw.json()["message"] == "Erro ao enviar a mensagem."
    assert isinstance(raw.json()["error"], dict)
    no_file = host.call("POST", name, "send-file", {"phone": "5511987654321"})
    assert no_file.status_code == 401
    assert no_file.json() == {"message": "Sending the file is mandatory", "session": name}
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [m["type"] for m in outbox] == ["image"] * 3
    assert outbox[0]["mimetype"] == "image/png" and outbox[0]["caption"] == "foto"
