"""One session put right from its host, for a reconcile pass (``reconcile``) or a status refresh.

The host is asked for:

* **the state**: ``list-chats`` through ``call_if_connected`` (its ``check-connection-session``
  says connected or not); not connected, ``status-session`` says what it is instead (a new QR,
  INITIALIZING, CLOSED). A connected session the host has closed was logged out on the phone,
  unless the host has restarted since it linked or no longer lists it (``host_lost_session``).
* **missed messages**: each chat's last-message time (``t``) from ``list-chats`` against the
  session's mark, the host time up to which its chats have been looked at (and a chat's own,
  when a pass read it before the mark moved); only chats past it are read (``get-messages``,
  paged back until the mark), oldest first, at most ``max_chats`` a pass and within the
  session's deadline, and what each held is applied at once (``gateway_reconcile_chat``), so a
  backlog bigger than a pass is kept chat by chat and the next pass goes on from there. An
  idle session costs two host calls. Unread counts are not used: with ``readMessage`` off (as
  operators are told to set it) "unread" does not mean "missed", and the user may read chats
  on the phone. The mark starts at the link time (``connected_at``): nothing from before the
  link is imported unless ``backfill`` (BACKFILL_ON_LINK); once every chat past it is read, it
  moves to the newest chat time seen less a settling margin (so a message written in the same
  second as the listing is looked for again), and not past a message still undecrypted
  (``ciphertext``) for a while, so its text is read when the host has it.
* **the owner's own messages**, written on the phone: stored as the webhook's
  ``onselfmessage`` stores them, unless one is a send of the gateway's (the ack's rule).
* **acks** of outbound messages not yet read or failed and younger than ``ack_window_s``: from
  the messages of their chats (the chats the host lists under their contact's ids, read anyway
  when behind), else ``message-by-id`` (at most ``max_lookups`` a pass); a send whose answer
  never came is matched to the chat's message by the ack path's own rule.

get-messages answers 401 when its controller throws (a chat the host does not hold): that chat
is skipped, with the reason kept, and the pass goes on; the token is not renewed for it. None
of these routes marks anything read on the phone (see ``HostClient.list_chats``). Every write
checks that the pass still holds the session's lease: one that ran past it stops, and writes
nothing more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from wa_gateway.errors import ApiError
from wa_gateway.events.host_messages import ack_from_event, inbound_from_event, serialized_id
from wa_gateway.events.service import loggable
from wa_gateway.host.answers import HostChatUnreadable
from wa_gateway.host.session import HostSession
from wa_gateway.observability import logger
from wa_gateway.pass_records import (
    FoundAck,
    FoundMessage,
    PendingAck,
    ReconcileApplied,
    ReconcileChat,
    ReconcileFindings,
    ReconcileTarget,
)
from wa_gateway.records import LidLookup, SessionUpdate
from wa_gateway.sessions import qr, transitions

if TYPE_CHECKING:
    from wa_gateway.crypto import Keyring
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.media.kick import MediaKick
    from wa_gateway.store import Store

# Chats whose last message is this recent are read again next pass: a message of the same
# second as the listing, or one whose time the host set a little behind, is not missed.
_SETTLE_S = 120
_PAGE = 50  # messages per get-messages call
_MAX_PAGES = 20  # per chat and pass: the mark does not move past a chat not read to the end
# A message still undecrypted (ciphertext) holds its chat's mark this long at most: its text
# is read once the host has it, and one the host never decrypts does not hold the mark forever.
_CIPHERTEXT_HOLD_S = 3600


class ReconcileParts(Protocol):
    """What one session's reconcile uses of the pass that runs it (``Reconciler``)."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    policy: EventPolicy
    contacts: Callable[[], ContactLookup] | None
    media: Callable[[], MediaKick | None] | None
    backfill: bool
    max_chats: int  # chats read per session and pass
    max_lookups: int  # message-by-id calls per session and pass

    def clock(self) -> float: ...


