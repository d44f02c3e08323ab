"""What the gateway's logic asks of the database, and nothing of how it gets there."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from wa_gateway.auth.caller import Caller
from wa_gateway.records import (
    HostPlacement,
    MediaOutcome,
    MessageRecord,
    SessionOnHost,
    SessionRecord,
    SessionStatus,
    SessionUpdate,
    StartPlan,
    StartRefusal,
    StartRequest,
    StartWait,
    UpdateResult,
)
from wa_gateway.send_records import FinishedSend, OutboundRequest, SendPlan, SendResult
from wa_gateway.store.conversations import ConversationCalls
from wa_gateway.store.housekeeping import HousekeepingCalls
from wa_gateway.store.media_files import MediaCalls
from wa_gateway.store.reconciling import ReconcileCalls
from wa_gateway.store.scheduling import SchedulingCalls
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # the webhook's records: imported by its call
    from wa_gateway.event_records import EventRecord, IngestResult


class Store(HousekeepingCalls, SchedulingCalls, ReconcileCalls, MediaCalls, ConversationCalls):
    """Typed calls to the gateway's SQL functions over any :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        qr_first_ttl_s: int = 60,
        qr_next_ttl_s: int = 20,
        send_burst: float = 10,
        send_rate_per_s: float = 20 / 60,
        send_lease_s: int = 30,
    ):
        self.transport = transport
        # The settings some calls pass beside their record, as those calls name them.
        self._qr_ttls = {"p_qr_first_ttl_s": qr_first_ttl_s, "p_qr_next_ttl_s": qr_next_ttl_s}
        self._governor = {
            "p_burst": send_burst,
            "p_rate_per_s": send_rate_per_s,
            "p_lease_s": send_lease_s,
        }

    @property
    def round_trips(self) -> int:
        return self.transport.round_trips

    @property
    def send_lease_s(self) -> int:
        """How long a send holds its outbox row (``SEND_LEASE``)."""
        return int(self._governor["p_lease_s"])

    def begin_start(self, request: StartRequest) -> StartPlan | StartRefusal | StartWait:
        """Create or lock the session, place it on a host if it needs one, and decide; or say
        to ask again shortly (our logout's browser may still hold the profile)."""
        result = self.transport.rpc("gateway_begin_start", {"p_start": sql_record(request)})
        if result["outcome"] == "wait":
            return StartWait(float(result["retry_in"]))
        if result["outcome"] != "ok":
            return StartRefusal(result["outcome"])
        return StartPlan(
            session=SessionRecord.from_row(result["session"]),
            action=result["action"],
            host_token=result.get("host_token"),
            opened=bool(result.get("opened")),
            host=HostPlacement.from_json(result.get("host")),
            stalled=bool(result.get("stalled")),
        )

    def apply_host_state(self, update: SessionUpdate) -> UpdateResult | None:
        """Apply ``update`` if it moves the session forward; None if no such session."""
        result = self.transport.rpc(
            "gateway_apply_host_state", {"p_update": sql_record(update), **self._qr_ttls}
        )
        return _update_result(result)

    def get_session(self, caller: Caller, session_name: str) -> SessionRecord | None:
        """The caller's own session of this name, read under their identity (RLS applies)."""
        row = self.transport.rpc(
            "gateway_get_session", {"p_session_name": session_name}, caller=caller
        )
        return None if row is None else SessionRecord.from_row(row)

    def session_for_host(self, *, user_id: str, session_name: str) -> SessionOnHost | None:
        """The user's session with its encrypted host token and its host (service role)."""
        result = self.transport.rpc(
            "gateway_session_for_host", {"p_user_id": user_id, "p_session_name": session_name}
        )
        if result is None:
            return None
        return SessionOnHost(
            session=SessionRecord.from_row(result["session"]),
            host_token=result.get("host_token"),
            host=HostPlacement.from_json(result.get("host")),
        )

    def repair_session(
        self, session_name: str, status: SessionStatus, reason: str | None = None
    ) -> UpdateResult | None:
        """Set the session to what the host says now, even if that is a step back."""
        result = self.transport.rpc(
            "gateway_repair_session",
            {"p_session_name": session_name, "p_status": status, "p_reason": reason},
        )
        return _update_result(result)

    # --- messages -------------------------------------------------------------------------

    def begin_send(self, request: OutboundRequest) -> SendPlan:
        asked = time.monotonic()
        result = self.transport.rpc(
            "gateway_begin_send",
            {"p_send": sql_record(request), **self._governor},
            # Without a key, a second call would queue a second message.
            repeatable=request.idempotency_key is not None,
        )
        return SendPlan.from_json(result, asked=asked, lease_s=self.send_lease_s)

    def hold_send(self, held: MessageRecord, lease_s: int) -> tuple[bool, MessageRecord]:
        """Keep the outbox row ``held`` (as this caller took it) ``lease_s`` seconds more, 0
        to give it back: (whether this caller still held it, the row as it is now)."""
        result = self.transport.rpc(
            "gateway_hold_send",
            {"p_message_id": held.id, "p_attempt": held.attempts, "p_lease_s": lease_s},
        )
        return bool(result["held"]), MessageRecord.from_row(result["message"])

    def finish_send(
        self,
        held: MessageRecord,
        outcome: SendResult,
        *,
        wpp_message_id: str | None = None,
        error_code: str | None = None,
        session_lost: bool = False,
        phone: str | None = None,
        contact_lid: str | None = None,
    ) -> MessageRecord:
        """Record what the host did with the send of ``held`` (the row as this caller took
        it: a caller that lost it since changes nothing, but a send it made is kept).
        ``phone``/``contact_lid``: the canonical id the host sent to, kept on the row."""
        finished = FinishedSend(
            held.id,
            held.attempts,
            outcome,
            wpp_message_id,
            error_code,
            session_lost,
            phone,
            contact_lid,
        )
        result = self.transport.rpc("gateway_finish_send", {"p_finished": sql_record(finished)})
        return MessageRecord.from_row(result["message"])

    def record_media(self, outcome: MediaOutcome) -> str:
        """What became of a message's file; answers recorded, later (it is tried again),
        not_pending (its fate was known already) or gone (the message was deleted)."""
        return str(self.transport.rpc("gateway_record_media", {"p_outcome": sql_record(outcome)}))

    # --- events -----------------------------------------------------------------------------

    def ingest_event(self, record: EventRecord) -> IngestResult:
        """Log a host event once and apply it, in one round trip."""
        from wa_gateway.event_records import IngestResult, LidLookup

        result = self.transport.rpc(
            "gateway_ingest_event", {"p_event": sql_record(record), **self._qr_ttls}
        )
        lookup = result.get("lid_lookup")
        media = result.get("media") or {}
        return IngestResult(
            stored=bool(result.get("stored")),
            changed=bool(result.get("changed")),
            seq=result.get("seq"),
            reason=result.get("reason"),
            lid_lookup=LidLookup.from_json(record.session_name, lookup["lid"], lookup)
            if lookup
            else None,
            media_message_id=str(media["message_id"]) if media.get("message_id") else None,
        )

    def remember_contact(self, session_name: str, lid: str, phone: str | None) -> int:
        """Keep the number the host mapped ``lid`` to (None: it could not tell); returns how
        many of the contact's messages got it filled in."""
        result = self.transport.rpc(
            "gateway_remember_contact",
            {"p_session_name": session_name, "p_lid": lid, "p_phone": phone},
        )
        return int(result["filled"]) if result else 0


def _update_result(result: Any) -> UpdateResult | None:
    """A session update's answer: the session as it now is, and whether it changed."""
    if result is None:
        return None
    return UpdateResult(
        session=SessionRecord.from_row(result["session"]), changed=bool(result["changed"])
    )
