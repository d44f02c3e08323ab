"""What the gateway's logic asks of the database, and nothing of how it gets there."""

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol, Self

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


class HostPlacement(NamedTuple):
    """A host of the pool a session lives on; ``secret_key`` is encrypted."""

    id: str
    url: str
    secret_key: str

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Self | None:
        if not value:
            return None
        return cls(str(value["id"]), value["url"], value["secret_key"])


class SessionRecord(NamedTuple):
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
    account: str = "default"
    host_id: str | None = None
    attempt: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**_known_fields(cls._fields, row))


class MessageRecord(NamedTuple):
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
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**_known_fields(cls._fields, row))


SendOutcome = Literal["send", "replay", "in_flight", "conflict", "not_connected", "rate_limited"]


class SendPlan(NamedTuple):
    outcome: SendOutcome
    message: MessageRecord | None = None
    host_token: str | None = None
    retry_after_s: int = 0
    host: HostPlacement | None = None


class OutboundRequest(NamedTuple):
    user_id: str
    session_name: str
    phone: str
    body: str
    contact_name: str | None
    idempotency_key: str | None
    request_hash: str


class InboundMessage(NamedTuple):
    session_name: str
    wpp_message_id: str
    phone: str
    body: str
    contact_name: str | None
    message_type: str
    from_me: bool
    account_phone: str | None


class Ack(NamedTuple):
    session_name: str
    wpp_message_id: str
    status: str  # sent, delivered, read or failed
    phone: str | None
    body: str | None


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


class HostRecord(NamedTuple):
    id: str
    name: str
    url: str
    secret_key: str
    capacity: int
    state: str
    sessions: int = 0
    last_health_at: str | None = None
    last_health_ok: bool | None = None
    last_error: str | None = None

    @property
    def placement(self) -> HostPlacement:
        return HostPlacement(self.id, self.url, self.secret_key)


StartOutcome = Literal["ok", "account_limit", "no_capacity"]


class PurgePass(NamedTuple):
    hosts: list[HostRecord]
    batch: PurgeBatch
    events_deleted: int
    tokens: list[StoredToken]


class StartPlan(NamedTuple):
    session: SessionRecord
    action: StartAction
    host_token: str | None
    opened: bool = False  # this call moved the session out of 'disconnected'
    host: HostPlacement | None = None  # None: the default host (WPP_SERVER_URL)


class StartRefusal(NamedTuple):
    outcome: StartOutcome


class EventRecord(NamedTuple):
    """One host event as logged and applied: ``kind`` says what it changes."""

    session_name: str
    host_id: str | None
    attempt: int | None
    event: str
    dedup_key: str
    payload: Mapping[str, Any]
    kind: Literal["session", "inbound", "ack", "none"]
    args: Mapping[str, Any]


class IngestResult(NamedTuple):
    stored: bool
    changed: bool = False
    seq: int | None = None
    reason: str | None = None


class SessionUpdate(NamedTuple):
    """What the host said about a session, in our terms (see ``transitions``)."""

    session_name: str
    status: SessionStatus
    qr_code: str | None = None
    qr_image: str | None = None
    pairing_code: str | None = None
    phone_number: str | None = None
    reason: str | None = None
    host_token: str | None = None


