"""Notices are not messages: whichever door brings them (the webhook, reconcile's
get-messages), an e2e_notification, a group's change, a call's log or a protocol message is
never made into a message to store."""

from __future__ import annotations

from typing import Any

import pytest

from wa_gateway.events.host_messages import NOTICE_TYPES, inbound_from_event

# wa-js 4.4.3's MSG_TYPE: the system message types (src/whatsapp/enums/MSG_TYPE.ts).
NOTICES = [
    "notification",
    "notification_template",
    "group_notification",
    "gp2",
    "broadcast_notification",
    "e2e_notification",
    "call_log",
    "protocol",
]


def onmessage(kind: str) -> dict[str, Any]:
    """An onmessage event of ``kind`` from a contact, as the host posts it."""
    return {
        "event": "onmessage",
        "id": "false_5511987654321@c.us_3A01",
        "type": kind,
        "from": "5511987654321@c.us",
        "to": "5511912345678@c.us",
        "fromMe": False,
    }


@pytest.mark.parametrize("kind", NOTICES)
def test_a_notice_is_not_a_message(kind: str) -> None:
    assert kind in NOTICE_TYPES
    assert inbound_from_event("s", onmessage(kind)) is None


@pytest.mark.parametrize("kind", ["chat", "image", "ptt", "ciphertext", "revoked", "vcard"])
def test_messages_of_every_other_kind_are_kept(kind: str) -> None:
    found = inbound_from_event("s", onmessage(kind))
    assert found is not None and found.message_type == kind
