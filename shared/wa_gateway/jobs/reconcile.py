"""Reconcile: every live session put right from its host, for what no webhook reported.

The host posts each webhook once and never retries, so an event that meets a failing function,
database or network is gone: an incoming message, an ack, a logout. A pass leases the live
sessions (``starting``, ``pairing``, ``connected``) put right longest ago, in batches, and for
each asks its host (at most ``concurrency`` sessions of one host at a time) for its state, the
messages it missed and the acks of what it sent (``reconcile_session``).

No session is skipped without asking its host: a webhook that failed leaves no trace the
gateway can see, so a recent ``last_activity`` proves that events arrived, not that none was
lost after them. What a healthy session skips is the expensive part (reading chats): the two
cheap calls show nothing past its mark. Two passes never hold one session (a lease, taken under
the session's row lock, and checked on every write: a pass that runs past it writes nothing
more), and a webhook racing a pass stores nothing twice (one row per host message id). Each
session has a deadline within the lease and the invocation's time; what a pass read by then
is kept, chat by chat, and the next pass goes on from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wa_gateway.auth.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import ApiError
from wa_gateway.events.service import DEFAULT_POLICY, EventPolicy
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.reconcile_session import HostFacts, Outcome, host_key, reconcile_one
from wa_gateway.messaging.limits import EDIT_WINDOW_S
from wa_gateway.observability import RunReport, logger
from wa_gateway.pass_records import ReconcileApplied, ReconcileClaim, ReconcileTarget
from wa_gateway.records import SessionRecord
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import Store
from wa_gateway.store.reconciling import ReconcileLeaseLost
from wa_gateway.validation import DEFAULT_ACCOUNT

if TYPE_CHECKING:
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.lambda_invoke import FunctionStart

# Stop starting sessions when less than this is left of the invocation.
_RESERVE_S = 30.0
_UNEXPECTED = ApiError.code  # what a failure no one expected is counted as
_ACK_LIMIT = 200  # pending acks per session and pass
# A session's reading stops this long before its lease ends, so its last writes come in time.
_LEASE_MARGIN_S = 30.0
# status?refresh=true reads within this, well inside the status function's timeout.
_REFRESH_BUDGET_S = 8.0


class ReconcileBusy(Exception):
    """Another pass holds the session."""


@dataclass
class ReconcileReport(RunReport):
    checked: int = 0  # sessions whose host was asked
    repaired: int = 0  # sessions whose state was put right
    messages: int = 0  # missed messages stored
    acks: int = 0  # acks applied
    skipped: int = 0  # asked, nothing past the mark and nothing to put right
    deferred: int = 0  # claimed, not reached before the deadline: first next pass
    chats_applied: int = 0  # chats whose findings were written (a round trip each)
    chats_skipped: int = 0  # chats the host could not read (get-messages' 401)
    lease_lost: int = 0  # sessions another pass took while this one was at them
    errors: dict[str, int] = field(default_factory=dict)
    host_calls: int = 0
    seconds: float = 0.0

    metric_fields = ("repaired", "messages", "acks", "errors")


@dataclass
class Reconciler:
    """Reconcile passes over the live sessions, and one session on demand."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    policy: EventPolicy = DEFAULT_POLICY
    contacts: Callable[[], ContactLookup] | None = None
    media: Callable[[], FunctionStart | None] | None = None
    concurrency: int = 4  # sessions of one host at a time
    ack_window_s: int = 24 * 3600
    backfill: bool = False
    max_chats: int = 100  # chats read per session and pass
    max_lookups: int = 50  # message-by-id calls per session and pass
    start_stuck_after_s: int = 90  # a start without progress this long failed on the host
    batch_size: int = 50
    lease_s: int = 120
    clock: Callable[[], float] = time.time

    def run(self, remaining_s: Callable[[], float] = lambda: 900.0) -> ReconcileReport:
        """One pass over the live sessions, longest unreconciled first, until every one has
        been looked at or time runs short (the rest come first next pass)."""
        started = time.monotonic()
        pass_started: str | None = None  # the database's time of the first claim
        report = ReconcileReport()
        facts = HostFacts()
        while remaining_s() > _RESERVE_S:
            # A batch's leases all run from its claim, while its sessions wait for a worker in
            # turn: each one's reading ends a margin before the lease does, whenever it starts.
            leased_until = time.monotonic() + self.lease_s - _LEASE_MARGIN_S
            targets, _, now = self._claim(self.batch_size, pass_started=pass_started)
            pass_started = pass_started or now  # each session once per pass
            if not targets:
                break
            self._run_batch(targets, facts, remaining_s, leased_until, report)
            if len(targets) < self.batch_size:
                break
        report.seconds = time.monotonic() - started
        logger.info("reconcile pass", extra=report.as_dict())
        return report

    def refresh(self, caller: Caller, account: str = DEFAULT_ACCOUNT) -> SessionRecord | None:
        """``status?refresh=true``: the caller's session put right from its host now, as a
        pass would; as stored when a pass is at it already; None when there is none."""
        name = session_name_for(caller.user_id, account)
        try:
            return self.reconcile_session(name)[0]
        except ReconcileBusy:
            return self.store.get_session(caller, name)
        except LookupError:
            return None

    def reconcile_session(self, session_name: str) -> tuple[SessionRecord, ReconcileApplied]:
        """The same for one session, now (``status?refresh=true``); host and store failures
        are raised. :class:`ReconcileBusy` when a pass holds it; LookupError when it is gone."""
        targets, busy, _ = self._claim(1, session_name=session_name)
        if busy:
            raise ReconcileBusy()
        if not targets:
            raise LookupError(session_name)
        [target] = targets
        deadline = time.monotonic() + min(_REFRESH_BUDGET_S, self.lease_s - _LEASE_MARGIN_S)
        try:
            outcome = reconcile_one(self, target, HostFacts(), deadline)
        except ReconcileLeaseLost:
            raise ReconcileBusy() from None
        except BaseException:
            self._release([target])
            raise
        if outcome.applied is None:
            raise LookupError(session_name)
        return outcome.applied.session, outcome.applied

    def _claim(
        self, batch_size: int, *, session_name: str | None = None, pass_started: str | None = None
    ) -> tuple[list[ReconcileTarget], bool, str]:
        claim = ReconcileClaim(
            batch_size=batch_size,
            lease_s=self.lease_s,
            ack_window_s=self.ack_window_s,
            ack_limit=_ACK_LIMIT,
            session_name=session_name,
            pass_started=pass_started,
            edit_window_s=EDIT_WINDOW_S,
        )
        return self.store.claim_reconcile(claim)

    def _run_batch(
        self,
        targets: Sequence[ReconcileTarget],
        facts: HostFacts,
        remaining_s: Callable[[], float],
        leased_until: float,
        report: ReconcileReport,
    ) -> None:
        by_host: dict[str, list[ReconcileTarget]] = {}
        for target in targets:
            by_host.setdefault(host_key(target), []).append(target)
        pools = [ThreadPoolExecutor(self.concurrency) for _ in by_host]
        futures: list[tuple[ReconcileTarget, Future[Outcome | None]]] = []
        # Every session not put right is given back, whatever stops the batch.
        unfinished = {target.session.session_id: target for target in targets}
        try:
            for pool, group in zip(pools, by_host.values(), strict=True):
                for target in group:
                    futures.append(
                        (
                            target,
                            pool.submit(
                                self._reconcile_in_time, target, facts, remaining_s, leased_until
                            ),
                        )
                    )
            for target, future in futures:
                try:
                    outcome = future.result()
                except ReconcileLeaseLost:
                    report.lease_lost += 1  # another pass holds it now: not ours to give back
                    del unfinished[target.session.session_id]
                    continue
                except ApiError as error:
                    report.checked += 1
                    report.errors[error.code] = report.errors.get(error.code, 0) + 1
                    continue
                except Exception as error:  # one session's fault must not stop the pass
                    report.checked += 1
                    report.errors[_UNEXPECTED] = report.errors.get(_UNEXPECTED, 0) + 1
                    logger.warning(
                        "reconcile of a session failed unexpectedly",
                        extra={"session": target.session.session_id, "error": type(error).__name__},
                    )
                    continue
                if outcome is None:
                    report.deferred += 1
                    continue
                del unfinished[target.session.session_id]  # applied: its lease is released
                report.checked += 1
                report.host_calls += outcome.host_calls
                report.chats_skipped += outcome.skipped_chats
                report.chats_applied += outcome.chats_applied
                applied = outcome.applied
                if applied is None:
                    continue
                report.repaired += applied.status_changed
                report.messages += applied.stored
                report.acks += applied.acks
                if not (applied.status_changed or applied.stored or applied.acks):
                    report.skipped += not outcome.read_chats
        finally:
            for pool in pools:
                pool.shutdown(wait=True)
            self._release(list(unfinished.values()))

    def _reconcile_in_time(
        self,
        target: ReconcileTarget,
        facts: HostFacts,
        remaining_s: Callable[[], float],
        leased_until: float,
    ) -> Outcome | None:
        now = time.monotonic()
        deadline = min(now + remaining_s() - _RESERVE_S, leased_until)
        if deadline <= now:
            return None
        try:
            return reconcile_one(self, target, facts, deadline)
        except ApiError as error:
            logger.info(
                "reconcile of a session failed",
                extra={"session": target.session.session_id, "code": error.code},
            )
            raise

    def _release(self, targets: Sequence[ReconcileTarget]) -> None:
        self.store.release_reconcile([t.lease for t in targets if t.lease])
