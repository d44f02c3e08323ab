"""A reconcile pass leases a batch of sessions at once and works through them a few at a time:
a session that waited for a worker has less of its lease left, and its reading must end before
the lease does, or its writes find the lease gone and what it read is lost for that pass."""

from __future__ import annotations

import time
from typing import Any

import pytest

from wa_gateway.jobs import reconcile
from wa_gateway.jobs.reconcile import Reconciler
from wa_gateway.pass_records import ReconcileTarget
from wa_gateway.records import SessionRecord

LEASE_S = 30.5  # the pass stops reading 30 s before a lease ends: 0.5 s of reading each
WORK_S = 0.3  # what one session takes


class Leases:
    """The store's side of a pass: one batch of leased sessions, then none."""

    def __init__(self, targets: list[ReconcileTarget]) -> None:
        self.batches = [targets, []]
        self.claimed_at: list[float] = []
        self.released: list[str] = []

    def claim_reconcile(self, claim: Any) -> tuple[list[ReconcileTarget], bool, str]:
        self.claimed_at.append(time.monotonic())
        return self.batches.pop(0), False, "2026-12-07T00:00:00Z"

    def release_reconcile(self, leases: list[str]) -> None:
        self.released += leases


def target(n: int) -> ReconcileTarget:
    session = SessionRecord(id=f"id-{n}", user_id="u", session_id=f"s{n}", status="connected")
    return ReconcileTarget(session, None, None, None, None, (), lease=f"lease-{n}")


def test_each_session_reads_only_within_the_lease_its_batch_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Leases([target(n) for n in range(4)])
    deadlines: dict[str, float] = {}

    def read(_: Any, leased: ReconcileTarget, __: Any, deadline: float) -> None:
        deadlines[leased.session.session_id] = deadline
        time.sleep(WORK_S)

    monkeypatch.setattr(reconcile, "reconcile_one", read)
    reconciler = Reconciler(store, None, None, concurrency=1, lease_s=LEASE_S)  # type: ignore[arg-type]
    reconciler.run()

    lease_ends = store.claimed_at[0] + LEASE_S - 30
    late = {name: round(d - lease_ends, 2) for name, d in deadlines.items() if d > lease_ends}
    assert late == {}, "sessions told to read past their lease's margin"
    # The first read at once; the last waited 0.9 s for its turn, with nothing of its lease
    # left to read in: it is given back for the next pass, not read past its lease.
    assert "s0" in deadlines and "s3" not in deadlines
    assert "lease-3" in store.released
