"""One session put right from its host, for a reconcile pass (``reconcile``) or a status refresh.

The host is asked for:

* **the state**: ``list-chats`` through ``call_if_connected`` (its ``check-connection-session``
  says connected or not); not connected, ``status-session`` says what it is instead (a new QR,
  INITIALIZING, CLOSED). A connected session the host has closed was logged out on the phone,
  unless the host has restarted since it linked or no longer lists it (``host_lost_session``).
* **missed messages** (``chat_reader``): each chat's last-message time (``t``) from
  ``list-chats`` against the session's mark, the host time up to which its chats have been
  looked at; only chats past the mark are read (``get-messages``, paged back until the mark),
  so an idle session costs two host calls. Unread counts are not used: with ``readMessage``
  off (as operators are told to set it) "unread" does not mean "missed", and the user may read
  chats on the phone. The mark starts at the link time (``connected_at``): nothing from before
  the link is imported unless ``backfill`` (BACKFILL_ON_LINK); it moves to the newest chat time
  seen less a settling margin, so a message written in the same second as the listing is
  looked for again.
* **acks** of outbound messages not yet read or failed and younger than ``ack_window_s``: from
  the messages of their chats (read anyway when behind), else ``message-by-id``; a send whose
  answer never came is matched to the chat's message by the ack path's own rule.

None of these routes marks anything read on the phone (see ``host.read_back``). All that
is found for a session is applied in one transaction through the webhook's own SQL functions
(``gateway_reconcile_session``): messages stored once by host message id, acks only forward,
the state as a fresh look unless a webhook changed the session meanwhile, and each change
logged as ``reconcile.*`` in the event log. Then, as after a webhook, the host is asked for
the files of the messages stored (``media.incoming``) and the numbers behind new LIDs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from wa_gateway.errors import ApiError
from wa_gateway.host.session import HostSession
from wa_gateway.jobs.chat_reader import ChatReader, CountingHost
from wa_gateway.pass_records import (
    FoundAck,
    FoundMessage,
    ReconcileApplied,
    ReconcileFindings,
    ReconcileTarget,
)
from wa_gateway.records import SessionUpdate
from wa_gateway.sessions import qr, transitions

if TYPE_CHECKING:
    from wa_gateway.crypto import Keyring
    from wa_gateway.events.contacts import ContactLookup
    from wa_gateway.events.service import EventPolicy
    from wa_gateway.host.directory import HostDirectory
    from wa_gateway.media.incoming import IncomingMedia
    from wa_gateway.store import Store


class ReconcileParts(Protocol):
    """What one session's reconcile uses of the pass that runs it (``Reconciler``)."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    policy: EventPolicy
    contacts: Callable[[], ContactLookup] | None
    media: Callable[[], IncomingMedia] | None
    backfill: bool

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


def reconcile_one(r: ReconcileParts, target: ReconcileTarget, facts: HostFacts) -> Outcome:
    """Ask the session's host what it holds and apply all of it in one transaction
    (``gateway_reconcile_session``), with ``r``'s settings. Host and store failures are
    raised; ``facts`` is the pass's, asked only for a session found closed."""
    session = target.session
    name = session.session_id
    assert r.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
    host_session = HostSession(r.hosts.client_for(target.host), r.keyring, name, target.host_token)
    host = CountingHost(host_session)
    update: SessionUpdate | None = None
    inbound: list[FoundMessage] = []
    acks: list[FoundAck] = []
    mark: int | None = None
    read_chats = False

    chats = host.call_if_connected(lambda token: host_session.host.list_chats(name, token))
    if chats is not None:
        host_status: str | None = "CONNECTED"
        update = SessionUpdate(name, "connected")
        messages = ChatReader(host, target, r.clock(), policy=r.policy, backfill=r.backfill)
        inbound, acks, mark = messages.read(chats)
        read_chats = messages.chats_read > 0
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


def host_key(target: ReconcileTarget) -> str:
    """The pool host a session lives on, "default" for the default host."""
    return target.host.id if target.host else "default"
