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

    def __init__(self, transport: Transport, *, qr_first_ttl_s: int = 60, qr_next_ttl_s: int = 20):
        self.transport = transport
        self._qr_ttls = (qr_first_ttl_s, qr_next_ttl_s)

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
