"""The gateway's vocabulary: what the logic reads from and hands to the store.

Plain records (NamedTuples: cheap to import and to build), free of how they are stored. Rows
come as the database's JSON; ``from_row`` keeps the columns a record has and ignores the rest.
What the scheduled passes (the purge, the scheduler, reconcile) claim and apply is in
``pass_records``.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, Self

SessionStatus = Literal["disconnected", "starting", "pairing", "connected"]
StartAction = Literal["none", "start", "restart"]
StartOutcome = Literal["ok", "account_limit", "no_capacity"]
SendOutcome = Literal["send", "replay", "in_flight", "conflict", "not_connected", "rate_limited"]
SendResult = Literal["sent", "failed", "retryable", "unknown", "withdrawn"]


def _known_fields(fields: tuple[str, ...], row: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a row (as JSON) that a record has ``fields`` for; the database may add
    columns the gateway does not read."""
    return {k: v for k, v in row.items() if k in fields}


# --- sessions -------------------------------------------------------------------------------


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


class SessionOnHost(NamedTuple):
    """A session with what it takes to reach it on its host: the encrypted host token, and
    the pool host it lives on (None: the default host, ``WPP_SERVER_URL``)."""

    session: SessionRecord
    host_token: str | None
    host: HostPlacement | None = None


class StartPlan(NamedTuple):
    """What a start asks of the host (``action`` "none": nothing, the session stays as it is)."""

    session: SessionRecord
    action: StartAction
    host_token: str | None
    opened: bool = False  # this call moved the session out of 'disconnected'
    host: HostPlacement | None = None  # None: the default host (WPP_SERVER_URL)
    stalled: bool = False  # the start before this one made no progress (see StartRequest)


class StartRefusal(NamedTuple):
    outcome: StartOutcome


class StartWait(NamedTuple):
    """Not yet: our logout's browser may still hold the session's profile on the host."""

    retry_in_s: float


class StartRequest(NamedTuple):
    """What a start asks of the store: the session to create or lock, and its limits."""

    user_id: str
    session_name: str
    account: str
    method: str  # qr or code
    max_accounts: int
    default_server_url: str | None  # the host of a session the pool does not place
    # After our logout, how long to wait for the old browser's browserClose before a start.
    logout_settle_s: int = 0
    # A start that made no progress for this long is stalled (the host's launch failed).
    stuck_after_s: int = 0


class SessionUpdate(NamedTuple):
    """What the host said about a session, in our terms (see ``sessions.transitions``)."""

    session_name: str
    status: SessionStatus
    qr_code: str | None = None
    qr_image: str | None = None
    pairing_code: str | None = None
    phone_number: str | None = None
    reason: str | None = None
    host_token: str | None = None
    host_attempt: int | None = None  # the attempt whose webhook URL the host now holds


class UpdateResult(NamedTuple):
    session: SessionRecord
    changed: bool


# --- messages -------------------------------------------------------------------------------


class MessageRecord(NamedTuple):
    """A row of ``whatsapp_messages``."""

    id: str
    user_id: str
    whatsapp_session_id: str
    direction: str
    phone: str | None
    status: str
    body: str = ""
    contact_name: str | None = None
    wpp_message_id: str | None = None
    send_state: str | None = None
    error_code: str | None = None
    origin: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    contact_lid: str | None = None
    failure_code: str | None = None
    send_at: str | None = None
    template_name: str | None = None
    message_type: str = "chat"
    mime_type: str | None = None
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None
    media_path: str | None = None
    media_state: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**_known_fields(cls._fields, row))


class OutgoingFile(NamedTuple):
    """What the outbox row keeps of a file to send (``OutgoingMedia.file``): the caller's
    upload stays at ``path``; a file sent inline is stored under the message's name, ``ext``."""

    message_type: str  # image, sticker, video, audio, ptt or document
    mime_type: str
    filename: str
    size: int
    sha256: str
    path: str | None
    ext: str | None


class OutboundRequest(NamedTuple):
    user_id: str
    session_name: str
    phone: str | None
    body: str
    contact_name: str | None
    idempotency_key: str | None
    request_hash: str
    contact_lid: str | None = None
    media: OutgoingFile | None = None


class FinishedSend(NamedTuple):
    """What the host did with a send, for the outbox row."""

    message_id: str
    outcome: SendResult
    wpp_message_id: str | None
    error_code: str | None
    session_lost: bool  # the host said the session is gone: it is marked disconnected
    phone: str | None  # the canonical id the host sent to
    contact_lid: str | None


