"""WhatsApp message objects as the wppconnect library serializes them.

Ids have the form ``<fromMe>_<chatId>_<key>``: our own messages get a ``3EB0...`` key (as
WhatsApp Web makes them), incoming ones a phone-style ``3A...`` key, and incoming group
messages end with ``_<participant>``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any


def own_key() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


def phone_key() -> str:
    return "3A" + secrets.token_hex(9).upper()


def now() -> int:
    return int(time.time())


def to_wid(number: str) -> str:
    """``5511...`` becomes ``5511...@c.us``; an id that already has a server part is kept."""
    return number if "@" in number else f"{number}@c.us"


def derived_number(seed: str, prefix: str = "55119") -> str:
    """A stable 13-digit Brazilian mobile number derived from ``seed``."""
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[-8:]
    return prefix + digits


def derived_lid(number: str) -> str:
    """A stable 15-digit privacy id (LID) for ``number``."""
    digits = str(int(hashlib.sha256(f"lid:{number}".encode()).hexdigest(), 16))[-14:]
    return "1" + digits


def presence(chat_id: str, author: str, state: str) -> dict[str, Any]:
    """An ``onpresencechanged`` event (the library's PresenceEvent) for a chat."""
    group = chat_id.endswith("@g.us")
    event: dict[str, Any] = {
        "id": chat_id,
        "isOnline": state != "unavailable",
        "isGroup": group,
        "isUser": not group,
        "state": state,
        "t": int(time.time() * 1000),
    }
    if group:
        event["participants"] = [{"id": author, "state": state, "shortName": ""}]
    else:
        event["isContact"] = False
    return event


def derived_group_id(seed: str) -> str:
    digits = str(int(hashlib.sha256(f"group:{seed}".encode()).hexdigest(), 16))[-12:]
    return f"120363{digits}@g.us"


def contact(wid: str, *, is_me: bool, pushname: str | None = None) -> dict[str, Any]:
    number = wid.split("@")[0]
    result: dict[str, Any] = {
        "id": wid,
        "name": None if is_me else pushname,
        "shortName": None,
        "pushname": pushname,
        "type": "in",
        "isBusiness": False,
        "isEnterprise": False,
        "isSmb": False,
        "labels": [],
        "formattedName": pushname or f"+{number}",
        "isMe": is_me,
        "isMyContact": is_me,
        "isPSA": False,
        "isUser": wid.endswith(("@c.us", "@lid")),
        "isWAContact": True,
        "profilePicThumbObj": {},
        "msgs": None,
    }
    return result


def _base(
    own_wid: str,
    chat_id: str,
    body: str,
    msg_type: str,
    *,
    from_me: bool,
    author_wid: str,
    t: int | None = None,
    notify_name: str = "",
    pushname: str | None = None,
    media: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message in ``chat_id`` written by ``author_wid`` (the account itself when ``from_me``):
    its id, ``from``/``to``, sender and author follow from who wrote it where, ``t`` is now
    unless given, and a file's fields (``media``) go on top."""
    is_group = chat_id.endswith("@g.us")
    t = now() if t is None else t
    if from_me:
        serialized = f"true_{chat_id}_{own_key()}"
    else:
        participant = "" if author_wid == chat_id else f"_{author_wid}"
        serialized = f"false_{chat_id}_{phone_key()}{participant}"
    message: dict[str, Any] = {
        "id": serialized,
        "body": body,
        "type": msg_type,
        "t": t,
        "notifyName": notify_name,
        "from": own_wid if from_me else chat_id,
        "to": chat_id if from_me else own_wid,
        "self": "out" if from_me else "in",
        "ack": 1 if from_me else 0,
        "invis": False,
        "isNewMsg": True,
        "star": False,
        "kicNotified": False,
        "recvFresh": True,
        "isFromTemplate": False,
        "broadcast": False,
        "mentionedJidList": [],
        "groupMentions": [],
        "isForwarded": False,
        "labels": [],
        "hasReaction": False,
        "isEphemeral": False,
        "isStatusV3": False,
        "links": [],
        "chatId": chat_id,
        "fromMe": from_me,
        "sender": contact(author_wid, is_me=from_me, pushname=pushname),
        "timestamp": t,
        "content": body,
        "isGroupMsg": is_group,
        "isLink": False,
        "isMMS": False,
        "isMedia": False,
        "isNotification": False,
        "isPSA": False,
        "mediaData": {},
    }
    if not from_me and (is_group or author_wid != chat_id):
        message["author"] = author_wid
    if media:
        message.update(media)
        message["isMedia"] = True
        message["mediaData"] = {"type": msg_type, "mediaStage": "RESOLVED"}
    return message


def outgoing_message(
    own_wid: str,
    chat_id: str,
    body: str,
    *,
    msg_type: str = "chat",
    quoted_msg_id: str | None = None,
    media: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Message ``sendText`` (or a media send) resolves with."""
    message = _base(own_wid, chat_id, body, msg_type, from_me=True, author_wid=own_wid, media=media)
    if quoted_msg_id:
        message["quotedMsgId"] = quoted_msg_id
    return message


def incoming_message(
    own_wid: str,
    chat_id: str,
    author_wid: str,
    body: str,
    *,
    notify_name: str,
    msg_type: str = "chat",
    media: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message from someone else, as ``onmessage`` delivers it."""
    return _base(
        own_wid,
        chat_id,
        body,
        msg_type,
        from_me=False,
        author_wid=author_wid,
        notify_name=notify_name,
        pushname=notify_name,
        media=media,
    )


_MEDIA_FIELDS = ("caption", "mimetype", "filename", "size", "filehash", "isMedia")


def ack_payload(message: dict[str, Any], ack: int, body: str | None = None) -> dict[str, Any]:
    """The raw message model ``onAck`` hands over: ``id`` is an object here, and a file's
    message keeps its fields (``caption``, ``mimetype``, ``filehash``...); ``body`` replaces
    its body (autoDownload puts the file there)."""
    serialized = str(message["id"])
    from_me, _, rest = serialized.partition("_")
    remote, _, key = rest.partition("_")
    return {
        "id": {
            "fromMe": from_me == "true",
            "remote": remote,
            "id": key.split("_")[0],
            "_serialized": serialized,
        },
        "body": message.get("body", "") if body is None else body,
        "type": message.get("type", "chat"),
        "t": message.get("t"),
        "subtype": None,
        "notifyName": "",
        "from": message.get("from"),
        "to": message.get("to"),
        "self": message.get("self", "out"),
        "ack": ack,
        "invis": False,
        "isNewMsg": False,
        "star": False,
        "recvFresh": False,
        "mentionedJidList": [],
        "isForwarded": False,
        "labels": [],
        **{key: message[key] for key in _MEDIA_FIELDS if key in message},
    }


def thumbnail_of(msg_type: str, seed: str | None) -> str:
    """What WhatsApp keeps as the ``body`` of a file's message: a small JPEG preview of an
    image, video or sticker, in base64 (stand-in bytes here), nothing for other files."""
    if msg_type not in ("image", "video", "sticker"):
        return ""
    digest = hashlib.sha256((seed or msg_type).encode()).digest()
    return base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + digest * 4).decode()


def message_type_for(mimetype: str) -> str:
    """WhatsApp's message type of a file: an Ogg file in Opus is a voice note (``ptt``)."""
    base = mimetype.split(";")[0].strip().lower()
    major = base.split("/")[0]
    if base == "image/webp":
        return "sticker"
    if base == "audio/ogg" and "codecs=opus" in mimetype.replace(" ", "").lower():
        return "ptt"
    if major in ("image", "video", "audio"):
        return major
    return "document"


_MEDIA_KEYS = ("body", "content", "caption", "mimetype", "size", "filename")
# What a message's kind adds (a reply's quote, a place, a card): unknown while undecrypted.
_KIND_KEYS: tuple[str, ...] = ("quotedMsgId", "quotedStanzaID", "quotedMsg", "lat", "lng", "loc")
_KIND_KEYS += ("vcardFormattedName", "vcardList")


def undecrypted(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as the library serializes it before WhatsApp Web has decrypted it: type
    ``ciphertext``, no body (``content`` is the body, so it goes too), no file, and nothing of
    what its kind carries."""
    bare = {k: v for k, v in message.items() if k not in _MEDIA_KEYS + _KIND_KEYS}
    bare.update(type="ciphertext", isMedia=False, mediaData={})
    return bare


def notice(own_wid: str, chat_id: str, kind: str, t: int) -> dict[str, Any]:
    """A notice of a chat (``e2e_notification`` opening a chat, ``gp2`` a group's change), as
    getMessages serializes it: a message of its own id, no body, ``isNotification``."""
    message = _base(
        own_wid, chat_id, from_me=False, author_wid=chat_id, body="", msg_type=kind, t=t
    )
    message.update(isNotification=True, subtype="encrypt" if kind == "e2e_notification" else "add")
    return message
