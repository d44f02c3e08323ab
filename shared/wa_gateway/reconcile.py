"""Reconcile: every live session put right from its host, for what no webhook reported.

The host posts each webhook once and never retries, so an event that meets a failing function,
database or network is gone: an incoming message, an ack, a logout. A pass leases the live
sessions (``starting``, ``pairing``, ``connected``) put right longest ago, in batches, and for
each asks its host (at most ``concurrency`` sessions of one host at a time):

* **the state**: ``list-chats`` through ``call_if_connected`` (its ``check-connection-session``
  says connected or not); not connected, ``status-session`` says what it is instead (a new QR,
  INITIALIZING, CLOSED). A connected session the host has closed was logged out on the phone,
  unless the host has restarted since it linked or no longer lists it (``host_lost_session``).
* **missed messages**: each chat's last-message time (``t``) from ``list-chats`` against the
  session's mark, the host time up to which its chats have been looked at; only chats past the
  mark are read (``get-messages``, paged back until the mark), so an idle session costs two host
  calls. Unread counts are not used: with ``readMessage`` off (as operators are told to set it)
  "unread" does not mean "missed", and the user may read chats on the phone. The mark starts
  at the link time (``connected_at``): nothing from before the link is imported unless
  ``backfill`` (BACKFILL_ON_LINK); it moves to the newest chat time seen less a settling margin,
  so a message written in the same second as the listing is looked for again.
* **acks** of outbound messages not yet read or failed and younger than ``ack_window_s``: from
  the messages of their chats (read anyway when behind), else ``message-by-id``; a send whose
  answer never came is matched to the chat's message by the ack path's own rule.

None of these routes marks anything read on the phone (see ``HostClient.list_chats``). All that
is found for a session is applied in one transaction through the webhook's own SQL functions
(``gateway_reconcile_session``): messages stored once by host message id, acks only forward,
the state as a fresh look unless a webhook changed the session meanwhile, and each change
logged as ``reconcile.*`` in the event log.

No session is skipped without asking its host: a webhook that failed leaves no trace the
gateway can see, so a recent ``last_activity`` proves that events arrived, not that none was
lost after them. What a healthy session skips is the expensive part (reading chats): the two
cheap calls show nothing past its mark. Two passes never hold one session (a lease, taken under
the session's row lock), and a webhook racing a pass stores nothing twice (one row per host
message id).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from wa_gateway import qr, transitions
from wa_gateway.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import ApiError
from wa_gateway.events import DEFAULT_POLICY, EventPolicy, loggable
from wa_gateway.host_directory import HostDirectory
from wa_gateway.host_session import HostSession
from wa_gateway.message_events import ack_from_event, inbound_from_event, serialized_id
from wa_gateway.observability import logger
from wa_gateway.pass_records import PendingAck, ReconcileApplied, ReconcileFindings, ReconcileTarget
from wa_gateway.records import Ack, InboundMessage, SessionRecord, SessionUpdate
from wa_gateway.sessions import session_name_for
from wa_gateway.store import Store
from wa_gateway.validation import DEFAULT_ACCOUNT

if TYPE_CHECKING:
    from wa_gateway.contacts import ContactLookup

# Stop starting sessions when less than this is left of the invocation.
_RESERVE_S = 30.0
# Chats whose last message is this recent are read again next pass: a message of the same
# second as the listing, or one whose time the host set a little behind, is not missed.
_SETTLE_S = 120
_PAGE = 50  # messages per get-messages call
_MAX_PAGES = 20  # per chat and pass: the mark does not move past a chat not read to the end
_ACK_LIMIT = 200  # pending acks per session and pass


class ReconcileBusy(Exception):
    """Another pass holds the session."""


@dataclass
class ReconcileReport:
    checked: int = 0  # sessions whose host was asked
    repaired: int = 0  # sessions whose state was put right
    messages: int = 0  # missed messages stored
    acks: int = 0  # acks applied
    skipped: int = 0  # asked, nothing past the mark and nothing to put right
    deferred: int = 0  # claimed, not reached before the deadline: first next pass
    errors: dict[str, int] = field(default_factory=dict)
    host_calls: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "repaired": self.repaired,
            "messages": self.messages,
            "acks": self.acks,
            "skipped": self.skipped,
            "deferred": self.deferred,
            "errors": dict(sorted(self.errors.items())),
            "host_calls": self.host_calls,
            "seconds": round(self.seconds, 3),
        }


class _Outcome(NamedTuple):
    applied: ReconcileApplied | None
    host_calls: int
    read_chats: bool


class _HostFacts:
    """Per host and pass, asked only when a session is found closed: how long the host has
    been up and which sessions it keeps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[str, tuple[float | None, frozenset[str] | None]] = {}

    def of(self, key: str, host: HostSession) -> tuple[float | None, frozenset[str] | None]:
        with self._lock:
            if key not in self._facts:
                client = host.host
                try:
                    uptime = client.uptime_s()
                except ApiError:
                    uptime = None
                try:
                    names: frozenset[str] | None = frozenset(client.list_sessions())
                except ApiError:
                    names = None
                self._facts[key] = (uptime, names)
            return self._facts[key]


