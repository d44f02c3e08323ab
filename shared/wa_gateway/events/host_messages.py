"""The host's message events (``onmessage``, ``onselfmessage``, ``onack``) in our terms.

WhatsApp ids look like ``5511987654321@c.us`` (a phone), ``5511987654321:12@c.us`` (a phone's
device), ``123456789012345@lid`` (a privacy id instead of a phone), ``120363…@g.us`` (a group)
and ``status@broadcast``. We keep the digits before ``@``/``:``: a phone's as ``phone``, a LID's
as ``contact_lid`` (the store fills in the phone the host maps it to). An ack's ``id`` is an
object (``{fromMe, remote, id, _serialized}``), a message's ``id`` the serialized string.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from wa_gateway.event_records import Ack, InboundMessage
from wa_gateway.events import kinds

MAX_STORED_BODY = 65_536
MEDIA_MESSAGE_TYPES = frozenset({"image", "video", "audio", "ptt", "document", "sticker"})
"""The host's message types that carry a file the gateway keeps (``media.incoming``)."""
NOTICE_TYPES = frozenset(
    {
        "notification",
        "notification_template",
        "group_notification",
        "gp2",
        "broadcast_notification",
        "e2e_notification",
        "call_log",
        "protocol",
    }
)
"""The system message types of wa-js's ``MSG_TYPE`` (a chat's encryption notice, a group's
changes, a call's log, the protocol messages that carry revokes and edits): notices, never
stored as messages, whichever door brings them (get-messages lists them; onmessage may).
The one list of them: ``revoked``, ``ciphertext`` and the rest are messages."""
_DIGITS = re.compile(r"^[0-9]{5,20}$")

# The library's AckType (-7 to 5): 0 (CLOCK, still on the phone) and 5 (PEER) say nothing
# new; every negative one fails the message, for the reason kept as its failure code.
ACK_STATUS = {1: "sent", 2: "delivered", 3: "read", 4: "read"}
ACK_FAILURES = {
    -7: "md_downgrade",
    -6: "inactive",
    -5: "content_unuploadable",
    -4: "content_too_big",
    -3: "content_gone",
    -2: "expired",
    -1: "failed",
}


def digits_of(jid: Any) -> str | None:
    """The number in a WhatsApp id, or None if there is none."""
    if isinstance(jid, Mapping):
        jid = jid.get("_serialized") or jid.get("user")
    if not isinstance(jid, str):
        return None
    number = jid.split("@", 1)[0].split(":", 1)[0]
    return number if _DIGITS.match(number) else None


def lid_of(jid: Any) -> str | None:
    """The digits of a privacy id (``NNN@lid``), or None for anything else."""
    if isinstance(jid, Mapping):
        jid = jid.get("_serialized")
    if not isinstance(jid, str) or not jid.endswith("@lid"):
        return None
    return digits_of(jid)


def serialized_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("_serialized")
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _is_group(event: Mapping[str, Any], jid: Any) -> bool:
    return bool(event.get("isGroupMsg")) or (isinstance(jid, str) and jid.endswith("@g.us"))


def _body(event: Mapping[str, Any], kind: str) -> str:
    if kind == "chat":
        body = event.get("body")
        return body[:MAX_STORED_BODY] if isinstance(body, str) else ""
    # Media: with autoDownload the host puts the whole file, base64, in `body`; keep the caption.
    caption = event.get("caption")
    if isinstance(caption, str) and caption:
        return caption[:MAX_STORED_BODY]
    return "" if kind in MEDIA_MESSAGE_TYPES else f"[{kind}]"


