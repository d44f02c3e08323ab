"""The records of the scheduled passes: what the purge, the scheduler and reconcile claim from
the store and hand back to it. Plain records, as in ``records``.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

from wa_gateway.records import (
    Ack,
    HostPlacement,
    HostRecord,
    InboundMessage,
    LidLookup,
    MediaFetch,
    SendPlan,
    SessionRecord,
    SessionUpdate,
)

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


class PurgePass(NamedTuple):
    hosts: list[HostRecord]
    batch: PurgeBatch
    events_deleted: int
    tokens: list[StoredToken]


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


# --- reconcile ------------------------------------------------------------------------------


class PendingAck(NamedTuple):
    """An outbound message whose ack may still change (no id: a send whose answer never came)."""

    wpp_message_id: str | None
    phone: str | None
    contact_lid: str | None
    status: str


class ReconcileClaim(NamedTuple):
    """What a pass claims: a batch of the live sessions put right longest ago (and not since
    ``pass_started``, the database's time of the pass's first claim), or the one named."""

    batch_size: int
    lease_s: int
    ack_window_s: int  # outbound messages younger than this may still change
    ack_limit: int  # at most this many of them a session
    session_name: str | None
    pass_started: str | None


class ReconcileTarget(NamedTuple):
    """A session leased to one reconcile pass, with what it takes to ask its host."""

    session: SessionRecord
    host_token: str | None
    host: HostPlacement | None
    mark: int | None  # host time (s) up to which this attempt's chats were looked at
    linked_at: int | None  # when the session last connected (s since the epoch)
    pending: tuple[PendingAck, ...]


class FoundMessage(NamedTuple):
    """A message the host has and the database missed, with the host's JSON of it (what the
    event log keeps as ``reconcile.message``)."""

    message: InboundMessage
    payload: Mapping[str, Any]


class FoundAck(NamedTuple):
    ack: Ack
    payload: Mapping[str, Any]  # what the event log keeps as ``reconcile.ack``


class ReconcileFindings(NamedTuple):
    """What a pass found on the host for one session, to apply in one transaction."""

    session_name: str
    seen_updated_at: str | None  # the session row as the claim read it
    update: SessionUpdate | None  # the host's state now, None: nothing to say
    host_status: str | None
    inbound: tuple[FoundMessage, ...]  # oldest first
    acks: tuple[FoundAck, ...]
    mark: int | None
    host_token: str | None


class ReconcileApplied(NamedTuple):
    session: SessionRecord
    status_changed: bool
    stored: int
    acks: int
    lid_lookups: tuple[LidLookup, ...]
    media_fetches: tuple[MediaFetch, ...] = ()