class _CountingHost:
    """Counts the host calls of one session's reconcile."""

    def __init__(self, host: HostSession) -> None:
        self.host = host
        self.calls = 0

    def call[T](self, operation: Callable[[str], T]) -> T:
        self.calls += 1
        return self.host.call(operation)

    def call_if_connected[T](self, operation: Callable[[str], T]) -> T | None:
        self.calls += 1
        answer = self.host.call_if_connected(operation)
        self.calls += answer is not None
        return answer


@dataclass
class Reconciler:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    policy: EventPolicy = DEFAULT_POLICY
    contacts: Callable[[], ContactLookup] | None = None
    concurrency: int = 4  # sessions of one host at a time
    ack_window_s: int = 24 * 3600
    backfill: bool = False
    batch_size: int = 50
    lease_s: int = 120
    clock: Callable[[], float] = time.time

    # --- a pass ------------------------------------------------------------------------

    def run(self, remaining_s: Callable[[], float] = lambda: 900.0) -> ReconcileReport:
        """One pass over the live sessions, longest unreconciled first, until every one has
        been looked at or time runs short (the rest come first next pass)."""
        started = time.monotonic()
        pass_started: str | None = None  # the database's time of the first claim
        report = ReconcileReport()
        facts = _HostFacts()
        while remaining_s() > _RESERVE_S:
            targets, _, now = self.store.claim_reconcile(
                limit=self.batch_size,
                lease_s=self.lease_s,
                ack_window_s=self.ack_window_s,
                ack_limit=_ACK_LIMIT,
                pass_started=pass_started,
            )
            pass_started = pass_started or now  # each session once per pass
            if not targets:
                break
            self._run_batch(targets, facts, remaining_s, report)
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
        targets, busy, _ = self.store.claim_reconcile(
            limit=1,
            lease_s=self.lease_s,
            ack_window_s=self.ack_window_s,
            ack_limit=_ACK_LIMIT,
            session_name=session_name,
        )
        if busy:
            raise ReconcileBusy()
        if not targets:
            raise LookupError(session_name)
        [target] = targets
        try:
            outcome = self._reconcile(target, _HostFacts())
        except BaseException:
            self.store.release_reconcile([session_name])
            raise
        if outcome.applied is None:
            raise LookupError(session_name)
        return outcome.applied.session, outcome.applied

    def _run_batch(
        self,
        targets: Sequence[ReconcileTarget],
        facts: _HostFacts,
        remaining_s: Callable[[], float],
        report: ReconcileReport,
    ) -> None:
        by_host: dict[str, list[ReconcileTarget]] = {}
        for target in targets:
            by_host.setdefault(_host_key(target), []).append(target)
        pools = [ThreadPoolExecutor(self.concurrency) for _ in by_host]
        futures: list[tuple[ReconcileTarget, Future[_Outcome | None]]] = []
        try:
            for pool, group in zip(pools, by_host.values(), strict=True):
                for target in group:
                    futures.append(
                        (target, pool.submit(self._reconcile_in_time, target, facts, remaining_s))
                    )
            deferred: list[str] = []
            for target, future in futures:
                try:
                    outcome = future.result()
                except ApiError as error:
                    report.checked += 1
                    report.errors[error.code] = report.errors.get(error.code, 0) + 1
                    deferred.append(target.session.session_id)
                    continue
                if outcome is None:
                    report.deferred += 1
                    deferred.append(target.session.session_id)
                    continue
                report.checked += 1
                report.host_calls += outcome.host_calls
                applied = outcome.applied
                if applied is None:
                    continue
                report.repaired += applied.status_changed
                report.messages += applied.stored
                report.acks += applied.acks
                if not (applied.status_changed or applied.stored or applied.acks):
                    report.skipped += not outcome.read_chats
            self.store.release_reconcile(deferred)
        finally:
            for pool in pools:
                pool.shutdown(wait=True)

    def _reconcile_in_time(
        self, target: ReconcileTarget, facts: _HostFacts, remaining_s: Callable[[], float]
    ) -> _Outcome | None:
        if remaining_s() <= _RESERVE_S:
            return None
        try:
            return self._reconcile(target, facts)
        except ApiError as error:
            logger.info(
                "reconcile of a session failed",
                extra={"session": target.session.session_id, "code": error.code},
            )
            raise

    # --- one session ---------------------------------------------------------------------

    def _reconcile(self, target: ReconcileTarget, facts: _HostFacts) -> _Outcome:
        session = target.session
        name = session.session_id
        assert self.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
        host_session = HostSession(
            self.hosts.client_for(target.host), self.keyring, name, target.host_token
        )
        host = _CountingHost(host_session)
        update: SessionUpdate | None = None
        inbound: list[tuple[InboundMessage, Mapping[str, Any]]] = []
        acks: list[tuple[Ack, Mapping[str, Any]]] = []
        mark: int | None = None
        read_chats = False

        chats = host.call_if_connected(lambda token: host_session.host.list_chats(name, token))
        if chats is not None:
            host_status: str | None = "CONNECTED"
            update = SessionUpdate(name, "connected")
            messages = _ChatReader(self, host, host_session, target, self.clock())
            inbound, acks, mark = messages.read(chats)
            read_chats = messages.chats_read > 0
        else:
            state = host.call(lambda token: host_session.host.status_session(name, token))
            host_status = state.status
            update = transitions.from_host_answer(name, state, after_start=False)
            if update is not None and update.status == "disconnected":
                update = update._replace(reason=self._why_closed(target, host_session, facts))
            elif update is not None:
                update = qr.with_qr_image(update)

        applied = self.store.apply_reconcile(
            ReconcileFindings(
                session_name=name,
                seen_updated_at=session.updated_at,
                update=update,
                host_status=host_status,
                inbound=tuple(inbound),
                acks=tuple(acks),
                mark=mark,
                host_token=host_session.new_token_ciphertext,
            )
        )
        if applied is not None and applied.lid_lookups and self.contacts is not None:
            lookup = self.contacts()
            for lid in applied.lid_lookups:
                lookup.resolve(lid)
        return _Outcome(applied, host.calls, read_chats)

    def _why_closed(self, target: ReconcileTarget, host: HostSession, facts: _HostFacts) -> str:
        """A word the page turns into a sentence, for a session the host says is closed."""
        if target.session.status != "connected":
            return "pairing_ended"  # the QR or code was not used in time (the host's autoClose)
        uptime, names = facts.of(_host_key(target), host)
        if names is not None and target.session.session_id not in names:
            return "host_lost_session"
        linked_at = target.linked_at
        if uptime is not None and linked_at is not None and self.clock() - uptime > linked_at:
            return "host_lost_session"  # the host restarted since the link and did not restore it
        return "logged_out_on_phone"


