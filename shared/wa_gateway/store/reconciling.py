"""The store's calls for reconcile: lease sessions, apply what their hosts say, give back."""

from collections.abc import Mapping, Sequence
from typing import Any

from wa_gateway.pass_records import PendingAck, ReconcileApplied, ReconcileFindings, ReconcileTarget
from wa_gateway.records import HostPlacement, LidLookup, SessionRecord
from wa_gateway.store.transport import Transport


def _target(item: Mapping[str, Any]) -> ReconcileTarget:
    return ReconcileTarget(
        session=SessionRecord.from_row(item["session"]),
        host_token=item.get("host_token"),
        host=HostPlacement.from_json(item.get("host")),
        mark=item.get("mark"),
        linked_at=item.get("linked_at"),
        pending=tuple(PendingAck(**pending) for pending in item.get("pending") or ()),
    )


class ReconcileCalls:
    """The part of :class:`wa_gateway.store.Store` for reconcile passes."""

    transport: Transport
    _qr_ttls: tuple[int, int]

    def claim_reconcile(
        self,
        *,
        limit: int,
        lease_s: int,
        ack_window_s: int,
        ack_limit: int,
        session_name: str | None = None,
        pass_started: str | None = None,
    ) -> tuple[list[ReconcileTarget], bool, str]:
        """Live sessions put right longest ago and not since ``pass_started`` (the database's
        time of the pass's first claim), or the one named, leased to this pass; with whether the
        one named is leased to another, and the database's time now."""
        result = self.transport.rpc(
            "gateway_claim_reconcile",
            {
                "p_limit": limit,
                "p_lease_s": lease_s,
                "p_ack_window_s": ack_window_s,
                "p_ack_limit": ack_limit,
                "p_session_name": session_name,
                "p_pass_started": pass_started,
            },
        )
        targets = [_target(item) for item in result["sessions"]]
        return targets, bool(result["busy"]), str(result["now"])

    def apply_reconcile(self, findings: ReconcileFindings) -> ReconcileApplied | None:
        """Apply one session's findings and release its lease (None: the session is gone)."""
        update = findings.update
        result = self.transport.rpc(
            "gateway_reconcile_session",
            {
                "p_session_name": findings.session_name,
                "p_seen_updated_at": findings.seen_updated_at,
                "p_status": update.status if update else None,
                "p_reason": update.reason if update else None,
                "p_qr_code": update.qr_code if update else None,
                "p_qr_image": update.qr_image if update else None,
                "p_pairing_code": update.pairing_code if update else None,
                "p_host_status": findings.host_status,
                "p_inbound": [
                    {**message._asdict(), "payload": dict(payload)}
                    for message, payload in findings.inbound
                ],
                "p_acks": [
                    {**ack._asdict(), "payload": dict(payload)} for ack, payload in findings.acks
                ],
                "p_mark": findings.mark,
                "p_host_token": findings.host_token,
                "p_qr_first_ttl_s": self._qr_ttls[0],
                "p_qr_next_ttl_s": self._qr_ttls[1],
            },
        )
        if result is None:
            return None
        name = findings.session_name
        host = HostPlacement.from_json(result.get("host"))
        return ReconcileApplied(
            session=SessionRecord.from_row(result["session"]),
            status_changed=bool(result["status_changed"]),
            stored=int(result["stored"]),
            acks=int(result["acks"]),
            lid_lookups=tuple(
                LidLookup(name, lid, result.get("host_token"), host)
                for lid in result.get("lid_lookups") or ()
            ),
        )

    def release_reconcile(self, session_names: Sequence[str]) -> None:
        """Give back the leases of sessions this pass will not get to."""
        if session_names:
            self.transport.rpc(
                "gateway_release_reconcile", {"p_session_names": list(session_names)}
            )
