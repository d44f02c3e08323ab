"""What the gateway's logic asks of the database, and nothing of how it gets there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from wa_gateway.tokens import Caller

StartAction = Literal["none", "start", "restart"]
SessionStatus = Literal["disconnected", "starting", "pairing", "connected"]


class Transport(Protocol):
    """Carries one SQL function call to the database: one round trip, one transaction.

    ``caller`` None runs the call as ``service_role``; otherwise as the caller, with their
    claims applied exactly as PostgREST applies them, so Row Level Security decides.
    """

    round_trips: int

    def rpc(self, function: str, params: Mapping[str, Any], *, caller: Caller | None = None) -> Any:
        """Call ``public.<function>`` with named ``params``; return its JSON result."""
        ...


@dataclass(frozen=True)
class SessionRecord:
    """A row of ``whatsapp_sessions``. Times are ISO 8601 strings as the database gave them."""

    id: str
    user_id: str
    session_id: str
    status: SessionStatus
    pairing_method: str = "qr"
    qr_code: str | None = None
    qr_image: str | None = None
    qr_expires_at: str | None = None
    pairing_code: str | None = None
    phone_number: str | None = None
    server_url: str | None = None
    status_reason: str | None = None
    last_activity: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SessionRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass(frozen=True)
class MessageRecord:
    """A row of ``whatsapp_messages``."""

    id: str
    user_id: str
    whatsapp_session_id: str
    direction: str
    phone: str
    status: str
    body: str = ""
    contact_name: str | None = None
    wpp_message_id: str | None = None
    send_state: str | None = None
    error_code: str | None = None
    origin: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MessageRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


SendOutcome = Literal["send", "replay", "in_flight", "conflict", "not_connected", "rate_limited"]


@dataclass(frozen=True)
class SendPlan:
    outcome: SendOutcome
    message: MessageRecord | None = None
    host_token: str | None = None
    retry_after_s: int = 0


@dataclass(frozen=True)
class OutboundRequest:
    user_id: str
    session_name: str
    phone: str
    body: str
    contact_name: str | None
    idempotency_key: str | None
    request_hash: str


@dataclass(frozen=True)
class InboundMessage:
    session_name: str
    wpp_message_id: str
    phone: str
    body: str
    contact_name: str | None
    message_type: str
    from_me: bool
    account_phone: str | None


@dataclass(frozen=True)
class Ack:
    session_name: str
    wpp_message_id: str
    status: str  # sent, delivered, read or failed
    phone: str | None
    body: str | None


@dataclass(frozen=True)
class PurgedSession:
    session_id: str
    server_url: str | None
    host_token: str | None


@dataclass(frozen=True)
class StoredToken:
    session_row_id: str
    session_name: str
    ciphertext: str


@dataclass(frozen=True)
class PurgeBatch:
    qr_cleared: int
    deleted: list[PurgedSession]


@dataclass(frozen=True)
class StartPlan:
    session: SessionRecord
    action: StartAction
    host_token: str | None
    opened: bool = False  # this call moved the session out of 'disconnected'


@dataclass(frozen=True)
class SessionUpdate:
    """What the host said about a session, in our terms (see ``transitions``)."""

    session_name: str
    status: SessionStatus
    qr_code: str | None = None
    qr_image: str | None = None
    pairing_code: str | None = None
    phone_number: str | None = None
    reason: str | None = None
    host_token: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    session: SessionRecord
    changed: bool


class Store:
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
        self, *, user_id: str, session_name: str, method: str, server_url: str | None
    ) -> StartPlan:
        result = self.transport.rpc(
            "gateway_begin_start",
            {
                "p_user_id": user_id,
                "p_session_name": session_name,
                "p_method": method,
                "p_server_url": server_url,
            },
        )
        return StartPlan(
            session=SessionRecord.from_row(result["session"]),
            action=result["action"],
            host_token=result.get("host_token"),
            opened=bool(result.get("opened")),
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

    def session_for_host(self, *, user_id: str, session_name: str) -> StartPlan | None:
        """The user's session with its encrypted host token (service role)."""
        result = self.transport.rpc(
            "gateway_session_for_host", {"p_user_id": user_id, "p_session_name": session_name}
        )
        if result is None:
            return None
        return StartPlan(
            session=SessionRecord.from_row(result["session"]),
            action="none",
            host_token=result.get("host_token"),
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
            },
        )
        message = result.get("message")
        return SendPlan(
            outcome=result["outcome"],
            message=MessageRecord.from_row(message) if message else None,
            host_token=result.get("host_token"),
            retry_after_s=int(result.get("retry_after") or 0),
        )

    def finish_send(
        self,
        message_id: str,
        outcome: Literal["sent", "failed", "retryable", "unknown"],
        *,
        wpp_message_id: str | None = None,
        error_code: str | None = None,
        session_lost: bool = False,
    ) -> MessageRecord:
        result = self.transport.rpc(
            "gateway_finish_send",
            {
                "p_message_id": message_id,
                "p_outcome": outcome,
                "p_wpp_message_id": wpp_message_id,
                "p_error_code": error_code,
                "p_session_lost": session_lost,
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
            },
        )
        return bool(result and result.get("stored"))

    def apply_ack(self, ack: Ack) -> bool:
        result = self.transport.rpc(
            "gateway_apply_ack",
            {
                "p_session_name": ack.session_name,
                "p_wpp_message_id": ack.wpp_message_id,
                "p_status": ack.status,
                "p_phone": ack.phone,
                "p_body": ack.body,
            },
        )
        return bool(result and result.get("changed"))

    # --- housekeeping -----------------------------------------------------------------------

    def purge_batch(self, *, qr_ttl_s: int, stale_after_s: int, batch_size: int) -> PurgeBatch:
        result = self.transport.rpc(
            "gateway_purge_batch",
            {
                "p_qr_ttl_s": qr_ttl_s,
                "p_stale_after_s": stale_after_s,
                "p_batch_size": batch_size,
            },
        )
        return PurgeBatch(
            qr_cleared=int(result["qr_cleared"]),
            deleted=[
                PurgedSession(d["session_id"], d.get("server_url"), d.get("host_token"))
                for d in result["deleted"]
            ],
        )

    def tokens_to_reencrypt(
        self, *, active_key_id: str, after: str | None, limit: int
    ) -> list[StoredToken]:
        """Stored host tokens not under the active key, ordered by session row id."""
        rows = self.transport.rpc(
            "gateway_tokens_to_reencrypt",
            {"p_active_key_id": active_key_id, "p_after": after, "p_limit": limit},
        )
        return [StoredToken(r["session_id"], r["name"], r["host_token"]) for r in rows]

    def replace_tokens(self, replacements: list[dict[str, str]]) -> int:
        """Store re-encrypted tokens: ``{session_id, old_token, host_token}``, compare-and-swap."""
        return int(self.transport.rpc("gateway_replace_tokens", {"p_tokens": replacements}))
