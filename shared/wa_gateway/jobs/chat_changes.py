"""What reconcile reads of a connected session besides its chats' messages (``chat_reader``):
the reactions on messages it read back that have any (``reactions/:id``, the newest
``MAX_REACTION_READS`` a pass), each as the webhook's ``onreactionmessage`` gives it, and the
subject of every group chat ``list-chats`` names. A reaction taken back while its webhook was
lost stays until its next report: the host lists only the reactions there are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from wa_gateway.event_records import GroupUpdate, MessageChange
from wa_gateway.events.host_messages import serialized_id
from wa_gateway.events.kinds import GROUP_ID, reaction_from_event

if TYPE_CHECKING:
    from wa_gateway.jobs.counting_host import CountingHost

MAX_REACTION_READS = 10  # reactions/:id calls per session and pass


def reactions_of(
    host: CountingHost, name: str, message_ids: Sequence[str], deadline: float
) -> tuple[MessageChange, ...]:
    """Everyone's reactions on the newest of these messages, read no later than ``deadline``
    (``time.monotonic()``)."""
    client = host.host.host
    found: list[MessageChange] = []
    for wpp_id in message_ids[-MAX_REACTION_READS:]:
        if time.monotonic() >= deadline:
            break
        senders = host.call(partial(client.reactions, name, message_id=wpp_id))
        for sender in senders:
            change = reaction_from_event(name, {**sender, "msgId": wpp_id})
            if change is not None:
                found.append(change)
    return tuple(found)


def group_subjects(name: str, chats: Sequence[Mapping[str, Any]]) -> tuple[GroupUpdate, ...]:
    """The subject of every group chat, as ``list-chats`` names it."""
    found = []
    for chat in chats:
        chat_id, subject = serialized_id(chat.get("id")), chat.get("name")
        if chat_id and GROUP_ID.match(chat_id) and isinstance(subject, str) and subject:
            found.append(GroupUpdate(session_name=name, group_id=chat_id, subject=subject[:512]))
    return tuple(found)
