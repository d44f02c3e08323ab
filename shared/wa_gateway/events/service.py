"""Host webhook events: classified, logged once and applied, in one database round trip.

Every event for a known session goes into the event log (deduplicated by a hash of its body,
numbered per session), then changes what it is about: the session's state, an inbound
message, a message's delivery status, an edit, deletion or reaction of a message, or a group's
participants (:mod:`wa_gateway.events.kinds`). Duplicates are recognised by the log and change
nothing; unknown sessions, sessions placed on another host, and the session events of an earlier
attempt whose URL the host no longer holds (the webhook URL names its attempt) are ignored.
Events the gateway has no use for (presence, polls, calls, acks of incoming messages...)
are dropped before the database. When an incoming message names its sender by a LID the
session has not mapped yet, the host is asked for the number behind it
(:mod:`wa_gateway.events.contacts`); when it carries a file, the media function is started to
fetch it (:mod:`wa_gateway.lambda_invoke`): the webhook does not wait for the host's download.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from wa_gateway.event_records import (
    Ack,
    EventRecord,
    GroupUpdate,
    InboundMessage,
    IngestResult,
    MessageChange,
)
from wa_gateway.events import kinds
from wa_gateway.events.host_messages import ack_from_event, inbound_from_event, is_incoming_ack
from wa_gateway.records import SessionUpdate
from wa_gateway.sessions import qr, transitions
from wa_gateway.store import Store

if TYPE_CHECKING:
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.lambda_invoke import FunctionStart

SESSION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MESSAGE_EVENTS = {"onmessage", "onselfmessage", "unreadmessages"}
# Events that change a message the gateway keeps (``events.kinds``).
CHANGE_EVENTS: dict[str, Callable[[str, Mapping[str, Any]], MessageChange | None]] = {
    "onreactionmessage": kinds.reaction_from_event,
    "onrevokedmessage": kinds.revoke_from_event,
}
MAX_LOGGED_BYTES = 16 * 1024
_SUMMARY_KEYS = ("event", "id", "type", "from", "to", "ack", "status", "fromMe", "t")
# Events the host sends by default that change nothing the gateway keeps.
UNUSED_EVENTS = frozenset(
    {
        "onpresencechanged",
        "onpollresponse",
        "onupdatelabel",
        "incomingcall",
        "location",
    }
)


def is_unused(event: Mapping[str, Any]) -> bool:
    """True for an event the gateway neither logs nor applies."""
    name = event.get("event")
    return name in UNUSED_EVENTS or (name == "onack" and is_incoming_ack(event))


class EventPolicy(NamedTuple):
    """Which inbound messages are kept: group messages are, status broadcasts are not, by
    default."""

    groups: bool = True
    status_broadcasts: bool = False


DEFAULT_POLICY = EventPolicy()


class EventService:
    """What the webhook does with a host's event: log it once and apply it."""

    def __init__(
        self,
        store: Store,
        policy: EventPolicy = DEFAULT_POLICY,
        contacts: Callable[[], ContactLookup] | None = None,
        media: Callable[[], FunctionStart | None] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self._contacts = contacts  # built on first need: only LID senders call the host
        self._media = media  # built on first need: only media messages start the function

    def apply(
        self,
        session_name: str | None,
        event: Mapping[str, Any],
        host_id: str | None = None,
        attempt: int | None = None,
    ) -> IngestResult:
        """Log and apply one event (see the module docstring); nothing is stored for an unused
        event, or one that names no session, or not a well-formed one."""
        if is_unused(event):
            return IngestResult(stored=False, reason="unused")
        if not session_name:
            return IngestResult(stored=False, reason="no_session")
        if not SESSION_NAME.match(session_name):
            return IngestResult(stored=False, reason="bad_session_name")
        record = to_record(session_name, event, self.policy, host_id, attempt)
        result = self.store.ingest_event(record)
        if result.lid_lookup is not None and self._contacts is not None:
            self._contacts().resolve(result.lid_lookup)
        if result.media_message_id is not None and self._media is not None:
            kick = self._media()
            if kick is not None:
                kick(message_ids=[result.media_message_id])
        return result


def to_record(
    session_name: str,
    event: Mapping[str, Any],
    policy: EventPolicy = DEFAULT_POLICY,
    host_id: str | None = None,
    attempt: int | None = None,
) -> EventRecord:
    name = str(event.get("event"))[:64]
    kind: Any = "none"
    args: SessionUpdate | InboundMessage | Ack | MessageChange | GroupUpdate | None = None
    if name in CHANGE_EVENTS:
        args, kind = CHANGE_EVENTS[name](session_name, event), "change"
    elif name == "onparticipantschanged":
        args, kind = kinds.participants_from_event(session_name, event), "group"
    elif name in MESSAGE_EVENTS:
        args = inbound_from_event(
            session_name, event, groups=policy.groups, status_broadcasts=policy.status_broadcasts
        )
        kind = "inbound"
    elif name == "onack":
        args = ack_from_event(session_name, event)
        kind = "ack"
    else:
        update = transitions.from_event(session_name, event)
        args = None if update is None else qr.with_qr_image(update)
        kind = "session"
    if args is None:
        kind = "none"
    return EventRecord(
        session_name=session_name,
        host_id=host_id,
        attempt=attempt,
        event=name,
        dedup_key=dedup_key(event),
        payload=loggable(event),
        kind=kind,
        args=args,
    )


def dedup_key(event: Mapping[str, Any]) -> str:
    """The same event delivered twice has the same key (the session name aside)."""
    body = {k: v for k, v in event.items() if k != "session"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def loggable(event: Mapping[str, Any]) -> dict[str, Any]:
    """What the log keeps of an event: no QR image, no media file, at most 16 KiB."""
    kept = {k: v for k, v in event.items() if k not in ("session", "qrcode")}
    if kept.get("type") not in (None, "chat") and isinstance(kept.get("body"), str):
        kept["body"] = f"[{kept['type']}]"
    if len(json.dumps(kept, ensure_ascii=False)) > MAX_LOGGED_BYTES:
        kept = {k: kept[k] for k in _SUMMARY_KEYS if k in kept}
        kept["truncated"] = True
    return kept
