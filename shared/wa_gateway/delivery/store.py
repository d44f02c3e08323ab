"""The delivery worker's calls to the database (the ``event_delivery`` migration's functions),
over the store's transport."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from wa_gateway.delivery.http import Outcome
from wa_gateway.store.transport import Transport


class Pending(NamedTuple):
    """A delivery to make: ``body`` is the notification as posted."""

    id: int
    seq: int
    notification_id: int
    attempts: int
    body: Mapping[str, Any]


class Claim(NamedTuple):
    """An endpoint leased to this worker, with its first pending deliveries in order."""

    endpoint_id: str
    user_id: str
    url: str
    secret: str  # encrypted
    lease_token: str
    deliveries: tuple[Pending, ...]


class Recorded(NamedTuple):
    lost: bool  # the lease ran out and another worker took the endpoint
    lease_token: str | None = None
    deliveries: tuple[Pending, ...] = ()  # the next batch, under the renewed lease


class RetryPolicy(NamedTuple):
    base_s: int
    max_s: int
    for_s: int


def _pending(items: Sequence[Mapping[str, Any]]) -> tuple[Pending, ...]:
    return tuple(Pending(**item) for item in items)


class DeliveryCalls:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def claim(self, *, limit: int, batch: int, lease_s: int) -> list[Claim]:
        result = self.transport.rpc(
            "gateway_claim_deliveries",
            {"p_record": {"limit": limit, "batch": batch, "lease_s": lease_s}},
        )
        return [
            Claim(
                endpoint_id=item["endpoint"]["id"],
                user_id=item["endpoint"]["user_id"],
                url=item["endpoint"]["url"],
                secret=item["endpoint"]["secret"],
                lease_token=item["lease_token"],
                deliveries=_pending(item["deliveries"]),
            )
            for item in result
        ]

    def record(
        self,
        claim: Claim,
        lease_token: str,
        results: Sequence[tuple[int, Outcome]],
        *,
        retry: RetryPolicy,
        more: bool,
        batch: int,
        lease_s: int,
    ) -> Recorded:
        result = self.transport.rpc(
            "gateway_record_deliveries",
            {
                "p_record": {
                    "endpoint_id": claim.endpoint_id,
                    "lease_token": lease_token,
                    "results": [
                        {"id": d, "ok": o.ok, "status": o.status, "error": o.error}
                        for d, o in results
                    ],
                    "retry_base_s": retry.base_s,
                    "retry_max_s": retry.max_s,
                    "retry_for_s": retry.for_s,
                    "more": more,
                    "batch": batch,
                    "lease_s": lease_s,
                }
            },
        )
        return Recorded(
            lost=bool(result["lost"]),
            lease_token=result.get("lease_token"),
            deliveries=_pending(result.get("deliveries") or ()),
        )

    def forget(self, *, older_than_s: int, limit: int) -> int:
        """Delete old notifications with nothing pending, and their deliveries."""
        return int(
            self.transport.rpc(
                "gateway_forget_notifications",
                {"p_record": {"older_than_s": older_than_s, "limit": limit}},
            )
        )
