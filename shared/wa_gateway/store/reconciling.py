"""The store's calls for reconcile: lease sessions, apply what their hosts say, give back."""

from collections.abc import Mapping, Sequence
from typing import Any

from wa_gateway.pass_records import (
    PendingAck,
    ReconcileApplied,
    ReconcileClaim,
    ReconcileFindings,
    ReconcileTarget,
)
from wa_gateway.records import HostPlacement, LidLookup, MediaFetch, SessionRecord
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport


def _target(item: Mapping[str, Any]) -> ReconcileTarget:
    return ReconcileTarget(
        session=SessionRecord.from_row(item["session"]),
        host_token=item.get("host_token"),
        host=HostPlacement.from_json(item.get("host")),
        mark=item.get("mark"),
        linked_at=item.get("linked_at"),
        pending=tuple(PendingAck(**pending) for pending in item.get("pending") or ()),
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

    def apply_reconcile(self, findings: ReconcileFindings) -> ReconcileApplied | None:
        """Apply one session's findings and release its lease (None: the session is gone)."""
        result = self.transport.rpc(
            "gateway_reconcile_session", {"p_findings": sql_record(findings), **self._qr_ttls}
        )
        if result is None:
            return None
        name = findings.session_name
        return ReconcileApplied(
            session=SessionRecord.from_row(result["session"]),
            status_changed=bool(result["status_changed"]),
            stored=int(result["stored"]),
            acks=int(result["acks"]),
            lid_lookups=tuple(
                LidLookup.from_json(name, lid, result) for lid in result.get("lid_lookups") or ()
            ),
            media_fetches=tuple(
                MediaFetch.from_json(name, item, result) for item in result.get("media") or ()
            ),
        )

    def release_reconcile(self, session_names: Sequence[str]) -> None:
        """Give back the leases of sessions this pass will not get to."""
        if session_names:
            self.transport.rpc(
                "gateway_release_reconcile", {"p_session_names": list(session_names)}
            )
