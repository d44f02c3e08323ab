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
* **missed messages** (``chat_reader``): each chat's last-message time (``t``) from
  ``list-chats`` against the session's mark, the host time up to which its chats have been
  looked at (and a chat's own, when a pass read it before the mark moved); only chats past it
  are read (``get-messages``, paged back until the mark), oldest first, at most ``max_chats``
  a pass and within the session's deadline, and what each held is applied at once
  (``gateway_reconcile_chat``), so a backlog bigger than a pass is kept chat by chat and the
  next pass goes on from there. An idle session costs two host calls. Unread counts are not
  used: with ``readMessage`` off (as operators are told to set it) "unread" does not mean
  "missed", and the user may read chats on the phone. The mark starts at the link time
  (``connected_at``): nothing from before the link is imported unless ``backfill``
  (BACKFILL_ON_LINK); once every chat past it is read, it moves to the newest chat time seen
  less a settling margin (so a message written in the same second as the listing is looked
  for again), and not past a message still undecrypted (``ciphertext``) for a while, so its
  text is read when the host has it.
* **the owner's own messages**, written on the phone: stored as the webhook's
  ``onselfmessage`` stores them, unless one is a send of the gateway's (the ack's rule).
* **acks** of outbound messages not yet read or failed and younger than ``ack_window_s``: from
  the messages of their chats (the chats the host lists under their contact's ids, read anyway
  when behind), else ``message-by-id`` (at most ``max_lookups`` a pass); a send whose answer
  never came is matched to the chat's message by the ack path's own rule.
* **edits and deletions**: the host posts no event for an edit, so the chats with incoming
  messages a sender may still edit are read every pass, and a message read back edited or
  deleted for everyone is applied even when it is older than the mark (``chat_reader``).
* **reactions** on the messages read back that have any, and **groups**' subjects from
  ``list-chats`` (``chat_changes``): applied with the session's findings.

get-messages answers 401 when its controller throws (a chat the host does not hold): that chat
is skipped, with the reason kept, and the pass goes on; the token is not renewed for it. None
of these routes marks anything read on the phone (see ``host.read_back``). The session's own
findings (state, acks found by id, mark, token) are applied last, through the webhook's own
SQL functions (``gateway_reconcile_session``): messages stored once by host message id, acks
only forward, the state as a fresh look unless a webhook changed the session meanwhile, and
each change logged as ``reconcile.*`` in the event log. Every write checks that the pass still
holds the session's lease: one that ran past it stops, and writes nothing more. Then, as after
a webhook, the media function is started for the files of the messages stored, and the host
is asked for the numbers behind new LIDs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

from wa_gateway.errors import ApiError
from wa_gateway.event_records import GroupUpdate, LidLookup, MessageChange
from wa_gateway.host.session import HostSession
from wa_gateway.jobs.chat_changes import group_subjects, reactions_of
from wa_gateway.jobs.chat_reader import ChatReader, ReaderParts
from wa_gateway.jobs.counting_host import CountingHost
from wa_gateway.pass_records import FoundAck, ReconcileApplied, ReconcileFindings, ReconcileTarget
from wa_gateway.records import SessionRecord, SessionUpdate
from wa_gateway.sessions import qr, transitions

if TYPE_CHECKING:
    from wa_gateway.crypto import Keyring
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.lambda_invoke import FunctionStart


class ReconcileParts(ReaderParts, Protocol):
    """What one session's reconcile uses of the pass that runs it (``Reconciler``): what its
    chats' reader uses, and the host, the keys and the follow-ups."""

    hosts: HostDirectory
    keyring: Keyring | None
    contacts: Callable[[], ContactLookup] | None
    media: Callable[[], FunctionStart | None] | None
    start_stuck_after_s: int


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
    host = CountingHost(host_session)
    update: SessionUpdate | None = None
    lookup_acks: list[FoundAck] = []
    mark: int | None = None
    reader: ChatReader | None = None
    groups: tuple[GroupUpdate, ...] = ()
    changes: tuple[MessageChange, ...] = ()

    chats = host.call_if_connected(lambda token: host_session.host.list_chats(name, token))
    if chats is not None:
        host_status: str | None = "CONNECTED"
        update = SessionUpdate(name, "connected")
        reader = ChatReader(host, target, r, deadline=deadline)
        lookup_acks, mark = reader.read(chats)
        groups = group_subjects(name, chats) if r.policy.groups else ()
        changes = reactions_of(host, name, reader.reacted, deadline)
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
            lease=target.lease,
            seen_updated_at=session.updated_at,
            update=update,
            host_status=host_status,
            acks=tuple(lookup_acks),
            mark=mark,
            host_token=host_session.new_token_ciphertext,
            groups=groups,
            changes=changes,
        )
    )
    if reader is None:
        return Outcome(applied, host.calls, False)
    if applied is not None:
        applied = applied._replace(stored=reader.stored, acks=applied.acks + reader.acks)
        _follow_up(r, target, reader, host_session.new_token_ciphertext or target.host_token)
    return Outcome(applied, host.calls, reader.chats_read > 0, reader.skipped, reader.chats_applied)


def _follow_up(
    r: ReconcileParts, target: ReconcileTarget, reader: ChatReader, host_token: str | None
) -> None:
    """After the session's findings are applied, as after a webhook: ask the host about the
    LIDs of senders not mapped yet, and start the media function for the files now due."""
    name = target.session.session_id
    if reader.lids and r.contacts is not None:
        lookup = r.contacts()
        for lid in dict.fromkeys(reader.lids):
            lookup.resolve(LidLookup(name, lid, host_token, target.host))
    if reader.media and r.media is not None:
        start = r.media()
        if start is not None:
            start(message_ids=reader.media)


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


def host_key(target: ReconcileTarget) -> str:
    """The pool host a session lives on, "default" for the default host."""
    return target.host.id if target.host else "default"
