"""One connected session's chats read back from its host for a reconcile pass
(``reconcile_session``): each chat's last-message time (``t``, from ``list-chats``) against the
session's mark, the host time up to which its chats have been looked at (and a chat's own,
when a pass read it before the mark moved); only chats past it are read (``get-messages``,
paged back until the mark), oldest first, at most ``max_chats`` a pass and within the
session's deadline, for the messages the webhooks missed (the owner's own, written on the
phone, among them) and the acks of what the session sent. What each chat held is applied at
once (``gateway_reconcile_chat``, under the pass's lease), so a backlog bigger than a pass is
kept chat by chat and the next pass goes on from there. A chat the host cannot read
(get-messages' 401 when its controller throws) is skipped with the reason kept.

The host posts no event for an edit, and a contact may edit a message for 15 minutes: the
chats with incoming messages that recent (``recent_chats``) are read on every pass, and a
contact's message read back edited or deleted for everyone is passed on even when it is older
than the mark (the store applies the change in its order). The messages read back that have
reactions are noted (``reacted``) for ``chat_changes``.

The mark moves to the newest chat time seen less a settling margin, so a message written in
the same second as the listing is looked for again; not past a chat that could not be read to
the mark, nor past a message still undecrypted (``ciphertext``) for a while, so its text is
read when the host has it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from wa_gateway.events.host_messages import ack_from_event, inbound_from_event, serialized_id
from wa_gateway.events.service import loggable
from wa_gateway.host.answers import HostChatUnreadable
from wa_gateway.jobs.counting_host import CountingHost
from wa_gateway.observability import logger
from wa_gateway.pass_records import FoundAck, FoundMessage, PendingAck, ReconcileChat

if TYPE_CHECKING:
    from wa_gateway.events.service import EventPolicy
    from wa_gateway.pass_records import ReconcileTarget
    from wa_gateway.store import Store

# Chats whose last message is this recent are read again next pass: a message of the same
# second as the listing, or one whose time the host set a little behind, is not missed.
_SETTLE_S = 120
_PAGE = 50  # messages per get-messages call
_MAX_PAGES = 20  # per chat and pass: the mark does not move past a chat not read to the end
# A message still undecrypted (ciphertext) holds its chat's mark this long at most: its text
# is read once the host has it, and one the host never decrypts does not hold the mark forever.
_CIPHERTEXT_HOLD_S = 3600


class _ChatFindings:
    """What one chat held: missed messages (oldest first), acks, and the oldest message
    still undecrypted that holds the chat's mark."""

    def __init__(self) -> None:
        self.inbound: dict[str, tuple[int, FoundMessage]] = {}
        self.acks: dict[str, FoundAck] = {}
        self.held_at: int | None = None


class ReaderParts(Protocol):
    """What a chat reader uses of the reconcile pass that runs it (``Reconciler``)."""

    store: Store
    policy: EventPolicy
    backfill: bool
    max_chats: int  # chats read per session and pass
    max_lookups: int  # message-by-id calls per session and pass

    def clock(self) -> float: ...


class ChatReader:
    """One connected session's chats against its marks: the missed messages, applied chat by
    chat through ``store``, and the acks; the LIDs and files the store found due, for the
    session's follow-up."""

    def __init__(
        self,
        host: CountingHost,
        target: ReconcileTarget,
        parts: ReaderParts,
        *,
        deadline: float,
    ) -> None:
        self.store = parts.store
        self.policy = parts.policy
        self.max_chats = parts.max_chats
        self.max_lookups = parts.max_lookups
        self.deadline = deadline  # time.monotonic(): no chat is begun after it
        self.host = host
        self.client = host.host.host
        self.name = target.session.session_id
        self.target = target
        self.now = int(parts.clock())
        linked = target.linked_at if target.linked_at is not None else self.now
        self.floor = 0 if parts.backfill else linked
        # Everything after the mark is looked at: at first, everything from the link's second.
        self.mark = target.mark if target.mark is not None else self.floor - 1
        self.chats_read = self.skipped = self.chats_applied = self.stored = self.acks = 0
        self.lids: list[str] = []  # senders' LIDs to ask the host about
        self.media: list[str] = []  # messages whose files are due to fetch
        self.reacted: list[str] = []  # messages read this pass that have reactions
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
        # Chats whose incoming messages their senders may still edit: read for the edits.
        recent = {c for c in self.target.recent_chats if c in listed} - with_acks
        order = sorted(behind, key=lambda c: (behind[c], c)) + sorted(
            (with_acks | recent) - behind.keys()
        )

        complete = True
        holds: list[int] = []
        for n, chat_id in enumerate(order):
            if n >= self.max_chats or time.monotonic() >= self.deadline:
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
        missing = [i for i in pending if i not in self._seen][: self.max_lookups]
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
            return self.policy.groups
        return chat_id == "status@broadcast" and self.policy.status_broadcasts

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
            inbound = tuple(item for _, item in ordered)
            acks = tuple(found.acks.values())
            lease = self.target.lease
            self._apply(ReconcileChat(self.name, lease, chat_id, inbound, acks, host_t, None))
        if behind and not covered:
            return False
        return True if found.held_at is None else found.held_at - 1

    def _apply(self, chat: ReconcileChat) -> None:
        self.chats_applied += 1
        applied = self.store.apply_reconcile_chat(chat)
        if applied is not None:
            self.stored += applied.stored
            self.acks += applied.acks
            self.lids.extend(applied.lids)
            self.media.extend(applied.media_message_ids)

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
        if message.get("hasReaction") and t >= self.floor and wpp_id not in self.reacted:
            self.reacted.append(wpp_id)
        if from_me and (new or wpp_id in self._pending_ids or (unmatched and t >= self.floor)):
            self._ack_of(message, found.acks)
        # Older than the mark, a contact's message is stored already: only an edit or a
        # deletion for everyone is news.
        changed = not from_me and t >= self.floor and _changed(message)
        if not (new or changed) or wpp_id in found.inbound:
            return
        if new and message.get("type") == "ciphertext" and self.now - t < _CIPHERTEXT_HOLD_S:
            found.held_at = t if found.held_at is None else min(found.held_at, t)
        # The owner's own message (written on the phone) is stored as onselfmessage's is,
        # unless its ack above showed it is one of the gateway's sends.
        event = "onselfmessage" if from_me else "onmessage"
        message_found = inbound_from_event(
            self.name,
            {**message, "event": event},
            groups=self.policy.groups,
            status_broadcasts=self.policy.status_broadcasts,
        )
        if message_found is not None:
            found.inbound[wpp_id] = (t, FoundMessage(message_found, loggable(message)))

    def _ack_of(self, message: Mapping[str, Any], acks: dict[str, FoundAck]) -> None:
        wpp_id = serialized_id(message.get("id"))
        ack = ack_from_event(self.name, {**message, "event": "onack"})
        if wpp_id is not None and ack is not None:
            acks[wpp_id] = FoundAck(ack, {"id": wpp_id, "ack": message.get("ack")})


def _listed_chats(pending: Iterable[PendingAck], listed: Mapping[str, int]) -> set[str]:
    """The chats the host lists among the ids these messages' contacts may have."""
    return {chat for message in pending for chat in message.chats if chat in listed}


def _changed(message: Mapping[str, Any]) -> bool:
    """Whether a message read back was edited or deleted for everyone."""
    return bool(message.get("latestEditMsgKey")) or message.get("type") == "revoked"
