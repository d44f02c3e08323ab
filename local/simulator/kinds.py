"""Conversations on the simulated host: groups, reactions, edits, deletions and read marks.

What wppconnect-server 2.10.4 (wppconnect 2.2.7, wa-js 4.4.3) does for each, and the events
it posts:

* ``react-message`` ``{msgId, reaction}``: 200 ``{"status": "success", "response": {"message":
  "Reaction sended"}}``; WhatsApp Web records the reaction and wa-js's ``chat.new_reaction``
  posts ``onreactionmessage`` (``id`` the reaction's key, ``msgId``, ``reactionText``, ``read``,
  ``orphan``, ``orphanReason``, ``timestamp`` in ms), for the account's own reactions too.
* ``edit-message`` ``{id, newText}``: the library's ``editMessage`` answers the message read back
  (201, ``mapper: "return"``); a message WhatsApp will not edit (not the account's, not a text,
  older than 15 minutes) throws: 500. No event: the server does not listen to
  ``onMessageEdit``.
* ``delete-message`` ``{phone, messageId, onlyLocal}``: the account's own message is revoked
  (its type becomes ``revoked``), anyone else's only deleted here; 200 ``{"status": "success",
  "response": {"message": "Message deleted"}}``, after which the controller answers again and
  the host logs an unhandled rejection. No event for the account's own deletion.
* ``send-seen`` ``{phone, isGroup}``: the chat is marked read (its incoming messages acked 3
  with ``incoming_acks``); 201 with ``response.data``.
* ``group-info/:groupId``: the group's subject and participants (``{id, isAdmin}``); a group the
  account was never in answers ``subject: ""`` and no participants.
* ``reactions/:id``: everyone's reactions on a message, by emoji.

Test controls (``/_sim/<session>/...``): ``group`` creates or changes a group; ``participants``
adds, removes, promotes or demotes participants (``onparticipantschanged``); ``incoming`` with
``reaction``, ``edit`` or ``revoke`` makes a contact react, edit or delete one of theirs;
``actions`` lists what the account did through the routes above.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.simulator.messages import derived_group_id, phone_key, to_wid

EDIT_WINDOW_S = 15 * 60


class KindFailed(Exception):
    """What the library throws for a message it cannot change."""


@dataclass
class Group:
    id: str
    subject: str
    participants: dict[str, bool] = field(default_factory=dict)  # wid -> admin

    def info(self) -> dict[str, Any]:
        """``group-info``'s answer for a group the account is (or was) in."""
        return _group_info(self.id, self.subject, self.participants)


def unknown_group_info(group_id: str) -> dict[str, Any]:
    """``group-info`` for a chat the library does not have (``getChatById`` is false)."""
    return _group_info(group_id, "", {})


def _group_info(group_id: str, subject: str, participants: dict[str, bool]) -> dict[str, Any]:
    return {
        "id": group_id,
        "name": subject,
        "description": None,
        "subject": subject,
        "subjectUpdatedAt": None,
        "subjectUpdatedBy": None,
        "descriptionUpdatedAt": None,
        "descriptionUpdatedBy": None,
        "createdAt": None,
        "lastActivityAt": None,
        "participants": [{"id": w, "isAdmin": a} for w, a in participants.items()],
    }


def _key(serialized: str) -> dict[str, Any]:
    """A message key as wa-js serializes one: ``{fromMe, remote, id, participant?,
    _serialized}``."""
    parts = serialized.split("_")
    key: dict[str, Any] = {
        "fromMe": parts[0] == "true",
        "remote": parts[1] if len(parts) > 1 else "",
        "id": parts[2] if len(parts) > 2 else "",
        "_serialized": serialized,
    }
    if len(parts) > 3:
        key["participant"] = parts[3]
    return key