class UpdateResult(NamedTuple):
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
            },
        )
        message = result.get("message")
        return SendPlan(
            outcome=result["outcome"],
            message=MessageRecord.from_row(message) if message else None,
            host_token=result.get("host_token"),
            retry_after_s=int(result.get("retry_after") or 0),
            host=HostPlacement.from_json(result.get("host")),
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
        return _purge_batch(result)

    def purge_first_pass(
        self,
        *,
        qr_ttl_s: int,
        stale_after_s: int,
        batch_size: int,
        retention_s: int,
        events_batch_size: int,
        active_key_id: str | None,
    ) -> PurgePass:
        """The host pool and the first batch of every housekeeping task, in one round trip;
        no tokens to re-encrypt when ``active_key_id`` is None."""
        result = self.transport.rpc(
            "gateway_purge_first_pass",
            {
                "p_qr_ttl_s": qr_ttl_s,
                "p_stale_after_s": stale_after_s,
                "p_batch_size": batch_size,
                "p_retention_s": retention_s,
                "p_events_batch_size": events_batch_size,
                "p_active_key_id": active_key_id,
            },
        )
        return PurgePass(
            hosts=_host_records(result["hosts"]),
            batch=_purge_batch(result["batch"]),
            events_deleted=int(result["events_deleted"]),
            tokens=_stored_tokens(result["tokens"]),
        )

    def tokens_to_reencrypt(
        self, *, active_key_id: str, after: str | None, limit: int
    ) -> list[StoredToken]:
        """Stored host tokens not under the active key, ordered by session row id."""
        rows = self.transport.rpc(
            "gateway_tokens_to_reencrypt",
            {"p_active_key_id": active_key_id, "p_after": after, "p_limit": limit},
        )
        return _stored_tokens(rows)

    def replace_tokens(self, replacements: list[dict[str, str]]) -> int:
        """Store re-encrypted tokens: ``{session_id, old_token, host_token}``, compare-and-swap."""
        return int(self.transport.rpc("gateway_replace_tokens", {"p_tokens": replacements}))

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
        return IngestResult(
            stored=bool(result.get("stored")),
            changed=bool(result.get("changed")),
            seq=result.get("seq"),
            reason=result.get("reason"),
        )

    def purge_events(self, *, retention_s: int, batch_size: int) -> int:
        return int(
            self.transport.rpc(
                "gateway_purge_events",
                {"p_retention_s": retention_s, "p_batch_size": batch_size},
            )
        )

    # --- the host pool ----------------------------------------------------------------------

    def hosts(self) -> list[HostRecord]:
        return _host_records(self.transport.rpc("gateway_hosts", {}))

    def put_host(
        self,
        name: str,
        *,
        url: str | None = None,
        secret_key: str | None = None,
        capacity: int | None = None,
        state: str | None = None,
    ) -> dict[str, Any]:
        """Add a host (``url`` given) or change one (only what is given)."""
        result: dict[str, Any] = self.transport.rpc(
            "gateway_put_host",
            {
                "p_name": name,
                "p_url": url,
                "p_secret_key": secret_key,
                "p_capacity": capacity,
                "p_state": state,
            },
        )
        return result

    def remove_host(self, name: str) -> bool:
        return bool(self.transport.rpc("gateway_remove_host", {"p_name": name}))

    def host_sessions(self, host_id: str, *, idle_before: str | None = None) -> list[PurgedSession]:
        """The sessions holding a browser on a host (only those idle since, if given)."""
        rows = self.transport.rpc(
            "gateway_host_sessions", {"p_host_id": host_id, "p_idle_before": idle_before}
        )
        return [PurgedSession(r["session_id"], host_id, r.get("host_token")) for r in rows]

    def mark_host(self, host_id: str, *, ok: bool, error: str | None, mark_down: bool) -> int:
        """Record a health check; marking a host down disconnects its sessions (returned)."""
        result = self.transport.rpc(
            "gateway_mark_host",
            {"p_host_id": host_id, "p_ok": ok, "p_error": error, "p_mark_down": mark_down},
        )
        return int(result["sessions_disconnected"])


def _purge_batch(result: Mapping[str, Any]) -> PurgeBatch:
    return PurgeBatch(
        qr_cleared=int(result["qr_cleared"]),
        deleted=[
            PurgedSession(d["session_id"], d.get("host_id"), d.get("host_token"))
            for d in result["deleted"]
        ],
    )


def _stored_tokens(rows: list[Mapping[str, Any]]) -> list[StoredToken]:
    return [StoredToken(r["session_id"], r["name"], r["host_token"]) for r in rows]


def _host_records(rows: list[Mapping[str, Any]]) -> list[HostRecord]:
    return [HostRecord(**_known_fields(HostRecord._fields, r)) for r in rows]


def _known_fields(fields: tuple[str, ...], row: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a row (as JSON) that a record has ``fields`` for; the database may add
    columns the gateway does not read."""
    return {k: v for k, v in row.items() if k in fields}
