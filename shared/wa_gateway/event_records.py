"""What the host's events become, whichever door brings them (the webhook, reconcile's read
back): a received message with its file and kind (``InboundMessage``), an ack, a sender's
LID to look up; one webhook event as logged and applied (``EventRecord``) and what storing it
did; and the changes of messages and groups that some events carry (a reaction, an edit, a
deletion for everyone; a group's subject and participants). Plain records, as in ``records``.
"""

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Self

from wa_gateway.records import HostPlacement, SessionUpdate


class IncomingFile(NamedTuple):
    """A received file as the host describes it (``media.incoming.metadata``), before it is
    fetched: kept at ``<user id>/<session id>/<message id>.<ext>``."""

    mime_type: str | None
    filename: str | None
    size: int | None
    ext: str | None
    state: str  # pending (to fetch) or too_large


class Location(NamedTuple):
    """A location message's place."""

    lat: float
    lng: float
    name: str | None  # the place's name and address


class InboundMessage(NamedTuple):
    session_name: str
    wpp_message_id: str
    phone: str | None  # None: the sender is known by ``contact_lid`` only, or a group's
    body: str
    contact_name: str | None
    message_type: str
    from_me: bool
    account_phone: str | None
    contact_lid: str | None = None
    media: IncomingFile | None = None
    # What the message kinds carry (``events.kinds``).
    group_id: str | None = None  # a group message's group (phone and contact_lid are None)
    author: str | None = None  # who wrote it in the group: digits, or "<digits>@lid"
    reply_to_wpp_id: str | None = None  # the message it quotes
    location: Location | None = None
    vcard: str | None = None
    host_t: int | None = None  # WhatsApp's time of the message (seconds)
    edited_ms: int | None = None  # when its text was last edited (ms), if it was
    revoked: bool = False  # deleted for everyone


class Ack(NamedTuple):
    session_name: str
    wpp_message_id: str
    status: str  # sent, delivered, read or failed
    phone: str | None
    body: str | None  # a text's body; a file's caption (never the file or its preview)
    lid: str | None = None
    failure_code: str | None = None  # why a failed message failed (expired, ...)
    message_type: str = "chat"  # the host's type of the message (chat, image, document...)
    sha256: str | None = None  # a file's digest as the host reports it (its filehash), hex


class LidLookup(NamedTuple):
    """A sender's LID the host is to be asked about, and how to reach the session on it."""

    session_name: str
    lid: str
    host_token: str | None
    host: HostPlacement | None

    @classmethod
    def from_json(cls, session_name: str, lid: str, access: Mapping[str, Any]) -> Self:
        """``access``: the session's ``host_token`` and ``host``, as the database gave them."""
        return cls(
            session_name, lid, access.get("host_token"), HostPlacement.from_json(access.get("host"))
        )


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
