"""What a send asks of the store and what it is told: the outbox's vocabulary, for a plain
send (``gateway_begin_send``), one with a template or a time (``gateway_prepare_send``) and the
host's answer (``gateway_finish_send``). Plain records, as in ``records``.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, Self

from wa_gateway.records import HostPlacement, MessageRecord

SendOutcome = Literal["send", "replay", "in_flight", "conflict", "not_connected", "rate_limited"]
SendResult = Literal["sent", "failed", "retryable", "unknown"]


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
        )


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
