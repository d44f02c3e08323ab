"""One session put right from its host, for a reconcile pass (``reconcile``) or a status refresh.

The host is asked for:

* **the state**: ``list-chats`` through ``call_if_connected`` (its ``check-connection-session``
  says connected or not); not connected, ``status-session`` says what it is instead (a new QR,
  INITIALIZING, CLOSED). A connected session the host has closed was logged out on the phone,
  unless the host has restarted since it linked or no longer lists it (``host_lost_session``).
  A linked session the host is bringing up again (a restart restoring it) is ``starting``
  (``syncing``) until the host has it; a start the host has held in INITIALIZING for longer
  than ``start_stuck_after_s`` never launched its browser, and is ``disconnected``
  (``start_failed``), so the next start begins afresh.
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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from wa_gateway.errors import ApiError
from wa_gateway.events.host_messages import ack_from_event, inbound_from_event, serialized_id
from wa_gateway.events.service import loggable
from wa_gateway.host.session import HostSession
from wa_gateway.pass_records import (
    FoundAck,
    FoundMessage,
    PendingAck,
    ReconcileApplied,
    ReconcileFindings,
    ReconcileTarget,
)
from wa_gateway.records import SessionRecord, SessionUpdate
from wa_gateway.sessions import qr, transitions

if TYPE_CHECKING:
    from wa_gateway.crypto import Keyring
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.media.incoming import IncomingMedia
    from wa_gateway.store import Store

# Chats whose last message is this recent are read again next pass: a message of the same
# second as the listing, or one whose time the host set a little behind, is not missed.
_SETTLE_S = 120
_PAGE = 50  # messages per get-messages call
_MAX_PAGES = 20  # per chat and pass: the mark does not move past a chat not read to the end


class ReconcileParts(Protocol):
    """What one session's reconcile uses of the pass that runs it (``Reconciler``)."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    policy: EventPolicy
    contacts: Callable[[], ContactLookup] | None
    media: Callable[[], IncomingMedia] | None
    backfill: bool
    start_stuck_after_s: int

    def clock(self) -> float: ...


class Outcome(NamedTuple):
    """What one session's reconcile did: what the store applied (None: the session is gone),
    the host calls it took, and whether it read any chat."""

    applied: ReconcileApplied | None
    host_calls: int
    read_chats: bool


class HostFacts:
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


def reconcile_one(r: ReconcileParts, target: ReconcileTarget, facts: HostFacts) -> Outcome:
    """Ask the session's host what it holds and apply all of it in one transaction
    (``gateway_reconcile_session``), with ``r``'s settings. Host and store failures are
    raised; ``facts`` is the pass's, asked only for a session found closed."""
    session = target.session
    name = session.session_id
    assert r.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
    host_session = HostSession(r.hosts.client_for(target.host), r.keyring, name, target.host_token)
    host = _CountingHost(host_session)
    update: SessionUpdate | None = None
    inbound: list[FoundMessage] = []
    acks: list[FoundAck] = []
    mark: int | None = None
    read_chats = False

    chats = host.call_if_connected(lambda token: host_session.host.list_chats(name, token))
    if chats is not None:
        host_status: str | None = "CONNECTED"
        update = SessionUpdate(name, "connected")
        messages = _ChatReader(r, host, host_session, target, r.clock())
        inbound, acks, mark = messages.read(chats)
        read_chats = messages.chats_read > 0
    else:
        state = host.call(lambda token: host_session.host.status_session(name, token))
        host_status = state.status
        update = transitions.from_fresh_look(session, state)
        if _start_stuck(r, session, host_status):
            update = SessionUpdate(name, "disconnected", reason="start_failed")
        elif update is not None and update.status == "disconnected":
            update = update._replace(reason=_why_closed(target, host_session, facts, r.clock))
        elif update is not None:
            update = qr.with_qr_image(update)

    applied = r.store.apply_reconcile(
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
    if applied is not None and applied.lid_lookups and r.contacts is not None:
        lookup = r.contacts()
        for lid in applied.lid_lookups:
            lookup.resolve(lid)
    if applied is not None and applied.media_fetches and r.media is not None:
        media = r.media()
        for fetch in applied.media_fetches:
            media.fetch(fetch)
    return Outcome(applied, host.calls, read_chats)


def _start_stuck(r: ReconcileParts, session: SessionRecord, host_status: str | None) -> bool:
    """A start the host has held in INITIALIZING, with no QR, code or login, for longer than
    a launch takes: its browser never launched (a crash, out of memory), and every later
    start would return early."""
    if host_status != "INITIALIZING" or session.status != "starting" or session.status_reason:
        return False
    if session.last_activity is None:
        return False
    since = datetime.fromisoformat(session.last_activity).timestamp()
    return r.clock() - since > r.start_stuck_after_s


def _why_closed(
    target: ReconcileTarget, host: HostSession, facts: HostFacts, clock: Callable[[], float]
) -> str:
    """A word the page turns into a sentence, for a session the host says is closed."""
    if target.session.status != "connected" and not transitions.is_syncing(target.session):
        return "pairing_ended"  # the QR or code was not used in time (the host's autoClose)
    uptime, names = facts.of(host_key(target), host)
    if names is not None and target.session.session_id not in names:
        return "host_lost_session"
    linked_at = target.linked_at
    if uptime is not None and linked_at is not None and clock() - uptime > linked_at:
        return "host_lost_session"  # the host restarted since the link and did not restore it
    return "logged_out_on_phone"


class _ChatReader:
    """One connected session's chats against its mark: the missed messages and the acks."""

    def __init__(
        self,
        reconciler: ReconcileParts,
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
    ) -> tuple[list[FoundMessage], list[FoundAck], int]:
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

        inbound: dict[str, tuple[int, FoundMessage]] = {}
        acks: dict[str, FoundAck] = {}
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
        return [found for _, found in ordered], list(acks.values()), mark

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
        inbound: dict[str, tuple[int, FoundMessage]],
        acks: dict[str, FoundAck],
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
                    acks[wpp_id] = FoundAck(ack, {"id": wpp_id, "ack": message.get("ack")})
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
            inbound[wpp_id] = (t, FoundMessage(found, loggable(message)))


def _chats_of(pending: Iterable[PendingAck]) -> set[str]:
    """The chat ids of these messages' contacts."""
    chats = set()
    for message in pending:
        if message.phone:
            chats.add(f"{message.phone}@c.us")
        elif message.contact_lid:
            chats.add(f"{message.contact_lid}@lid")
    return chats


def host_key(target: ReconcileTarget) -> str:
    """The pool host a session lives on, "default" for the default host."""
    return target.host.id if target.host else "default"
