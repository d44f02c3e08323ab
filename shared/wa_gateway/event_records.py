"""What the host's webhook events become: one event as logged and applied (``EventRecord``),
what storing it did, and the changes of messages and groups that some events carry (a
reaction, an edit, a deletion for everyone; a group's subject and participants). Plain
records, as in ``records``.
"""

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from wa_gateway.records import Ack, InboundMessage, LidLookup, SessionUpdate


class EventRecord(NamedTuple):
    """One host event as logged and applied: ``kind`` says what it changes, ``args`` how."""

    session_name: str
    host_id: str | None
    attempt: int | None
    event: str
    dedup_key: str
    payload: Mapping[str, Any]
    kind: Literal["session", "inbound", "ack", "change", "group", "none"]
    args: "SessionUpdate | InboundMessage | Ack | MessageChange | GroupUpdate | None"


class IngestResult(NamedTuple):
    stored: bool
    changed: bool = False
    seq: int | None = None
    reason: str | None = None
    lid_lookup: LidLookup | None = None
    media_message_id: str | None = None  # a file now due to fetch (the media function's)


class MessageChange(NamedTuple):
    """An edit, a deletion for everyone or a reaction of a message, by WhatsApp's id of it."""

    session_name: str
    target: str  # WhatsApp's id of the message changed
    kind: Literal["edit", "revoke", "reaction"]
    reactor: str | None = None  # a reaction's author: "me", or "<digits>@c.us" / "<digits>@lid"
    body: str | None = None  # an edit's new text
    emoji: str | None = None  # a reaction's emoji; "" when it was taken back
    phone: str | None = None  # a reaction's author: their number
    contact_lid: str | None = None  # or their LID
    at_ms: int | None = None  # the change's own time on WhatsApp (ms)


class GroupParticipant(NamedTuple):
    id: str  # "<digits>@c.us" or "<digits>@lid"
    admin: bool = False


class GroupUpdate(NamedTuple):
    """What the host said about a group: its subject or whole participant list, or one change
    of its participants."""

    session_name: str
    group_id: str
    subject: str | None = None
    participants: tuple[GroupParticipant, ...] | None = None  # the whole list
    action: Literal["add", "remove", "promote", "demote"] | None = None
    who: tuple[str, ...] = ()  # the participants the action is about
