"""The scheduler: sends the scheduled messages that are due, exactly once.

Each pass claims due messages in batches (``gateway_claim_scheduled``, one round trip): a
session at a time per pass (its row locked with ``skip locked``, so two passes that overlap
share the work and never send one message twice), as many of its messages as its token bucket
holds (the governor of a direct send), each moved to ``queued`` under a lease as a direct
send's outbox row. It then sends each through the same host path as a direct send
(``MessageService.deliver``).

The lease of a claim is what is left of the invocation: no other pass takes a message while
the pass that holds it may still send it, however slow the host, and a pass that dies frees
what it held when its invocation would have ended. A pass stops sending when less is left
than one send takes, and gives back what it did not get to; the next claim takes it at once.
The attempt is the fence beside the lease: a message taken again after a lease ran out is held
afresh right before the host call, and a finish by an attempt that lost it changes nothing
(``messaging.service``).

A message whose session is not connected, or that the host refused before sending, waits, up
to ``grace_s`` past its time, and then fails with ``session_not_connected`` or its last error
(``schedule_expired`` if it had none). A failure the pass did not expect for one message is
counted, and the pass goes on; the message stays under its lease for a later pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from wa_gateway.errors import ApiError
from wa_gateway.messaging.fence import LeaseLost
from wa_gateway.messaging.service import MessageService
from wa_gateway.observability import RunReport, logger
from wa_gateway.pass_records import ClaimedMessage
from wa_gateway.store import Store

_UNEXPECTED = ApiError.code  # what a failure no one expected is counted as


@dataclass
class SchedulerReport(RunReport):
    sent: int = 0
    failed: int = 0  # past their time by more than the grace, failed with a reason
    errors: dict[str, int] = field(default_factory=dict)
    waiting_sessions: int = 0
    claims: int = 0
    given_back: int = 0  # claimed, not sent before the invocation's time ran short
    taken_over: int = 0  # claimed, then found to be another attempt's (or already sent)
    metric_fields = ("sent", "failed")

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


@dataclass
class Scheduler:
    store: Store
    messages: MessageService
    grace_s: int = 3600
    batch_size: int = 100

    def run(self, remaining_s: Callable[[], float] = lambda: 900.0) -> SchedulerReport:
        """One pass: claim and send until nothing due can be sent now, or until less of the
        invocation is left (``remaining_s``) than one send takes."""
        report = SchedulerReport()
        reserve_s = self.messages.send_bound_s()
        while remaining_s() > reserve_s:
            batch = self.store.claim_scheduled(
                limit=self.batch_size, grace_s=self.grace_s, lease_s=math.ceil(remaining_s())
            )
            report.claims += 1
            report.failed += batch.failed
            report.waiting_sessions = batch.waiting
            for index, claimed in enumerate(batch.claimed):
                if remaining_s() <= reserve_s:
                    self._give_back(batch.claimed[index:], report)
                    break
                self._send(claimed, report)
            if not batch.claimed:
                break
        logger.info("scheduler pass", extra=report.as_dict())
        return report

    def _send(self, claimed: ClaimedMessage, report: SchedulerReport) -> None:
        try:
            self.messages.deliver(claimed.session_name, claimed.plan)
            report.sent += 1
        except LeaseLost:
            report.taken_over += 1
        except ApiError as error:
            report.count_error(error.code)
        except Exception as error:  # one message's fault must not stop the pass
            report.count_error(_UNEXPECTED)
            logger.warning(
                "scheduled message failed unexpectedly; it waits for a later pass",
                extra={"session": claimed.session_name, "error": type(error).__name__},
            )

    def _give_back(self, unsent: list[ClaimedMessage], report: SchedulerReport) -> None:
        """Free what this pass claimed and will not send now: the next claim takes it."""
        for claimed in unsent:
            assert claimed.plan.message is not None
            self.store.hold_send(claimed.plan.message, 0)
            report.given_back += 1
