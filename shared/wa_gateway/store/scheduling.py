"""The store's calls for templates and scheduled messages."""

from collections.abc import Mapping
from datetime import datetime
from typing import get_args

from wa_gateway.pass_records import ClaimBatch, ClaimedMessage
from wa_gateway.records import (
    MessageRecord,
    OutboundRequest,
    PreparedSend,
    SendOutcome,
    SendPlan,
)
from wa_gateway.store.transport import Transport

_SEND_OUTCOMES = set(get_args(SendOutcome))


class SchedulingCalls:
    """The part of :class:`wa_gateway.store.Store` for sends with a template or a time."""

    transport: Transport
    _governor: tuple[float, float]
    _lease_s: int

    def prepare_send(
        self,
        request: OutboundRequest,
        *,
        template: str | None,
        variables: Mapping[str, str] | None,
        send_at: datetime | None,
        max_chars: int,
    ) -> PreparedSend:
        """Render the caller's template and go on as ``begin_send``, or schedule the message."""
        result = self.transport.rpc(
            "gateway_prepare_send",
            {
                "p_user_id": request.user_id,
                "p_session_name": request.session_name,
                "p_idempotency_key": request.idempotency_key,
                "p_request_hash": request.request_hash,
                "p_phone": request.phone,
                "p_contact_lid": request.contact_lid,
                "p_body": request.body,
                "p_contact_name": request.contact_name,
                "p_template": template,
                "p_variables": dict(variables) if variables is not None else None,
                "p_send_at": send_at.isoformat() if send_at else None,
                "p_max_chars": max_chars,
                "p_burst": self._governor[0],
                "p_rate_per_s": self._governor[1],
                "p_lease_s": self._lease_s,
            },
            # Without a key, a second call would queue (or schedule) a second message.
            repeatable=request.idempotency_key is not None,
        )
        message = result.get("message")
        return PreparedSend(
            outcome=result["outcome"],
            plan=SendPlan.from_json(result) if result["outcome"] in _SEND_OUTCOMES else None,
            message=MessageRecord.from_row(message) if message else None,
            variable=result.get("variable"),
            length=int(result.get("length") or 0),
        )

    def cancel_scheduled(
        self, *, user_id: str, message_id: str
    ) -> tuple[str, MessageRecord | None]:
        """("cancelled" | "gone" | "not_found", the message as it is now)."""
        result = self.transport.rpc(
            "gateway_cancel_scheduled", {"p_user_id": user_id, "p_message_id": message_id}
        )
        message = result.get("message")
        return result["outcome"], MessageRecord.from_row(message) if message else None

    def claim_scheduled(self, *, limit: int, grace_s: int) -> ClaimBatch:
        """Due scheduled messages, each now queued under a lease for this caller to send."""
        result = self.transport.rpc(
            "gateway_claim_scheduled",
            {
                "p_limit": limit,
                "p_burst": self._governor[0],
                "p_rate_per_s": self._governor[1],
                "p_lease_s": self._lease_s,
                "p_grace_s": grace_s,
            },
        )
        return ClaimBatch(
            claimed=[
                ClaimedMessage(
                    item["session_name"], SendPlan.from_json({"outcome": "send", **item})
                )
                for item in result["claimed"]
            ],
            failed=int(result["failed"]),
            waiting=int(result["waiting"]),
        )
