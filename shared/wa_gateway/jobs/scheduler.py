"""The scheduler: sends the scheduled messages that are due, exactly once.

Each pass claims due messages in batches (``gateway_claim_scheduled``, one round trip): a
session at a time per pass (its row locked with ``skip locked``, so two passes that overlap
share the work and never send one message twice), as many of its messages as its token bucket
holds (the governor of a direct send), each moved to ``queued`` as a direct send's outbox row,
under a lease as long as the pass may still run (the time its invocation has left): however
slowly the host answers, no other pass takes a message this one may still send. It then sends
each through the same host path as a direct send (``MessageService.deliver``). A pass that dies
leaves its claimed rows under their leases; once a lease runs out a later pass takes them
again, unless a late ack showed they went out.
A message whose session is not connected waits, up to ``grace_s`` past its time, and then
fails with ``session_not_connected``; one held back that long for any other reason fails with
its last error or ``schedule_expired``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wa_gateway.errors import ApiError
from wa_gateway.messaging.service import MessageService
from wa_gateway.observability import logger
from wa_gateway.store import Store

# Stop claiming when less than this is left of the invocation: a batch's sends must finish.
_RESERVE_S = 15.0


@dataclass
class SchedulerReport:
    sent: int = 0
    failed: int = 0  # past their time by more than the grace (the host's refusals: errors)
    errors: dict[str, int] = field(default_factory=dict)
    waiting_sessions: int = 0
    claims: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "errors": dict(sorted(self.errors.items())),
            "waiting_sessions": self.waiting_sessions,
            "claims": self.claims,
        }

    def counts(self) -> dict[str, int]:
        """The metrics of a pass (``scheduler-<name>``)."""
        return {"sent": self.sent, "failed": self.failed}


@dataclass
class Scheduler:
    store: Store
    messages: MessageService
    grace_s: int = 3600
    batch_size: int = 100

    def run(self, remaining_s: Callable[[], float] = lambda: 900.0) -> SchedulerReport:
        """One pass: claim and send until nothing due can be sent now, or time runs short."""
        report = SchedulerReport()
        while remaining_s() > _RESERVE_S:
            batch = self.store.claim_scheduled(
                limit=self.batch_size, grace_s=self.grace_s, lease_s=math.ceil(remaining_s())
            )
            report.claims += 1
            report.failed += batch.failed
            report.waiting_sessions = batch.waiting
            for claimed in batch.claimed:
                try:
                    self.messages.deliver(claimed.session_name, claimed.plan)
                    report.sent += 1
                except ApiError as error:
                    report.errors[error.code] = report.errors.get(error.code, 0) + 1
            if not batch.claimed:
                break
        logger.info("scheduler pass", extra=report.as_dict())
        return report