class Outcome(NamedTuple):
    """What one session's reconcile did: what the store applied (None: the session is gone),
    the host calls it took, whether it read any chat, the chats it skipped because the host
    could not read them, and the chats whose findings it applied (a round trip each)."""

    applied: ReconcileApplied | None
    host_calls: int
    read_chats: bool
    skipped_chats: int = 0
    chats_applied: int = 0


class HostFacts:
    """Per host and pass, asked only when a session is found closed: how long the host has
    been up and which sessions it keeps. A host slow to answer holds up its own sessions only
    (a lock per host)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._facts: dict[str, tuple[float | None, frozenset[str] | None]] = {}

    def of(self, key: str, host: HostSession) -> tuple[float | None, frozenset[str] | None]:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
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


def reconcile_one(
    r: ReconcileParts, target: ReconcileTarget, facts: HostFacts, deadline: float
) -> Outcome:
    """Ask the session's host what it holds and apply it: each chat's messages as they are
    read, then the session's state, acks and mark, with ``r``'s settings, reading no more
    chats once ``deadline`` (``time.monotonic()``) has passed. Host and store failures are
    raised (what was applied stays); ``facts`` is the pass's, asked only for a session found
    closed."""
    session = target.session
    name = session.session_id
    assert r.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
    host_session = HostSession(r.hosts.client_for(target.host), r.keyring, name, target.host_token)
    host = _CountingHost(host_session)
    update: SessionUpdate | None = None
    lookup_acks: list[FoundAck] = []
    mark: int | None = None
    reader: _ChatReader | None = None

    chats = host.call_if_connected(lambda token: host_session.host.list_chats(name, token))
    if chats is not None:
        host_status: str | None = "CONNECTED"
        update = SessionUpdate(name, "connected")
        reader = _ChatReader(r, host, host_session, target, r.clock(), deadline)
        lookup_acks, mark = reader.read(chats)
    else:
        state = host.call(lambda token: host_session.host.status_session(name, token))
        host_status = state.status
        update = transitions.from_host_answer(name, state, after_start=False)
        if update is not None and update.status == "disconnected":
            update = update._replace(reason=_why_closed(target, host_session, facts, r.clock))
        elif update is not None:
            update = qr.with_qr_image(update)

    applied = r.store.apply_reconcile(
        ReconcileFindings(
            session_name=name,
            lease=target.lease,
            seen_updated_at=session.updated_at,
            update=update,
            host_status=host_status,
            acks=tuple(lookup_acks),
            mark=mark,
            host_token=host_session.new_token_ciphertext,
        )
    )
    if reader is None:
        return Outcome(applied, host.calls, False)
    if applied is not None:
        applied = applied._replace(stored=reader.stored, acks=applied.acks + reader.acks)
        reader.follow_up(host_session.new_token_ciphertext or target.host_token)
    return Outcome(applied, host.calls, reader.chats_read > 0, reader.skipped, reader.chats_applied)


def _why_closed(
    target: ReconcileTarget, host: HostSession, facts: HostFacts, clock: Callable[[], float]
) -> str:
    """A word the page turns into a sentence, for a session the host says is closed."""
    if target.session.status != "connected":
        return "pairing_ended"  # the QR or code was not used in time (the host's autoClose)
    uptime, names = facts.of(host_key(target), host)
    if names is not None and target.session.session_id not in names:
        return "host_lost_session"
    linked_at = target.linked_at
    if uptime is not None and linked_at is not None and clock() - uptime > linked_at:
        return "host_lost_session"  # the host restarted since the link and did not restore it
    return "logged_out_on_phone"


class _ChatFindings:
    """What one chat held: missed messages (oldest first), acks, and the oldest message
    still undecrypted that holds the chat's mark."""

    def __init__(self) -> None:
        self.inbound: dict[str, tuple[int, FoundMessage]] = {}
        self.acks: dict[str, FoundAck] = {}
        self.held_at: int | None = None


