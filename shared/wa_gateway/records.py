"""The gateway's vocabulary: what the logic reads from and hands to the store.

Plain records (NamedTuples: cheap to import and to build), free of how they are stored. Rows
come as the database's JSON; ``from_row`` keeps the columns a record has and ignores the rest.
What a send (or one of send-message's actions) asks and is told is in ``send_records``; what a
host event becomes (a received message, an ack, a LID to look up) in ``event_records``; what
the scheduled passes (the purge, the scheduler, reconcile) claim and apply is in
``pass_records``.
"""

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Self

SessionStatus = Literal["disconnected", "starting", "pairing", "connected"]
StartAction = Literal["none", "start", "restart"]
StartOutcome = Literal["ok", "account_limit", "no_capacity"]
# Host states of a session being brought up (a browser launching, or a login the library is
# still finishing: the server's entry keeps its QR status until create() resolves). Here, not
# in sessions.transitions, so the send path reads them without the QR renderer.
COMING_UP = frozenset({"INITIALIZING", "QRCODE", "PHONECODE"})


def known_fields(fields: tuple[str, ...], row: Mapping[str, Any]) -> dict[str, Any]:
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
        return cls(**known_fields(cls._fields, row))


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
    start_attempt: int | None = None  # set by a start: the host's answer to the start of it


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
    # What the message kinds carry (conversations).
    reply_to: str | None = None
    reply_to_wpp_id: str | None = None
    edited_at: str | None = None
    deleted_at: str | None = None
    location: Mapping[str, Any] | None = None
    vcard: str | None = None
    group_id: str | None = None
    author: str | None = None
    message_at: str | None = None
    chat_id: str | None = None
    read_at: str | None = None
    attempts: int = 0  # outbound: how many times the row was taken to send (the fence)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**known_fields(cls._fields, row))


MediaState = Literal["stored", "too_large", "unavailable", "retry", "wait"]


class MediaOutcome(NamedTuple):
    """What became of a message's file: stored at ``path`` (with its size and digest),
    too_large or unavailable for good; or retry (tried again later) or wait (its session is
    not connected on the host: the try does not count). ``error`` says why, in a word."""

    message_id: str
    state: MediaState
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    mime_type: str | None = None
    error: str | None = None


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
        return cls(**known_fields(cls._fields, row))


class HostEntry(NamedTuple):
    """A pool host as an operator set it (added or changed), without its secret key."""

    id: str
    name: str
    url: str
    capacity: int
    state: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**known_fields(cls._fields, row))


# --- API keys and endpoints -----------------------------------------------------------------


class KeyToCreate(NamedTuple):
    """A user's new API key as it is kept: its prefix and digest, never the key."""

    user_id: str
    name: str
    prefix: str
    key_hash: str
    scopes: tuple[str, ...]
    max_keys: int


class EndpointToCreate(NamedTuple):
    """A user's new endpoint as it is kept; ``secret`` is encrypted."""

    id: str
    user_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    max_endpoints: int