class SendOptions(NamedTuple):
    """A send's template and time (``gateway_prepare_send``)."""

    template: str | None
    variables: Mapping[str, str] | None
    send_at: datetime | None
    max_chars: int  # the longest text a rendered template may give


class SendPlan(NamedTuple):
    outcome: SendOutcome
    message: MessageRecord | None = None
    host_token: str | None = None
    retry_after_s: int = 0
    host: HostPlacement | None = None
    syncing: bool = False  # the session is logged in and may not be usable on the host yet
    # Syncing, or connected moments ago: the host may still be finishing the login.
    settling: bool = False

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> Self:
        """What ``gateway_begin_send`` (and the calls that go on as it) answered."""
        message = result.get("message")
        return cls(
            outcome=result["outcome"],
            message=MessageRecord.from_row(message) if message else None,
            host_token=result.get("host_token"),
            retry_after_s=int(result.get("retry_after") or 0),
            host=HostPlacement.from_json(result.get("host")),
            syncing=bool(result.get("syncing")),
            settling=bool(result.get("settling")),
        )


class IncomingFile(NamedTuple):
    """A received file as the host describes it (``media.incoming.metadata``), before it is
    fetched: kept at ``<user id>/<session id>/<message id>.<ext>``."""

    mime_type: str | None
    filename: str | None
    size: int | None
    ext: str | None
    state: str  # pending (to fetch) or too_large


class InboundMessage(NamedTuple):
    session_name: str
    wpp_message_id: str
    phone: str | None  # None: the sender is known by ``contact_lid`` only
    body: str
    contact_name: str | None
    message_type: str
    from_me: bool
    account_phone: str | None
    contact_lid: str | None = None
    media: IncomingFile | None = None


class Ack(NamedTuple):
    session_name: str
    wpp_message_id: str
    status: str  # sent, delivered, read or failed
    phone: str | None
    body: str | None
    lid: str | None = None
    failure_code: str | None = None  # why a failed message failed (expired, ...)


# --- host events ----------------------------------------------------------------------------


class EventRecord(NamedTuple):
    """One host event as logged and applied: ``kind`` says what it changes, ``args`` how."""

    session_name: str
    host_id: str | None
    attempt: int | None
    event: str
    dedup_key: str
    payload: Mapping[str, Any]
    kind: Literal["session", "inbound", "ack", "none"]
    args: "SessionUpdate | InboundMessage | Ack | None"


class IngestResult(NamedTuple):
    stored: bool
    changed: bool = False
    seq: int | None = None
    reason: str | None = None
    lid_lookup: "LidLookup | None" = None
    media_fetch: "MediaFetch | None" = None


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


class MediaFetch(NamedTuple):
    """A received file to fetch from the host and store at ``path``."""

    session_name: str
    message_id: str
    wpp_message_id: str
    path: str
    host_token: str | None
    host: HostPlacement | None

    @classmethod
    def from_json(
        cls, session_name: str, item: Mapping[str, Any], access: Mapping[str, Any]
    ) -> Self:
        """``item``: the message's ``message_id``, ``wpp_message_id`` and ``path``; ``access``
        as :meth:`LidLookup.from_json`'s."""
        return cls(
            session_name,
            str(item["message_id"]),
            item["wpp_message_id"],
            item["path"],
            access.get("host_token"),
            HostPlacement.from_json(access.get("host")),
        )


# --- the host pool --------------------------------------------------------------------------


class HostRecord(NamedTuple):
    """A row of the host pool, with its health; ``secret_key`` is encrypted."""

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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**_known_fields(cls._fields, row))


class HostEntry(NamedTuple):
    """A pool host as an operator set it (added or changed), without its secret key."""

    id: str
    name: str
    url: str
    capacity: int
    state: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**_known_fields(cls._fields, row))


# --- templates and scheduled messages -------------------------------------------------------

PrepareOutcome = Literal[
    "send",
    "replay",
    "in_flight",
    "conflict",
    "not_connected",
    "rate_limited",
    "scheduled",
    "unknown_template",
    "template_variable_missing",
    "template_variable_unknown",
    "message_too_long",
]


class PreparedSend(NamedTuple):
    """What ``gateway_prepare_send`` decided: the outcomes it shares with ``begin_send`` come
    with their :class:`SendPlan`; "scheduled" with the message; a template's problem with the
    ``variable`` it is about, or the rendered text's ``length``."""

    outcome: PrepareOutcome
    plan: SendPlan | None = None
    message: MessageRecord | None = None
    variable: str | None = None
    length: int = 0
