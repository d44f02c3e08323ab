"""What a send asks of the store and what it is told: the outbox's vocabulary, for a plain
send (``gateway_begin_send``), one with a template or a time (``gateway_prepare_send``) and the
host's answer (``gateway_finish_send``); and send-message's actions, governed like a send
(``gateway_begin_action``). Plain records, as in ``records``.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, Self

from wa_gateway.records import HostPlacement, MessageRecord, SessionRecord, known_fields

SendOutcome = Literal[
    "send",
    "replay",
    "in_flight",
    "conflict",
    "not_connected",
    "rate_limited",
    # a reply's quoted message (gateway_check_reply)
    "message_not_found",
    "reply_other_chat",
    "message_not_sent",
    "message_deleted",
]
SendResult = Literal["sent", "failed", "retryable", "unknown", "withdrawn"]


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
    reply_to: str | None = None  # the caller's message this one quotes
    group_id: str | None = None  # a group instead of a contact (phone is then None)


class FinishedSend(NamedTuple):
    """What the host did with a send, for the outbox row."""

    message_id: str
    attempt: int  # the row's attempts when this caller took it: it must still hold the row
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
    max_scheduled: int  # how many messages a user may have waiting for their time


class SendPlan(NamedTuple):
    outcome: SendOutcome
    message: MessageRecord | None = None
    host_token: str | None = None
    retry_after_s: int = 0
    host: HostPlacement | None = None
    # outcome "send": by when (time.monotonic()) the row's lease surely still holds
    held_until: float | None = None
    syncing: bool = False  # the session is logged in and may not be usable on the host yet
    # Syncing, or connected moments ago: the host may still be finishing the login.
    settling: bool = False

    @classmethod
    def from_json(cls, result: Mapping[str, Any], *, asked: float, lease_s: float) -> Self:
        """What ``gateway_begin_send`` (and the calls that go on as it) answered, to a call
        made at ``asked`` (``time.monotonic()``) with a lease of ``lease_s``: the lease ran
        from the database's clock during the call, so it holds at least until their sum."""
        message = result.get("message")
        outcome = result["outcome"]
        return cls(
            outcome=outcome,
            message=MessageRecord.from_row(message) if message else None,
            host_token=result.get("host_token"),
            retry_after_s=int(result.get("retry_after") or 0),
            host=HostPlacement.from_json(result.get("host")),
            held_until=asked + lease_s if outcome == "send" else None,
            syncing=bool(result.get("syncing")),
            settling=bool(result.get("settling")),
        )


PrepareOutcome = Literal[
    SendOutcome,
    "scheduled",
    "scheduled_limit",
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


# --- send-message's actions: react, edit, delete, read -----------------------------------


class GroupRecord(NamedTuple):
    """A row of ``whatsapp_groups``: ``participants`` None while the host has not listed them."""

    group_id: str
    subject: str | None = None
    participants: list[Mapping[str, Any]] | None = None
    participants_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**known_fields(cls._fields, row))


class ChatRecord(NamedTuple):
    """A row of ``whatsapp_chats``: one account's chat with a contact or a group."""

    id: str
    chat_id: str
    account: str
    unread: int
    phone: str | None = None
    contact_lid: str | None = None
    group_id: str | None = None
    last_at: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(**known_fields(cls._fields, row))


ActionKind = Literal["react", "edit", "delete", "read"]


class MessageAction(NamedTuple):
    """send-message's react, edit, delete or read, as ``gateway_begin_action`` reads it."""

    user_id: str
    kind: ActionKind
    message_id: str | None  # react, edit, delete: the caller's message
    session_name: str | None  # read: the account's session
    chat_id: str | None  # read: "<digits>@c.us", "<digits>@lid" or "<group>@g.us"
    emoji: str | None
    body: str | None
    idempotency_key: str | None
    request_hash: str
    window_s: int | None  # edit, delete: WhatsApp's limit since the message went out


class ActionPlan(NamedTuple):
    """What ``gateway_begin_action`` decided: ``act`` comes with what it takes to call the
    host; the other outcomes say why not (or that nothing is to do)."""

    outcome: str
    message: MessageRecord | None = None
    chat: ChatRecord | None = None
    session: SessionRecord | None = None
    host_token: str | None = None
    host: HostPlacement | None = None
    retry_after_s: int = 0

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> Self:
        message, chat, session = result.get("message"), result.get("chat"), result.get("session")
        return cls(
            outcome=result["outcome"],
            message=MessageRecord.from_row(message) if message else None,
            chat=ChatRecord.from_row(chat) if chat else None,
            session=SessionRecord.from_row(session) if session else None,
            host_token=result.get("host_token"),
            host=HostPlacement.from_json(result.get("host")),
            retry_after_s=int(result.get("retry_after") or 0),
        )
