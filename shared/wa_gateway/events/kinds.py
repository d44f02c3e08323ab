"""WhatsApp's message kinds in our terms: what a message carries beyond its text, and the host's
events that change a message or a group.

Read off a message (``onmessage``, ``onselfmessage``, ``unreadmessages`` and the messages
reconcile reads back), as wppconnect serializes them (``toJSON()`` of WhatsApp Web's message
model, then ``id``, ``from``, ``to``, ``author``, ``chatId``, ``quotedMsgId``... as strings):

* a group message: ``chatId``/``from`` ``<digits>[-<digits>]@g.us``, its writer in ``author``
  (``<digits>@c.us`` or ``<digits>@lid``);
* a reply: ``quotedMsgId``, WhatsApp's id of the message it quotes;
* a location: ``type: "location"``, ``lat``, ``lng`` and ``loc`` (name and address, one line
  each); its ``body`` is a JPEG thumbnail, never kept;
* a contact card: ``type: "vcard"`` with the vCard in ``body`` and the name in
  ``vcardFormattedName``; several cards: ``type: "multi_vcard"``, ``vcardList`` of
  ``{displayName, vcard}``;
* an edit: ``latestEditMsgKey`` and ``latestEditSenderTimestampMs`` (the message read back has
  its new text in ``body``); the host posts no event for an edit, so edits are seen when a
  message is read back (reconcile);
* a deletion for everyone: ``type: "revoked"``.

Events of their own: ``onreactionmessage`` (``id`` the reaction's key, ``msgId`` the message's,
``reactionText``, ``timestamp``; "" takes a reaction back), ``onrevokedmessage`` (``refId`` the
deleted message's id) and ``onparticipantschanged`` (``groupId``, ``action``, ``who``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, cast

from wa_gateway.event_records import GroupUpdate, Location, MessageChange

MAX_VCARD_CHARS = 65_536
MAX_NAME_CHARS = 512
GROUP_ID = re.compile(r"^[0-9]{5,24}(-[0-9]{1,20})?@g\.us$")
_PERSON = re.compile(r"^([0-9]{5,20})(?::[0-9]+)?@(c\.us|lid|s\.whatsapp\.net)$")
_PARTICIPANT_ACTIONS: dict[str, Literal["add", "remove", "promote", "demote"]] = {
    "add": "add",
    "join": "add",
    "remove": "remove",
    "leaver": "remove",
    "leave": "remove",
    "promote": "promote",
    "demote": "demote",
}


def _jid(value: Any) -> str | None:
    """A WhatsApp id as its serialized string (an id may come as ``{_serialized}``)."""
    if isinstance(value, Mapping):
        value = value.get("_serialized")
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def person(value: Any) -> str | None:
    """A person's id as ``<digits>@c.us`` or ``<digits>@lid`` (a device suffix dropped), or
    None for anything else (a group, a broadcast)."""
    match = _PERSON.match(_jid(value) or "")
    if match is None:
        return None
    server = "lid" if match.group(2) == "lid" else "c.us"
    return f"{match.group(1)}@{server}"


def group_of(event: Mapping[str, Any]) -> str | None:
    """The group a message belongs to, or None for a message of a chat with one person."""
    for key in ("chatId", "from", "to"):
        jid = _jid(event.get(key))
        if jid is not None and GROUP_ID.match(jid):
            return jid
    return None


def author_of(event: Mapping[str, Any]) -> str | None:
    """Who wrote a group message: their number's digits, or ``<digits>@lid``."""
    sender = event.get("sender")
    writer = person(event.get("author")) or (
        person(sender.get("id")) if isinstance(sender, Mapping) else None
    )
    if writer is None:
        return None
    digits, server = writer.split("@")
    return writer if server == "lid" else digits


class MessageKinds(NamedTuple):
    """What a message carries beyond its text (the fields of ``InboundMessage`` they fill)."""

    body: str | None  # the text to keep instead of the message's own body (None: its own)
    reply_to_wpp_id: str | None
    location: Location | None
    vcard: str | None
    host_t: int | None
    edited_ms: int | None
    revoked: bool


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else None


def _location(event: Mapping[str, Any]) -> Location | None:
    lat, lng = _number(event.get("lat")), _number(event.get("lng"))
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    name = event.get("loc")
    name = name.strip()[:MAX_NAME_CHARS] if isinstance(name, str) and name.strip() else None
    return Location(lat, lng, name)


