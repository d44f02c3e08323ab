"""One connected session's chats read back from its host for a reconcile pass
(``reconcile_session``): each chat's last-message time (``t``, from ``list-chats``) against the
session's mark, the host time up to which its chats have been looked at; only chats past the
mark are read (``get-messages``, paged back until the mark), for the messages the webhooks
missed and the acks of what the session sent. The mark moves to the newest chat time seen
less a settling margin, so a message written in the same second as the listing is looked for
again, and not past a chat that could not be read to the mark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from wa_gateway.events.host_messages import ack_from_event, inbound_from_event, serialized_id
from wa_gateway.events.service import loggable
from wa_gateway.pass_records import FoundAck, FoundMessage, PendingAck, ReconcileTarget

if TYPE_CHECKING:
    from wa_gateway.events.service import EventPolicy
    from wa_gateway.host.session import HostSession

# Chats whose last message is this recent are read again next pass: a message of the same
# second as the listing, or one whose time the host set a little behind, is not missed.
_SETTLE_S = 120
_PAGE = 50  # messages per get-messages call
_MAX_PAGES = 20  # per chat and pass: the mark does not move past a chat not read to the end


class CountingHost:
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


class ChatReader:
    """One connected session's chats against its mark: the missed messages and the acks."""

    def __init__(
        self,
        host: CountingHost,
        target: ReconcileTarget,
        now: float,
        *,
        policy: EventPolicy,
        backfill: bool,
    ) -> None:
        self.policy = policy
        self.host = host
        self.client = host.host.host
        self.name = target.session.session_id
        self.target = target
        self.now = int(now)
        linked = target.linked_at if target.linked_at is not None else self.now
        self.floor = 0 if backfill else linked
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
            return self.policy.groups
        return chat_id == "status@broadcast" and self.policy.status_broadcasts

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
            groups=self.policy.groups,
            status_broadcasts=self.policy.status_broadcasts,
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