def inbound_from_event(
    session_name: str,
    event: Mapping[str, Any],
    *,
    groups: bool = False,
    status_broadcasts: bool = False,
) -> InboundMessage | None:
    """An ``onmessage``/``onselfmessage``/``unreadmessages`` event as a message to store; None
    for a notice, an unreadable event, or a group or status broadcast not asked for."""
    wpp_id = serialized_id(event.get("id"))
    if wpp_id is None:
        return None
    from_me = bool(event.get("fromMe")) or event.get("event") == "onselfmessage"
    sender, recipient = event.get("from"), event.get("to")
    other = recipient if from_me else sender
    group = kinds.group_of(event) if _is_group(event, other) else None
    if "status@broadcast" in (sender, recipient, event.get("chatId")):
        if not status_broadcasts:
            return None
    elif group is not None and not groups:
        return None
    # A group message's chat is the group: who wrote it is its author, not a contact.
    lid = None if group is not None else lid_of(other)
    phone = None if group is not None or lid is not None else digits_of(other)
    if phone is None and lid is None and group is None:
        return None
    kind = event.get("type") if isinstance(event.get("type"), str) else "chat"
    if kind in NOTICE_TYPES:
        return None
    sender_info = event.get("sender")
    if not isinstance(sender_info, Mapping):
        sender_info = {}
    name = event.get("notifyName") or sender_info.get("pushname") or sender_info.get("name")
    media = None
    if kind in MEDIA_MESSAGE_TYPES:
        from wa_gateway.media.incoming import metadata

        media = metadata(event)
    carried = kinds.kinds_of(event)
    return InboundMessage(
        session_name=session_name,
        wpp_message_id=wpp_id,
        phone=phone,
        body=carried.body if carried.body is not None else _body(event, str(kind)),
        contact_name=name[:200] if isinstance(name, str) and not from_me else None,
        message_type=str(kind)[:32],
        from_me=from_me,
        account_phone=_phone_of(sender if from_me else recipient),
        contact_lid=lid,
        media=media,
        group_id=group,
        author=kinds.author_of(event) if group is not None and not from_me else None,
        reply_to_wpp_id=carried.reply_to_wpp_id,
        location=carried.location,
        vcard=carried.vcard,
        host_t=carried.host_t,
        edited_ms=carried.edited_ms,
        revoked=carried.revoked,
    )


def _phone_of(jid: Any) -> str | None:
    return None if lid_of(jid) is not None else digits_of(jid)


def is_incoming_ack(event: Mapping[str, Any]) -> bool:
    """An ack of a message someone else sent (``id.fromMe`` false): read or played by the
    owner; nothing the gateway tracks."""
    raw_id = event.get("id")
    if isinstance(raw_id, Mapping):
        return raw_id.get("fromMe") is False
    return isinstance(raw_id, str) and raw_id.startswith("false_")


def ack_from_event(session_name: str, event: Mapping[str, Any]) -> Ack | None:
    """An ``onack`` event as a delivery status, or None for acks that say nothing new."""
    raw_id = event.get("id")
    wpp_id = serialized_id(raw_id)
    ack = event.get("ack")
    if wpp_id is None or not isinstance(ack, int) or isinstance(ack, bool):
        return None
    failure = ACK_FAILURES.get(ack)
    status = "failed" if failure else ACK_STATUS.get(ack)
    if status is None or is_incoming_ack(event):
        return None
    remote = raw_id.get("remote") if isinstance(raw_id, Mapping) else None
    to = event.get("to") or remote
    raw_kind = event.get("type")
    kind = raw_kind if isinstance(raw_kind, str) else "chat"
    body = event.get("body")
    return Ack(
        session_name=session_name,
        wpp_message_id=wpp_id,
        status=status,
        phone=_phone_of(to),
        # A file's body is its preview, or the whole file under autoDownload: what matches
        # a send whose answer never came is its caption, and the file's digest.
        body=_body(event, kind) if kind != "chat" or isinstance(body, str) else None,
        lid=lid_of(to),
        failure_code=failure,
        message_type=kind[:32],
        sha256=_file_digest(event.get("filehash")) if kind != "chat" else None,
    )


def _file_digest(filehash: Any) -> str | None:
    """WhatsApp's ``filehash`` (the file's SHA-256 in base64) in hex, as the outbox keeps it."""
    if not isinstance(filehash, str) or len(filehash) != 44:
        return None
    try:
        digest = base64.b64decode(filehash, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None