class _ChatReader:
    """One connected session's chats against its mark: the missed messages and the acks."""

    def __init__(
        self,
        reconciler: Reconciler,
        host: _CountingHost,
        host_session: HostSession,
        target: ReconcileTarget,
        now: float,
    ) -> None:
        self.r = reconciler
        self.host = host
        self.client = host_session.host
        self.name = target.session.session_id
        self.target = target
        self.now = int(now)
        linked = target.linked_at if target.linked_at is not None else self.now
        self.floor = 0 if reconciler.backfill else linked
        # Everything after the mark is looked at: at first, everything from the link's second.
        self.mark = target.mark if target.mark is not None else self.floor - 1
        self.chats_read = 0
        self._seen: set[str] = set()  # host message ids read this pass

    def read(
        self, chats: Sequence[Mapping[str, Any]]
    ) -> tuple[
        list[tuple[InboundMessage, Mapping[str, Any]]], list[tuple[Ack, Mapping[str, Any]]], int
    ]:
        behind: dict[str, int] = {}
        newest = self.mark
        for chat in chats:
            chat_id = serialized_id(chat.get("id"))
            t = chat.get("t")
            if chat_id is None or not isinstance(t, int) or not self._wanted(chat_id):
                continue
            if t > self.mark:
                behind[chat_id] = t
                newest = max(newest, t)
        pending = {p.wpp_message_id: p for p in self.target.pending if p.wpp_message_id}
        unmatched_chats = _chats_of(p for p in self.target.pending if p.wpp_message_id is None)
        ack_chats = _chats_of(pending.values())

        inbound: dict[str, tuple[int, InboundMessage, Mapping[str, Any]]] = {}
        acks: dict[str, tuple[Ack, Mapping[str, Any]]] = {}
        complete = True
        for chat_id in sorted({*behind, *ack_chats, *unmatched_chats}):
            messages, covered = self._messages_of(chat_id, down_to=self.mark)
            complete = complete and (covered or chat_id not in behind)
            for message in messages:
                self._take(message, chat_id in unmatched_chats, pending, inbound, acks)
        for wpp_id in [i for i in pending if i not in acks and i not in self._seen]:
            found = self.host.call(partial(self.client.message_by_id, self.name, id=wpp_id))
            if found is not None:
                self._take(found, False, pending, inbound, acks)
        ordered = sorted(inbound.values(), key=lambda item: item[0])
        settled = min(newest, self.now - _SETTLE_S)
        mark = max(self.mark, settled) if complete else self.mark
        return [(m, p) for _, m, p in ordered], list(acks.values()), mark

    def _wanted(self, chat_id: str) -> bool:
        if chat_id.endswith(("@c.us", "@lid")):
            return True
        if chat_id.endswith("@g.us"):
            return self.r.policy.groups
        return chat_id == "status@broadcast" and self.r.policy.status_broadcasts

    def _messages_of(self, chat_id: str, *, down_to: int) -> tuple[list[dict[str, Any]], bool]:
        """The chat's messages newer than ``down_to`` (and a few older), oldest first; with
        whether they reach back to it."""
        self.chats_read += 1
        found: list[dict[str, Any]] = []
        before: str | None = None
        for _ in range(_MAX_PAGES):
            page = self.host.call(
                partial(
                    self.client.chat_messages, self.name, chat=chat_id, count=_PAGE, before=before
                )
            )
            found = page + found
            oldest = page[0] if page else None
            if (
                oldest is None
                or len(page) < _PAGE
                or not isinstance(oldest.get("t"), int)
                or oldest["t"] <= down_to
            ):
                return found, True
            before = serialized_id(oldest.get("id"))
            if before is None:
                return found, True
        return found, False

    def _take(
        self,
        message: Mapping[str, Any],
        unmatched_chat: bool,
        pending: Mapping[str, PendingAck],
        inbound: dict[str, tuple[int, InboundMessage, Mapping[str, Any]]],
        acks: dict[str, tuple[Ack, Mapping[str, Any]]],
    ) -> None:
        wpp_id = serialized_id(message.get("id"))
        t = message.get("t")
        if wpp_id is None or not isinstance(t, int):
            return
        self._seen.add(wpp_id)
        if message.get("fromMe"):
            if wpp_id in pending or (unmatched_chat and t >= self.floor):
                ack = ack_from_event(self.name, {**message, "event": "onack"})
                if ack is not None:
                    acks[wpp_id] = (ack, {"id": wpp_id, "ack": message.get("ack")})
            return
        if t <= self.mark or t < self.floor or wpp_id in inbound:
            return
        found = inbound_from_event(
            self.name,
            {**message, "event": "onmessage"},
            groups=self.r.policy.groups,
            status_broadcasts=self.r.policy.status_broadcasts,
        )
        if found is not None:
            inbound[wpp_id] = (t, found, loggable(message))


def _chats_of(pending: Iterable[PendingAck]) -> set[str]:
    """The chat ids of these messages' contacts."""
    chats = set()
    for message in pending:
        if message.phone:
            chats.add(f"{message.phone}@c.us")
        elif message.contact_lid:
            chats.add(f"{message.contact_lid}@lid")
    return chats


def _host_key(target: ReconcileTarget) -> str:
    return target.host.id if target.host else "default"
