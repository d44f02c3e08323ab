"""The store's calls for templates and scheduled messages."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, get_args

from wa_gateway.records import MessageRecord
from wa_gateway.send_records import (
    OutboundRequest,
    PreparedSend,
    SendOptions,
    SendOutcome,
    SendPlan,
)
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # the scheduler's records: imported by the call that makes them
    from wa_gateway.pass_records import ClaimBatch

_SEND_OUTCOMES = set(get_args(SendOutcome))


class SchedulingCalls:
    """The part of :class:`wa_gateway.store.Store` for sends with a template or a time."""

    transport: Transport
    _governor: dict[str, float]

    def prepare_send(self, request: OutboundRequest, options: SendOptions) -> PreparedSend:
        """Render the caller's template and go on as ``begin_send``, or schedule the message."""
        asked = time.monotonic()
        result = self.transport.rpc(
            "gateway_prepare_send",
            {"p_send": sql_record(request), "p_options": sql_record(options), **self._governor},
            # Without a key, a second call would queue (or schedule) a second message.
            repeatable=request.idempotency_key is not None,
        )
        message = result.get("message")
        return PreparedSend(
            outcome=result["outcome"],
            plan=SendPlan.from_json(result, asked=asked, lease_s=self._governor["p_lease_s"])
            if result["outcome"] in _SEND_OUTCOMES
            else None,
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

    def claim_scheduled(self, *, limit: int, grace_s: int, lease_s: int) -> ClaimBatch:
        """Due scheduled messages, each now queued and held ``lease_s`` seconds for this
        caller to send (a pass holds them for what is left of its invocation)."""
        from wa_gateway.pass_records import ClaimBatch, ClaimedMessage

        asked = time.monotonic()
        result = self.transport.rpc(
            "gateway_claim_scheduled",
            {"p_limit": limit, "p_grace_s": grace_s, **self._governor, "p_lease_s": lease_s},
        )
        return ClaimBatch(
            claimed=[
                ClaimedMessage(
                    item["session_name"],
                    SendPlan.from_json({"outcome": "send", **item}, asked=asked, lease_s=lease_s),
                )
                for item in result["claimed"]
            ],
            failed=int(result["failed"]),
            waiting=int(result["waiting"]),
        )