class Conversations:
    """Per session: groups, reactions on messages, and what the account did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, Group]] = {}
        # Per session, message id -> reactor wid (or "me") -> (emoji, timestamp ms, key).
        self._reactions: dict[str, dict[str, dict[str, tuple[str, int, str]]]] = {}
        self._actions: dict[str, list[dict[str, Any]]] = {}

    # --- groups ---------------------------------------------------------------------------

    def group(self, session: str, group_id: str) -> Group | None:
        with self._lock:
            return self._groups.get(session, {}).get(group_id)

    def put_group(
        self, session: str, group_id: str | None, subject: str, participants: dict[str, bool]
    ) -> Group:
        gid = group_id or derived_group_id(f"{session}:{subject}:{time.time_ns()}")
        with self._lock:
            groups = self._groups.setdefault(session, {})
            group = groups.get(gid) or Group(gid, subject)
            group.subject = subject or group.subject
            group.participants.update(participants)
            groups[gid] = group
            return group

    def is_member(self, session: str, group_id: str, own_wid: str) -> bool:
        group = self.group(session, group_id)
        return group is not None and own_wid in group.participants

    def change_participants(
        self, session: str, group_id: str, action: str, who: list[str]
    ) -> Group | None:
        with self._lock:
            group = self._groups.get(session, {}).get(group_id)
            if group is None:
                return None
            for wid in who:
                if action == "add":
                    group.participants.setdefault(wid, False)
                elif action == "remove":
                    group.participants.pop(wid, None)
                elif action in ("promote", "demote") and wid in group.participants:
                    group.participants[wid] = action == "promote"
            return group

    def subject_of(self, session: str, chat_id: str) -> str | None:
        group = self.group(session, chat_id)
        return group.subject if group else None

    # --- reactions ------------------------------------------------------------------------

    def react(
        self,
        session: str,
        message: dict[str, Any],
        reactor: str,
        emoji: str,
        reaction_key: str,
    ) -> dict[str, Any]:
        """Record ``reactor``'s reaction ("" takes it back); the ``onreactionmessage`` body."""
        now_ms = int(time.time() * 1000)
        with self._lock:
            on_message = self._reactions.setdefault(session, {}).setdefault(message["id"], {})
            if emoji:
                on_message[reactor] = (emoji, now_ms, reaction_key)
            else:
                on_message.pop(reactor, None)
            message["hasReaction"] = bool(on_message)
        return {
            "id": _key(reaction_key),
            "msgId": _key(message["id"]),
            "reactionText": emoji,
            "read": False,
            "orphan": 0,
            "orphanReason": None,
            "timestamp": now_ms,
        }

    def reactions(self, session: str, message_id: str) -> dict[str, Any]:
        """``reactions/:id``'s ``response``: the reactions grouped by emoji."""
        with self._lock:
            on_message = dict(self._reactions.get(session, {}).get(message_id, {}))
        by_emoji: dict[str, list[dict[str, Any]]] = {}
        mine = None
        for reactor, (emoji, at, key) in on_message.items():
            sender = {
                "id": _key(key),
                "msgId": _key(message_id),
                "reactionText": emoji,
                "read": False,
                "sender": reactor,
                "orphan": 0,
                "timestamp": at,
            }
            by_emoji.setdefault(emoji, []).append(sender)
            if reactor == "me":
                mine = {**sender, "senderUserJid": "me"}
        return {
            "reactionByMe": mine,
            "reactions": [
                {
                    "aggregateEmoji": emoji,
                    "hasReactionByMe": any(s["sender"] == "me" for s in senders),
                    "senders": senders,
                }
                for emoji, senders in by_emoji.items()
            ],
        }

    # --- edits and deletions --------------------------------------------------------------

    @staticmethod
    def edit(message: dict[str, Any], text: str, *, own: bool) -> None:
        """Edit a message's text as WhatsApp Web does (``latestEditMsgKey``...); an own edit
        only of the account's own text within 15 minutes (wa-js ``canEditMsg``)."""
        if own and (
            not message.get("fromMe")
            or message.get("type") != "chat"
            or time.time() - int(message.get("t") or 0) > EDIT_WINDOW_S
        ):
            raise KindFailed("Cannot edit this message")
        now_ms = int(time.time() * 1000)
        message["body"] = text
        message["content"] = text
        message["latestEditMsgKey"] = _key(
            f"{str(message['fromMe']).lower()}_{message['chatId']}_{phone_key()}"
        )
        message["latestEditSenderTimestampMs"] = now_ms

    @staticmethod
    def revoke(message: dict[str, Any]) -> None:
        message["type"] = "revoked"
        message["subtype"] = "sender_revoke"
        message["body"] = ""
        message["content"] = ""

    # --- what the account did -------------------------------------------------------------

    def record_action(self, session: str, route: str, **detail: Any) -> None:
        with self._lock:
            self._actions.setdefault(session, []).append({"route": route, **detail})

    def actions(self, session: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._actions.get(session, []))

    def reset(self) -> None:
        with self._lock:
            self._groups.clear()
            self._reactions.clear()
            self._actions.clear()


def revoke_event(message: dict[str, Any], own_wid: str) -> dict[str, Any]:
    """``onrevokedmessage`` for a contact's deletion of ``message``: ``{author?, from, to, id,
    refId}`` (ids serialized)."""
    chat = message["chatId"]
    event: dict[str, Any] = {
        "from": message.get("author") or chat,
        "to": own_wid,
        "id": f"false_{chat}_{phone_key()}",
        "refId": message["id"],
    }
    if chat.endswith("@g.us"):
        event["author"] = message.get("author")
    return event


def participant_wids(values: Any) -> dict[str, bool]:
    """``["5511...", "123@lid", ...]`` as wids, none an admin."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError('"participants" must be a list of numbers or ids')
    return {to_wid(v): False for v in values}
