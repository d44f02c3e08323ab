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


class ReconcileTarget(NamedTuple):
    """A session leased to one reconcile pass, with what it takes to ask its host."""

    session: SessionRecord
    host_token: str | None
    host: HostPlacement | None
    mark: int | None  # host time (s) up to which this attempt's chats were looked at
    linked_at: int | None  # when the session last connected (s since the epoch)
    pending: tuple[PendingAck, ...]


class ReconcileFindings(NamedTuple):
    """What a pass found on the host for one session, to apply in one transaction."""

    session_name: str
    seen_updated_at: str | None  # the session row as the claim read it
    update: SessionUpdate | None  # the host's state now, None: nothing to say
    host_status: str | None
    inbound: tuple[tuple[InboundMessage, Mapping[str, Any]], ...]  # (message, logged payload)
    acks: tuple[tuple[Ack, Mapping[str, Any]], ...]
    mark: int | None
    host_token: str | None


class ReconcileApplied(NamedTuple):
    session: SessionRecord
    status_changed: bool
    stored: int
    acks: int
    lid_lookups: tuple[LidLookup, ...]