def _cards(event: Mapping[str, Any], kind: str) -> tuple[str | None, str | None]:
    """(the vCard text, the names shown) of a contact card message."""
    if kind == "vcard":
        card, name = event.get("body"), event.get("vcardFormattedName")
        cards = [(card, name)]
    else:
        items = event.get("vcardList")
        items = items if isinstance(items, list) else []
        cards = [
            (item.get("vcard"), item.get("displayName"))
            for item in items
            if isinstance(item, Mapping)
        ]
    texts = [card for card, _ in cards if isinstance(card, str) and card]
    names = [name for _, name in cards if isinstance(name, str) and name]
    vcard = "\n".join(texts)[:MAX_VCARD_CHARS] if texts else None
    return vcard, ", ".join(names)[:MAX_NAME_CHARS] if names else None


def kinds_of(event: Mapping[str, Any]) -> MessageKinds:
    """What ``event`` (a message) carries: see the module docstring."""
    kind = event.get("type")
    location = _location(event) if kind == "location" else None
    vcard, names = _cards(event, str(kind)) if kind in ("vcard", "multi_vcard") else (None, None)
    body: str | None = None
    if kind == "location":
        body = location.name or "" if location else ""
    elif vcard is not None or kind in ("vcard", "multi_vcard"):
        body = names or ""
    elif kind == "revoked":
        body = ""
    edited_ms = None
    if event.get("latestEditMsgKey"):
        edited_ms = _int(event.get("latestEditSenderTimestampMs"))
        if edited_ms is None:
            t = _int(event.get("t"))
            edited_ms = t * 1000 if t is not None else None
    return MessageKinds(
        body=body,
        reply_to_wpp_id=_jid(event.get("quotedMsgId")),
        location=location,
        vcard=vcard,
        host_t=_int(event.get("t")),
        edited_ms=edited_ms,
        revoked=kind == "revoked",
    )


def _ms(value: Any) -> int | None:
    """A time the host gives in seconds or in milliseconds, in milliseconds."""
    number = _int(value)
    if number is None:
        return None
    return number if number >= 10**11 else number * 1000


def _key_parts(key: Any) -> tuple[bool | None, str | None, str | None]:
    """(fromMe, remote, participant) of a message key: ``{fromMe, remote, participant,
    _serialized}`` or its serialized form ``<fromMe>_<remote>_<id>[_<participant>]``."""
    if isinstance(key, Mapping):
        from_me = key.get("fromMe")
        return (
            from_me if isinstance(from_me, bool) else None,
            _jid(key.get("remote")),
            _jid(key.get("participant")),
        )
    text = _jid(key)
    if text is None:
        return None, None, None
    parts = text.split("_")
    if len(parts) < 3 or parts[0] not in ("true", "false"):
        return None, None, None
    participant = parts[3] if len(parts) > 3 else None
    return parts[0] == "true", parts[1], participant


def reaction_from_event(session_name: str, event: Mapping[str, Any]) -> MessageChange | None:
    """An ``onreactionmessage`` event as a change of the message reacted to."""
    target = _jid(event.get("msgId"))
    emoji = event.get("reactionText")
    if target is None or not isinstance(emoji, str) or len(emoji.encode()) > 64:
        return None
    from_me, remote, participant = _key_parts(event.get("id"))
    if from_me is None:
        return None
    reactor = "me" if from_me else person(participant) or person(remote)
    if reactor is None:
        return None
    digits, _, server = reactor.partition("@")
    return MessageChange(
        session_name=session_name,
        target=target,
        kind="reaction",
        reactor=reactor,
        emoji=emoji,
        phone=digits if server == "c.us" else None,
        contact_lid=digits if server == "lid" else None,
        at_ms=_ms(event.get("timestamp")),
    )


def revoke_from_event(session_name: str, event: Mapping[str, Any]) -> MessageChange | None:
    """An ``onrevokedmessage`` event as the deletion of the message it names (``refId``)."""
    target = _jid(event.get("refId"))
    if target is None:
        return None
    return MessageChange(session_name=session_name, target=target, kind="revoke")


def participants_from_event(session_name: str, event: Mapping[str, Any]) -> GroupUpdate | None:
    """An ``onparticipantschanged`` event as a change of the group's participants."""
    group = _jid(event.get("groupId"))
    action = _PARTICIPANT_ACTIONS.get(str(event.get("action") or event.get("operation")))
    who = event.get("who")
    if group is None or not GROUP_ID.match(group) or action is None or not isinstance(who, list):
        return None
    people = tuple(p for p in (person(item) for item in who) if p is not None)
    if not people:
        return None
    return GroupUpdate(
        session_name=session_name,
        group_id=group,
        action=cast(Literal["add", "remove", "promote", "demote"], action),
        who=people,
    )
