"""The store's calls for reconcile: lease sessions, apply what their hosts say chat by chat and
then for the session, give back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wa_gateway.records import HostPlacement, SessionRecord
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # reconcile's records: imported by the calls that make them
    from wa_gateway.pass_records import (
        ChatApplied,
        PendingAck,
        ReconcileApplied,
        ReconcileChat,
        ReconcileClaim,
        ReconcileFindings,
        ReconcileTarget,
    )


class ReconcileLeaseLost(Exception):
    """The pass no longer holds the session's lease (it ran past it and another pass took the
    session): nothing it found was written, and it must stop."""


def _pending(item: Mapping[str, Any]) -> PendingAck:
    from wa_gateway.pass_records import PendingAck

    return PendingAck(
        wpp_message_id=item.get("wpp_message_id"),
        phone=item.get("phone"),
        contact_lid=item.get("contact_lid"),
        status=item["status"],
        chats=tuple(item.get("chats") or ()),
    )


def _target(item: Mapping[str, Any]) -> ReconcileTarget:
    from wa_gateway.pass_records import ReconcileTarget

    return ReconcileTarget(
        session=SessionRecord.from_row(item["session"]),
        host_token=item.get("host_token"),
        host=HostPlacement.from_json(item.get("host")),
        mark=item.get("mark"),
        linked_at=item.get("linked_at"),
        pending=tuple(_pending(pending) for pending in item.get("pending") or ()),
        lease=item.get("lease"),
        chats={str(chat): int(t) for chat, t in (item.get("chats") or {}).items()},
        recent_chats=tuple(item.get("recent_chats") or ()),
    )


class ReconcileCalls:
    """The part of :class:`wa_gateway.store.Store` for reconcile passes."""

    transport: Transport
    _qr_ttls: dict[str, int]

    def claim_reconcile(self, claim: ReconcileClaim) -> tuple[list[ReconcileTarget], bool, str]:
        """The sessions ``claim`` names, leased to this pass; with whether the one named is
        leased to another, and the database's time now."""
        result = self.transport.rpc("gateway_claim_reconcile", {"p_claim": sql_record(claim)})
        targets = [_target(item) for item in result["sessions"]]
        return targets, bool(result["busy"]), str(result["now"])

    def apply_reconcile_chat(self, chat: ReconcileChat) -> ChatApplied | None:
        """Apply what one chat held (None: the session is gone); :class:`ReconcileLeaseLost`
        when the pass no longer holds the session."""
        from wa_gateway.pass_records import ChatApplied

        result = self.transport.rpc("gateway_reconcile_chat", {"p_chat": sql_record(chat)})
        if result is None:
            return None
        if result.get("lease_lost"):
            raise ReconcileLeaseLost()
        return ChatApplied(
            stored=int(result["stored"]),
            acks=int(result["acks"]),
            lids=tuple(str(lid) for lid in result.get("lid_lookups") or ()),
            media_message_ids=tuple(str(i) for i in result.get("media") or ()),
        )

    def apply_reconcile(self, findings: ReconcileFindings) -> ReconcileApplied | None:
        """Apply the session's own findings and release its lease (None: the session is
        gone); :class:`ReconcileLeaseLost` when the pass no longer holds it. ``stored`` is 0:
        messages are the chats'."""
        from wa_gateway.pass_records import ReconcileApplied

        result = self.transport.rpc(
            "gateway_reconcile_session", {"p_findings": sql_record(findings), **self._qr_ttls}
        )
        if result is None:
            return None
        if result.get("lease_lost"):
            raise ReconcileLeaseLost()
        return ReconcileApplied(
            session=SessionRecord.from_row(result["session"]),
            status_changed=bool(result["status_changed"]),
            stored=0,
            acks=int(result["acks"]),
        )

    def release_reconcile(self, leases: Sequence[str]) -> None:
        """Give back leases this pass holds and will not finish (its time ran out, or the
        host failed); a lease another pass holds since is not touched."""
        if leases:
            self.transport.rpc("gateway_release_reconcile", {"p_leases": list(leases)})
