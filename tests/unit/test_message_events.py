"""The host's message events, in our terms."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.host_events import onmessage
from wa_gateway.event_records import IncomingFile
from wa_gateway.events.host_messages import ack_from_event, digits_of, inbound_from_event

NAME = "user_x"
ONMESSAGE = onmessage(NAME, "false_5511987654321@c.us_3A9F0C11D2", notifyName="Ana")


@pytest.mark.parametrize(
    ("jid", "digits"),
    [
        ("5511987654321@c.us", "5511987654321"),
        ("5511987654321:12@c.us", "5511987654321"),
        ("123456789012345@lid", "123456789012345"),
        ({"_serialized": "5511987654321@c.us"}, "5511987654321"),
        ("status@broadcast", None),
        ("abc@c.us", None),
        (None, None),
    ],
)
def test_numbers_are_kept_as_digits(jid: Any, digits: str | None) -> None:
    assert digits_of(jid) == digits


def test_an_incoming_chat_message() -> None:
    message = inbound_from_event(NAME, ONMESSAGE)
    assert message is not None
    assert (message.wpp_message_id, message.phone, message.body) == (
        ONMESSAGE["id"],
        "5511987654321",
        "oi",
    )
    assert message.contact_name == "Ana" and message.account_phone == "5511912345678"
    assert not message.from_me


def test_media_keeps_its_caption_not_the_base64_file() -> None:
    event = {**ONMESSAGE, "type": "image", "body": "/9j/" + "A" * 5000, "caption": "look"}
    message = inbound_from_event(NAME, event)
    assert message is not None and message.body == "look" and message.message_type == "image"
    bare = inbound_from_event(NAME, {**event, "caption": None})
    assert bare is not None and bare.body == ""
    assert bare.media is not None and bare.media.mime_type is None


def test_media_carries_its_metadata_and_a_file_over_the_limit_is_not_fetched() -> None:
    event = {
        **ONMESSAGE,
        "type": "document",
        "mimetype": "application/pdf",
        "filename": "menu.pdf",
        "size": 1234,
    }
    message = inbound_from_event(NAME, event)
    assert message is not None and message.media == IncomingFile(
        mime_type="application/pdf", filename="menu.pdf", size=1234, ext="pdf", state="pending"
    )
    big = inbound_from_event(NAME, {**event, "size": 17 * 1024 * 1024})
    assert big is not None and big.media is not None and big.media.state == "too_large"


def test_groups_and_status_broadcasts_only_when_asked() -> None:
    group = {**ONMESSAGE, "from": "120363025246125486@g.us", "isGroupMsg": True}
    status = {**ONMESSAGE, "from": "status@broadcast", "chatId": "status@broadcast"}
    assert inbound_from_event(NAME, group) is None
    assert inbound_from_event(NAME, status) is None
    assert inbound_from_event(NAME, group, groups=True) is not None


def test_a_message_written_on_the_owners_phone() -> None:
    event = {
        **ONMESSAGE,
        "event": "onselfmessage",
        "fromMe": True,
        "from": "5511912345678@c.us",
        "to": "5511987654321@c.us",
    }
    message = inbound_from_event(NAME, event)
    assert message is not None and message.from_me
    assert message.phone == "5511987654321" and message.account_phone == "5511912345678"


@pytest.mark.parametrize("broken", [{"id": None}, {"id": 5}, {"from": "nobody"}])
def test_unreadable_messages_are_ignored(broken: dict[str, Any]) -> None:
    assert inbound_from_event(NAME, {**ONMESSAGE, **broken}) is None


@pytest.mark.parametrize(
    ("ack", "status"), [(-1, "failed"), (1, "sent"), (2, "delivered"), (3, "read"), (4, "read")]
)
def test_ack_levels(ack: int, status: str) -> None:
    event = {
        "event": "onack",
        "id": {
            "fromMe": True,
            "remote": "5511987654321@c.us",
            "id": "3EB0",
            "_serialized": "true_5511987654321@c.us_3EB0",
        },
        "ack": ack,
        "body": "Olá",
        "to": "5511987654321@c.us",
    }
    parsed = ack_from_event(NAME, event)
    assert parsed is not None
    assert (parsed.wpp_message_id, parsed.status, parsed.phone, parsed.body) == (
        "true_5511987654321@c.us_3EB0",
        status,
        "5511987654321",
        "Olá",
    )


@pytest.mark.parametrize("ack", [0, None, "3", True, 9])
def test_acks_that_say_nothing_new(ack: Any) -> None:
    event = {"event": "onack", "id": {"_serialized": "true_x@c.us_1"}, "ack": ack}
    assert ack_from_event(NAME, event) is None


def ack_event(ack: int, *, from_me: bool = True, to: str = "5511987654321@c.us") -> dict[str, Any]:
    serialized = f"{str(from_me).lower()}_{to}_3EB0"
    return {
        "event": "onack",
        "id": {"fromMe": from_me, "remote": to, "id": "3EB0", "_serialized": serialized},
        "ack": ack,
        "body": "Olá",
        "to": to,
    }


@pytest.mark.parametrize(
    ("ack", "code"),
    [
        (-7, "md_downgrade"),
        (-6, "inactive"),
        (-5, "content_unuploadable"),
        (-4, "content_too_big"),
        (-3, "content_gone"),
        (-2, "expired"),
        (-1, "failed"),
    ],
)
def test_every_negative_ack_fails_the_message_with_a_readable_code(ack: int, code: str) -> None:
    parsed = ack_from_event(NAME, ack_event(ack))
    assert parsed is not None
    assert (parsed.status, parsed.failure_code) == ("failed", code)


@pytest.mark.parametrize("ack", [0, 5])
def test_clock_and_peer_acks_say_nothing_new(ack: int) -> None:
    assert ack_from_event(NAME, ack_event(ack)) is None


def test_acks_of_incoming_messages_are_not_the_gateways_business() -> None:
    assert ack_from_event(NAME, ack_event(3, from_me=False)) is None


def test_an_ack_to_a_lid_names_the_lid_and_no_phone() -> None:
    parsed = ack_from_event(NAME, ack_event(2, to="123456789012345@lid"))
    assert parsed is not None
    assert (parsed.phone, parsed.lid, parsed.status) == (None, "123456789012345", "delivered")


def test_a_sender_named_by_a_lid_keeps_the_lid_and_no_phone() -> None:
    lid = "123456789012345@lid"
    event = {**ONMESSAGE, "from": lid, "chatId": lid, "sender": {"id": lid, "pushname": "Ana"}}
    parsed = inbound_from_event(NAME, event)
    assert parsed is not None
    assert (parsed.phone, parsed.contact_lid, parsed.contact_name) == (
        None,
        "123456789012345",
        "Ana",
    )


def test_a_files_ack_gives_its_caption_and_digest_never_its_body() -> None:
    """wppconnect's ack is the message model: a file's body is a preview, or the whole file
    under autoDownload; what names it is its caption and WhatsApp's filehash."""
    digest = bytes(range(32))
    event = {
        **ack_event(2),
        "type": "document",
        "body": "JVBERi0xLjQK" * 100,  # the file, base64
        "caption": "the menu",
        "mimetype": "application/pdf",
        "filehash": base64.b64encode(digest).decode(),
    }
    parsed = ack_from_event(NAME, event)
    assert parsed is not None
    assert (parsed.body, parsed.message_type, parsed.sha256) == (
        "the menu",
        "document",
        digest.hex(),
    )
    no_caption = ack_from_event(NAME, {**event, "caption": None, "filehash": "not base64"})
    assert no_caption is not None
    assert (no_caption.body, no_caption.sha256) == ("", None)
    text = ack_from_event(NAME, ack_event(2))
    assert text is not None
    assert (text.body, text.message_type, text.sha256) == ("Olá", "chat", None)
