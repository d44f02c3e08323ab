"""What the gateway's logic asks of the database, and nothing of how it gets there."""

from wa_gateway.auth.caller import Caller
from wa_gateway.records import (
    Ack,
    EventRecord,
    HostPlacement,
    InboundMessage,
    IngestResult,
    LidLookup,
    MediaFetch,
    MessageRecord,
    OutboundRequest,
    SendPlan,
    SendResult,
    SessionOnHost,
    SessionRecord,
    SessionStatus,
    SessionUpdate,
    StartPlan,
    StartRefusal,
    UpdateResult,
)
from wa_gateway.store.housekeeping import HousekeepingCalls
from wa_gateway.store.reconciling import ReconcileCalls
from wa_gateway.store.scheduling import SchedulingCalls
from wa_gateway.store.transport import Transport


class Store(HousekeepingCalls, SchedulingCalls, ReconcileCalls):
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
        self._qr_ttls = (qr_first_ttl_s, qr_next_ttl_s)
        self._governor = (send_burst, send_rate_per_s)
        self._lease_s = send_lease_s

    @property
    def round_trips(self) -> int:
        return self.transport.round_trips

    def begin_start(
        self,
        *,
        user_id: str,
        session_name: str,
        account: str,
        method: str,
        max_accounts: int,
        default_server_url: str | None,
    ) -> StartPlan | StartRefusal:
        """Create or lock the session, place it on a host if it needs one, and decide."""
        result = self.transport.rpc(
            "gateway_begin_start",
            {
                "p_user_id": user_id,
                "p_session_name": session_name,
                "p_account": account,
                "p_method": method,
                "p_max_accounts": max_accounts,
                "p_default_server_url": default_server_url,
            },
        )
        if result["outcome"] != "ok":
            return StartRefusal(result["outcome"])
        return StartPlan(
            session=SessionRecord.from_row(result["session"]),
            action=result["action"],
            host_token=result.get("host_token"),
            opened=bool(result.get("opened")),
            host=HostPlacement.from_json(result.get("host")),
        )

    def apply_host_state(self, update: SessionUpdate) -> UpdateResult | None:
        """Apply ``update`` if it moves the session forward; None if no such session."""
        result = self.transport.rpc(
            "gateway_apply_host_state",
            {
                "p_session_name": update.session_name,
                "p_status": update.status,
                "p_qr_code": update.qr_code,
                "p_qr_image": update.qr_image,
                "p_pairing_code": update.pairing_code,
                "p_phone_number": update.phone_number,
                "p_reason": update.reason,
                "p_host_token": update.host_token,
                "p_qr_first_ttl_s": self._qr_ttls[0],
                "p_qr_next_ttl_s": self._qr_ttls[1],
                "p_host_attempt": update.host_attempt,
            },
        )
        if result is None:
            return None
        return UpdateResult(
            session=SessionRecord.from_row(result["session"]), changed=bool(result["changed"])
        )

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
        if result is None:
            return None
        return UpdateResult(
            session=SessionRecord.from_row(result["session"]), changed=bool(result["changed"])
        )

    # --- messages -------------------------------------------------------------------------

    def begin_send(self, request: OutboundRequest) -> SendPlan:
        result = self.transport.rpc(
            "gateway_begin_send",
            {
                "p_user_id": request.user_id,
                "p_session_name": request.session_name,
                "p_idempotency_key": request.idempotency_key,
                "p_request_hash": request.request_hash,
                "p_phone": request.phone,
                "p_body": request.body,
                "p_contact_name": request.contact_name,
                "p_burst": self._governor[0],
                "p_rate_per_s": self._governor[1],
                "p_lease_s": self._lease_s,
                "p_contact_lid": request.contact_lid,
                "p_media": dict(request.media) if request.media else None,
            },
            # Without a key, a second call would queue a second message.
            repeatable=request.idempotency_key is not None,
        )
        return SendPlan.from_json(result)

    def finish_send(
        self,
        message_id: str,
        outcome: SendResult,
        *,
        wpp_message_id: str | None = None,
        error_code: str | None = None,
        session_lost: bool = False,
        phone: str | None = None,
        contact_lid: str | None = None,
    ) -> MessageRecord:
        """``phone``/``contact_lid``: the canonical id the host sent to, kept on the row."""
        result = self.transport.rpc(
            "gateway_finish_send",
            {
                "p_message_id": message_id,
                "p_outcome": outcome,
                "p_wpp_message_id": wpp_message_id,
                "p_error_code": error_code,
                "p_session_lost": session_lost,
                "p_phone": phone,
                "p_contact_lid": contact_lid,
            },
        )
        return MessageRecord.from_row(result["message"])

    def record_inbound(self, message: InboundMessage) -> bool:
        """Store an incoming message; False if already stored or the session is unknown."""
        result = self.transport.rpc(
            "gateway_record_inbound",
            {
                "p_session_name": message.session_name,
                "p_wpp_message_id": message.wpp_message_id,
                "p_phone": message.phone,
                "p_body": message.body,
                "p_contact_name": message.contact_name,
                "p_message_type": message.message_type,
                "p_from_me": message.from_me,
                "p_account_phone": message.account_phone,
                "p_contact_lid": message.contact_lid,
                "p_media": dict(message.media) if message.media else None,
            },
        )
        return bool(result and result.get("stored"))

    def record_media(
        self,
        message_id: str,
        state: str,
        *,
        path: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        mime_type: str | None = None,
    ) -> bool:
        """What became of a message's pending file (stored at ``path``, too_large or
        unavailable); False if its file was not pending."""
        return bool(
            self.transport.rpc(
                "gateway_record_media",
                {
                    "p_message_id": message_id,
                    "p_state": state,
                    "p_path": path,
                    "p_size": size,
                    "p_sha256": sha256,
                    "p_mime_type": mime_type,
                },
            )
        )

    def apply_ack(self, ack: Ack) -> bool:
        result = self.transport.rpc(
            "gateway_apply_ack",
            {
                "p_session_name": ack.session_name,
                "p_wpp_message_id": ack.wpp_message_id,
                "p_status": ack.status,
                "p_phone": ack.phone,
                "p_body": ack.body,
                "p_lid": ack.lid,
                "p_failure_code": ack.failure_code,
            },
        )
        return bool(result and result.get("changed"))

    # --- events -----------------------------------------------------------------------------

    def ingest_event(self, record: EventRecord) -> IngestResult:
        """Log a host event once and apply it, in one round trip."""
        result = self.transport.rpc(
            "gateway_ingest_event",
            {
                "p_session_name": record.session_name,
                "p_host_id": record.host_id,
                "p_attempt": record.attempt,
                "p_event": record.event,
                "p_dedup_key": record.dedup_key,
                "p_payload": dict(record.payload),
                "p_kind": record.kind,
                "p_args": dict(record.args),
                "p_qr_first_ttl_s": self._qr_ttls[0],
                "p_qr_next_ttl_s": self._qr_ttls[1],
            },
        )
        lookup = result.get("lid_lookup")
        media = result.get("media")
        return IngestResult(
            stored=bool(result.get("stored")),
            changed=bool(result.get("changed")),
            seq=result.get("seq"),
            reason=result.get("reason"),
            lid_lookup=LidLookup(
                session_name=record.session_name,
                lid=lookup["lid"],
                host_token=lookup.get("host_token"),
                host=HostPlacement.from_json(lookup.get("host")),
            )
            if lookup
            else None,
            media_fetch=MediaFetch(
                session_name=record.session_name,
                message_id=media["message_id"],
                wpp_message_id=record.args["wpp_message_id"],
                path=media["path"],
                host_token=media.get("host_token"),
                host=HostPlacement.from_json(media.get("host")),
            )
            if media
            else None,
        )

    def remember_contact(self, session_name: str, lid: str, phone: str | None) -> int:
        """Keep the number the host mapped ``lid`` to (None: it could not tell); returns how
        many of the contact's messages got it filled in."""
        result = self.transport.rpc(
            "gateway_remember_contact",
            {"p_session_name": session_name, "p_lid": lid, "p_phone": phone},
        )
        return int(result["filled"]) if result else 0
