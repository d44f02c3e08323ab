"""The simulator's sends as wppconnect-server 2.10.4 (wppconnect 2.2.7, wa-js 4.4.3) makes
them, by default: a number lookup WhatsApp's server fails is a "does not exist" that the host
answers and sends anyway, and that wa-js keeps for 15 s; a send answers only once WhatsApp's
server has taken the message; a file's acks carry what the library reports of it. Over real
HTTP against the simulator running as its own process."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

from local.simulator.config import REAL_DEFAULTS
from tests.integration.simulator.host_client import Host, Receiver
from tests.waiting import wait_until

PDF = b"%PDF-1.4\n" + b"x" * 300
PNG = b"\x89PNG\r\n\x1a\n" + b"y" * 200


def send_file(host: Host, session: str, data: bytes, mime: str, **fields: Any) -> dict[str, Any]:
    body = {
        "phone": "5511987650010",
        "base64": f"data:{mime};base64,{base64.b64encode(data).decode()}",
        **fields,
    }
    answer = host.call("POST", session, "send-file-base64", body)
    assert answer.status_code == 201, answer.text
    sent: dict[str, Any] = answer.json()["response"][0]
    return sent


def ack_of(receiver: Receiver, session: str, message_id: str, level: int = 2) -> dict[str, Any]:
    hooks = wait_until(
        lambda: [
            h.body
            for h in receiver.of(session)
            if h.body.get("event") == "onack"
            and h.body["id"]["_serialized"] == message_id
            and h.body["ack"] == level
        ],
        message=f"ack {level} of {message_id}",
    )
    ack: dict[str, Any] = hooks[0]
    return ack


# --- a failed lookup ----------------------------------------------------------------------------


def test_a_failed_lookup_is_a_400_that_still_sends_and_a_miss_wa_js_keeps_for_15_s(
    host: Host, name: str
) -> None:
    host.connect(name)
    body = {"phone": "5511987650011", "message": "one"}
    host.configure(number_check_fail_next=1)
    first = host.call("POST", name, "send-message", body)
    assert first.status_code == 400 and "não existe" in first.json()["message"]
    # The lookup failed on WhatsApp's side, then is kept as "no account": the host's own
    # check says so too, and the next send to the number meets the same 400, and goes too.
    checked = host.call("GET", name, "check-number-status/5511987650011")
    assert checked.status_code == 200
    assert checked.json()["response"]["numberExists"] is False
    again = host.call("POST", name, "send-message", {**body, "message": "two"})
    assert again.status_code == 400
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [(m["body"], m["to"]) for m in outbox] == [
        ("one", "5511987650011@c.us"),
        ("two", "5511987650011@c.us"),
    ]

    # Once the miss is no longer kept, the number is looked up again and found.
    host.configure(number_miss_cache_ms=300, number_check_fail_next=1)
    other = "5511987650012"
    assert host.call("GET", name, f"check-number-status/{other}").json()["response"] == {
        "id": f"{other}@c.us",
        "isBusiness": False,
        "canReceiveMessage": False,
        "numberExists": False,
        "status": 404,
    }
    time.sleep(0.4)
    found = host.call("GET", name, f"check-number-status/{other}").json()["response"]
    assert found["numberExists"] is True
    sent = host.call("POST", name, "send-message", {"phone": other, "message": "three"})
    assert sent.status_code == 201
    assert REAL_DEFAULTS["number_miss_cache_ms"] == 15_000  # queryWidExists keeps a miss 15 s


# --- the time a send takes ------------------------------------------------------------------------


def test_a_send_answers_once_whatsapp_took_it_with_the_message_already_out_and_acks_after(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    host.configure(send_time_ms=800, ack_received_ms=50, ack_read_ms=None)
    answered: dict[str, Any] = {}

    def send() -> None:
        started = time.monotonic()
        answer = host.call("POST", name, "send-message", {"phone": "5511987650013", "message": "x"})
        answered.update(status=answer.status_code, seconds=time.monotonic() - started)
        answered["at"] = time.monotonic()

    sending = threading.Thread(target=send)
    sending.start()
    out = wait_until(lambda: host.sim("GET", f"{name}/outbox").json()["outbox"])
    assert "status" not in answered  # on its way before the host answers
    sending.join(5)
    assert answered["status"] == 201 and answered["seconds"] >= 0.8
    ack_of(receiver, name, out[0]["id"])
    arrived = time.monotonic()
    assert arrived >= answered["at"]  # its acks come after the answer
    assert REAL_DEFAULTS["send_time_ms"] > 0


# --- what a file's acks report --------------------------------------------------------------------


def test_a_files_acks_carry_the_file_as_body_and_its_caption_type_and_hash(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    digest = base64.b64encode(hashlib.sha256(PDF).digest()).decode()

    captioned = send_file(host, name, PDF, "application/pdf", filename="a.pdf", caption="see")
    ack = ack_of(receiver, name, captioned["id"])
    # webhook.autoDownload: the body is the whole file; the caption is in `caption`.
    assert ack["body"] == base64.b64encode(PDF).decode()
    assert (ack["type"], ack["caption"], ack["mimetype"]) == ("document", "see", "application/pdf")
    assert (ack["filename"], ack["size"], ack["filehash"]) == ("a.pdf", len(PDF), digest)

    # Without a caption wa-js writes the file's name there.
    bare = send_file(host, name, PDF, "application/pdf", filename="b.pdf")
    assert ack_of(receiver, name, bare["id"])["caption"] == "b.pdf"

    # Without autoDownload the body is what WhatsApp keeps: an image's preview, no text.
    host.configure(auto_download=False)
    image = send_file(host, name, PNG, "image/png", filename="p.png", caption="pic")
    image_ack = ack_of(receiver, name, image["id"])
    assert image_ack["type"] == "image" and image_ack["caption"] == "pic"
    assert image_ack["body"].startswith("/9j/") and image_ack["body"] != "pic"
    document = send_file(host, name, PDF, "application/pdf", filename="c.pdf", caption="doc")
    assert ack_of(receiver, name, document["id"])["body"] == ""
