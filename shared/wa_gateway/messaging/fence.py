"""The attempt as the fence of a send: each take of an outbox row counts one more attempt;
right before the host is asked to send, a caller whose lease may not outlast the call, or
whose row was attempted before (a late ack may have shown it went out), holds the row again
(``gateway_hold_send``) and sends only if it still may (:class:`LeaseLost` otherwise)."""

from __future__ import annotations

import time

from wa_gateway.records import MessageRecord
from wa_gateway.send_records import SendPlan
from wa_gateway.store import Store


class LeaseLost(Exception):
    """The outbox row is no longer this caller's to send: its lease ran out and another
    attempt took it over, or an ack showed an earlier attempt's send went out. ``message`` is
    the row as it is now."""

    def __init__(self, message: MessageRecord):
        super().__init__("the outbox row is another attempt's now")
        self.message = message


class Hold:
    """A caller's hold on an outbox row, made sure of right before the host is asked to send:
    while the lease surely outlasts the call (``bound_s``: the host's answer and its record)
    and the row was never attempted before, no round trip is needed."""

    def __init__(self, store: Store, plan: SendPlan, bound_s: float):
        assert plan.message is not None
        self.store = store
        self.message = plan.message
        self.until = plan.held_until or 0.0
        self.bound_s = bound_s

    def before_send(self) -> None:
        now = time.monotonic()
        if self.message.attempts <= 1 and self.until - now >= self.bound_s:
            return
        held, current = self.store.hold_send(self.message, self.store.send_lease_s)
        if not held:
            raise LeaseLost(current)
        self.until = now + self.store.send_lease_s