class _ChatReader:
    """One connected session's chats against its marks: the missed messages, applied chat by
    chat, and the acks."""

    def __init__(
        self,
        reconciler: ReconcileParts,
        host: _CountingHost,
        host_session: HostSession,
        target: ReconcileTarget,
        now: float,
        deadline: float,
    ) -> None:
        self.r = reconciler
        self.host = host
        self.client = host_session.host
        self.name = target.session.session_id
        self.target = target
        self.now = int(now)
        self.deadline = deadline
        linked = target.linked_at if target.linked_at is not None else self.now
        self.floor = 0 if reconciler.backfill else linked
        # Everything after the mark is looked at: at first, everything from the link's second.
        self.mark = target.mark if target.mark is not None else self.floor - 1
        self.chats_read = 0
        self.skipped = 0
        self.chats_applied = 0
        self.stored = 0
        self.acks = 0
        self._lids: list[str] = []
        self._media: list[str] = []
        self._seen: set[str] = set()  # host message ids read this pass
        self._pending_ids = {p.wpp_message_id for p in target.pending if p.wpp_message_id}

    def read(self, chats: Sequence[Mapping[str, Any]]) -> tuple[list[FoundAck], int]:
        """Read the chats past their marks (and those of pending acks), applying each one's
        findings as it goes; the acks found by message id, and the session's new mark."""
        listed: dict[str, int] = {}
        for chat in chats:
            chat_id = serialized_id(chat.get("id"))
            t = chat.get("t")
            if chat_id is not None and isinstance(t, int) and self._wanted(chat_id):
                listed[chat_id] = t
        newest = max([self.mark, *listed.values()])
        behind = {
            chat_id: t
            for chat_id, t in listed.items()
            if t > max(self.mark, self.target.chats.get(chat_id, self.mark))
        }
        pending = {p.wpp_message_id: p for p in self.target.pending if p.wpp_message_id}
        # A contact's chat by the ids the host lists (a row may hold a number as typed).
        unmatched = _listed_chats(
            (p for p in self.target.pending if p.wpp_message_id is None), listed
        )
        with_acks = _listed_chats(pending.values(), listed) | unmatched
        order = sorted(behind, key=lambda c: (behind[c], c)) + sorted(with_acks - behind.keys())

        complete = True
        holds: list[int] = []
        for n, chat_id in enumerate(order):
            if n >= self.r.max_chats or time.monotonic() >= self.deadline:
                complete = not any(c in behind for c in order[n:])
                break
            held = self._read_chat(
                chat_id, listed[chat_id], chat_id in behind, chat_id in unmatched
            )
            if held is False:
                complete = False
            elif held is not True:
                holds.append(held)

        lookups: dict[str, FoundAck] = {}
        missing = [i for i in pending if i not in self._seen][: self.r.max_lookups]
        for wpp_id in missing:
            if time.monotonic() >= self.deadline:
                break
            found = self.host.call(partial(self.client.message_by_id, self.name, id=wpp_id))
            if found is not None and found.get("fromMe"):
                self._ack_of(found, lookups)
        settled = min([newest, self.now - _SETTLE_S, *holds])
        mark = max(self.mark, settled) if complete else self.mark
        return list(lookups.values()), mark

    def _wanted(self, chat_id: str) -> bool:
        if chat_id.endswith(("@c.us", "@lid")):
            return True
        if chat_id.endswith("@g.us"):
            return self.r.policy.groups
        return chat_id == "status@broadcast" and self.r.policy.status_broadcasts

    def _read_chat(self, chat_id: str, t: int, behind: bool, unmatched: bool) -> bool | int:
        """Read one chat and apply what it held. True: done (read to the mark); False: not
        read to the mark; a host time: read, but its mark may not pass it (a message still
        undecrypted)."""
        since = max(self.mark, self.target.chats.get(chat_id, self.mark))
        try:
            messages, covered = self._messages_of(chat_id, down_to=self.mark)
        except HostChatUnreadable:
            # get-messages' controller threw: the host does not hold this chat by this id. Kept
            # with why; tried again once the chat has a newer message.
            self.skipped += 1
            logger.info("reconcile skipped a chat the host could not read")
            self._apply(
                ReconcileChat(self.name, self.target.lease, chat_id, (), (), t, "chat_unreadable")
            )
            return True
        found = _ChatFindings()
        for message in messages:
            self._take(message, since, unmatched, found)
        host_t: int | None = None
        if behind and covered:
            host_t = t if found.held_at is None else min(t, found.held_at - 1)
        ordered = sorted(found.inbound.values(), key=lambda item: item[0])
        if ordered or found.acks or host_t is not None:
            self._apply(
                ReconcileChat(
                    self.name,
                    self.target.lease,
                    chat_id,
                    tuple(item for _, item in ordered),
                    tuple(found.acks.values()),
                    host_t,
                    None,
                )
            )
        if behind and not covered:
            return False
        return True if found.held_at is None else found.held_at - 1

    def _apply(self, chat: ReconcileChat) -> None:
        self.chats_applied += 1
        applied = self.r.store.apply_reconcile_chat(chat)
        if applied is not None:
            self.stored += applied.stored
            self.acks += applied.acks
            self._lids.extend(applied.lids)
            self._media.extend(applied.media_message_ids)

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
        self, message: Mapping[str, Any], since: int, unmatched: bool, found: _ChatFindings
    ) -> None:
        wpp_id = serialized_id(message.get("id"))
        t = message.get("t")
        if wpp_id is None or not isinstance(t, int):
            return
        self._seen.add(wpp_id)
        new = t > since and t >= self.floor
        from_me = bool(message.get("fromMe"))
        if from_me and (new or wpp_id in self._pending_ids or (unmatched and t >= self.floor)):
            self._ack_of(message, found.acks)
        if not new or wpp_id in found.inbound:
            return
        if message.get("type") == "ciphertext" and self.now - t < _CIPHERTEXT_HOLD_S:
            found.held_at = t if found.held_at is None else min(found.held_at, t)
        # The owner's own message (written on the phone) is stored as onselfmessage's is,
        # unless its ack above showed it is one of the gateway's sends.
        event = "onselfmessage" if from_me else "onmessage"
        message_found = inbound_from_event(
            self.name,
            {**message, "event": event},
            groups=self.r.policy.groups,
            status_broadcasts=self.r.policy.status_broadcasts,
        )
        if message_found is not None:
            found.inbound[wpp_id] = (t, FoundMessage(message_found, loggable(message)))

    def _ack_of(self, message: Mapping[str, Any], acks: dict[str, FoundAck]) -> None:
        wpp_id = serialized_id(message.get("id"))
        ack = ack_from_event(self.name, {**message, "event": "onack"})
        if wpp_id is not None and ack is not None:
            acks[wpp_id] = FoundAck(ack, {"id": wpp_id, "ack": message.get("ack")})

    def follow_up(self, host_token: str | None) -> None:
        """After the session's findings are applied: ask the host about the LIDs of senders
        not mapped yet, and start the media function for the files now due, as the webhook
        does."""
        if self._lids and self.r.contacts is not None:
            lookup = self.r.contacts()
            for lid in dict.fromkeys(self._lids):
                lookup.resolve(LidLookup(self.name, lid, host_token, self.target.host))
        if self._media and self.r.media is not None:
            kick = self.r.media()
            if kick is not None:
                kick(self._media)


def _listed_chats(pending: Iterable[PendingAck], listed: Mapping[str, int]) -> set[str]:
    """The chats the host lists among the ids these messages' contacts may have."""
    return {chat for message in pending for chat in message.chats if chat in listed}


def host_key(target: ReconcileTarget) -> str:
    """The pool host a session lives on, "default" for the default host."""
    return target.host.id if target.host else "default"
