"""The records of the scheduled passes: what the purge, the scheduler, reconcile and the media
pass claim from the store and hand back to it. Plain records, as in ``records``.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple, Self

from wa_gateway.event_records import Ack, GroupUpdate, InboundMessage, MessageChange
from wa_gateway.records import HostPlacement, HostRecord, SessionRecord, SessionUpdate
from wa_gateway.send_records import SendPlan

# --- the purge ------------------------------------------------------------------------------


class PurgedSession(NamedTuple):
    session_id: str
    host_id: str | None
    host_token: str | None


class StoredToken(NamedTuple):
    session_row_id: str
    session_name: str
    ciphertext: str


class PurgeBatch(NamedTuple):
    qr_cleared: int
    deleted: list[PurgedSession]
    scheduled_failed: int = 0  # the deleted sessions' scheduled messages (account_removed)


class PurgeLimits(NamedTuple):
    """What a purge clears, and how much at a time."""

    qr_ttl_s: int  # QR codes older than this are cleared
    stale_after_s: int  # sessions disconnected for longer than this are deleted
    batch_size: int  # sessions (and tokens to re-encrypt) per batch
    retention_s: int  # events older than this are forgotten
    events_batch_size: int
    active_key_id: str | None  # tokens under another key are re-encrypted (None: none)
    message_retention_s: int  # messages older than this are deleted (0: kept)
    files_batch_size: int  # files of deleted messages per Storage call


class PurgePass(NamedTuple):
    hosts: list[HostRecord]
    batch: PurgeBatch
    events_deleted: int
    tokens: list[StoredToken]
    messages_deleted: int
    trash: list[str]  # files of deleted messages to delete from the bucket


# --- the scheduler --------------------------------------------------------------------------


class ClaimedMessage(NamedTuple):
    """A due scheduled message the scheduler holds under a lease, with what it takes to send
    it (as a :class:`SendPlan`'s)."""

    session_name: str
    plan: SendPlan


class ClaimBatch(NamedTuple):
    claimed: list[ClaimedMessage]
    failed: int  # past their time by more than the grace, failed with a reason
    waiting: int  # sessions with due messages that are not connected or out of tokens


# --- media ----------------------------------------------------------------------------------


class MediaClaim(NamedTuple):
    """What a media pass claims: due files of connected sessions, or the ones named."""

    batch_size: int
    lease_s: int
    retry_s: int  # the wait after a first failed try; it doubles with each one
    max_attempts: int  # a file tried this often and still not given is unavailable
    message_ids: tuple[str, ...] | None  # these only (None: any due file)


class MediaFetch(NamedTuple):
    """A received file a media pass holds under its lease: to fetch from the host and store
    at ``path``; ``attempts`` counts this try."""

    session_name: str
    message_id: str
    wpp_message_id: str
    path: str
    host_token: str | None
    host: HostPlacement | None
    attempts: int = 1

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Self:
        """A file as ``gateway_claim_media`` gives it, with its session's host access."""
        return cls(
            item["session_name"],
            str(item["message_id"]),
            item["wpp_message_id"],
            item["path"],
            item.get("host_token"),
            HostPlacement.from_json(item.get("host")),
            int(item.get("attempts") or 1),
        )


# --- reconcile ------------------------------------------------------------------------------


class PendingAck(NamedTuple):
    """An outbound message whose ack may still change (no id: a send whose answer never came),
    with the chat ids its contact may have on the host (``gateway_contact_chats``)."""

    wpp_message_id: str | None
    phone: str | None
    contact_lid: str | None
    status: str
    chats: tuple[str, ...] = ()


class ReconcileClaim(NamedTuple):
    """What a pass claims: a batch of the live sessions put right longest ago (and not since
    ``pass_started``, the database's time of the pass's first claim), or the one named."""

    batch_size: int
    lease_s: int
    ack_window_s: int  # outbound messages younger than this may still change
    ack_limit: int  # at most this many of them a session
    session_name: str | None
    pass_started: str | None
    edit_window_s: int = 0  # chats with incoming messages this recent are read again (edits)


class ReconcileTarget(NamedTuple):
    """A session leased to one reconcile pass, with what it takes to ask its host."""

    session: SessionRecord
    host_token: str | None
    host: HostPlacement | None
    mark: int | None  # host time (s) up to which this attempt's chats were looked at
    linked_at: int | None  # when the session last connected (s since the epoch)
    pending: tuple[PendingAck, ...]
    lease: str | None = None  # this pass's lease: only its holder writes
    chats: Mapping[str, int] = {}  # chats read past the mark already: chat id -> host time
    recent_chats: tuple[str, ...] = ()  # chats whose incoming messages may still be edited


class FoundMessage(NamedTuple):
    """A message the host has and the database missed, with the host's JSON of it (what the
    event log keeps as ``reconcile.message``)."""

    message: InboundMessage
    payload: Mapping[str, Any]


class FoundAck(NamedTuple):
    ack: Ack
    payload: Mapping[str, Any]  # what the event log keeps as ``reconcile.ack``


class ReconcileChat(NamedTuple):
    """What a pass found in one chat, to apply at once: its missed messages and acks, and the
    host time it is read to (None: not to the mark), or why it could not be read."""

    session_name: str
    lease: str | None
    chat_id: str
    inbound: tuple[FoundMessage, ...]  # oldest first
    acks: tuple[FoundAck, ...]
    host_t: int | None
    skipped: str | None


class ChatApplied(NamedTuple):
    """What the store did with one chat's findings: the LIDs to ask the host about and the
    messages whose files are due to fetch."""

    stored: int
    acks: int
    lids: tuple[str, ...]
    media_message_ids: tuple[str, ...]


class ReconcileFindings(NamedTuple):
    """What a pass found on the host for the session itself, applied when it is done with it."""

    session_name: str
    lease: str | None
    seen_updated_at: str | None  # the session row as the claim read it
    update: SessionUpdate | None  # the host's state now, None: nothing to say
    host_status: str | None
    acks: tuple[FoundAck, ...]  # found by message id, outside the chats read
    mark: int | None
    host_token: str | None
    groups: tuple[GroupUpdate, ...] = ()  # subjects of the session's group chats
    changes: tuple[MessageChange, ...] = ()  # reactions read back from the host


class ReconcileApplied(NamedTuple):
    """What a pass changed for one session, chats and session together."""

    session: SessionRecord
    status_changed: bool
    stored: int
    acks: int
