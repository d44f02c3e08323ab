"""send-message's react, edit, delete and read: changes of a message (or a chat) the account
makes on WhatsApp, governed like a send.

1. ``gateway_begin_action`` (one round trip) decides under the session's lock: the caller's
   message (another user's id is ``404 message_not_found``, as an unknown one) or chat, on a
   connected session; WhatsApp's rules (the message is on WhatsApp and not deleted; only the
   account's own text is edited, within 15 minutes; only its own messages are deleted for
   everyone, within 2 days: ``messaging.limits``); nothing to do (the same emoji, the same text,
   already deleted, nothing unread: answered at once, no host call); an Idempotency-Key already
   used (the same request: answered as the message is now; another: ``409
   idempotency_conflict``); the sending governor (``429 rate_limited``).
2. The host is asked once the session is connected: ``react-message``, ``edit-message``,
   ``delete-message`` or ``send-seen``. Each of them is harmless to repeat, so a timeout leaves
   nothing to reconcile: the caller may call again.
3. ``gateway_finish_action`` records it: an edit, a deletion or the account's reaction as a
   change of the message, as the host's own reports are kept (so a late report of an older
   state changes nothing), or the chat's incoming messages marked read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from wa_gateway.auth.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import (
    ApiError,
    DeleteWindowPassed,
    EditWindowPassed,
    IdempotencyConflict,
    MessageDeleted,
    MessageNotFound,
    MessageNotSent,
    NotEditable,
    NotOwnMessage,
    RateLimited,
    SessionNotConnected,
    SessionStarting,
)
from wa_gateway.host.answers import HostSessionClosed
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import HostDirectory
from wa_gateway.message_requests import EditRequest, ReactRequest, ReadRequest
from wa_gateway.messaging import chats
from wa_gateway.messaging.connection import STARTING_RETRY_S
from wa_gateway.messaging.host_calls import host_session
from wa_gateway.messaging.limits import DELETE_WINDOW_S, EDIT_WINDOW_S
from wa_gateway.records import MessageRecord
from wa_gateway.send_records import ActionKind, ActionPlan, ChatRecord, MessageAction
from wa_gateway.sessions.service import session_name_for
from wa_gateway.store import Store

_REFUSALS: dict[str, Callable[[], ApiError]] = {
    "conflict": IdempotencyConflict,
    "not_connected": SessionNotConnected,
    "starting": lambda: SessionStarting(STARTING_RETRY_S),
    "message_not_found": MessageNotFound,
    "message_not_sent": MessageNotSent,
    "message_deleted": MessageDeleted,
    "not_own_message": NotOwnMessage,
    "not_editable": NotEditable,
}
_WINDOW_PASSED: dict[str, Callable[[], ApiError]] = {
    "edit": EditWindowPassed,
    "delete": DeleteWindowPassed,
}

HostCall = Callable[[HostClient, str, str, ActionPlan], None]


class ReadResult(NamedTuple):
    chat: ChatRecord | None  # None: the account has no chat of that name
    marked: int  # incoming messages marked read by this call


def action_hash(kind: ActionKind, *fields: str | None) -> str:
    canonical = json.dumps([kind, *fields], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _react(client: HostClient, name: str, token: str, plan: ActionPlan, emoji: str) -> None:
    assert plan.message is not None and plan.message.wpp_message_id is not None
    client.react(name, token, message_id=plan.message.wpp_message_id, emoji=emoji)


def _edit(client: HostClient, name: str, token: str, plan: ActionPlan, text: str) -> None:
    assert plan.message is not None and plan.message.wpp_message_id is not None
    client.edit(name, token, message_id=plan.message.wpp_message_id, text=text)


def _delete(client: HostClient, name: str, token: str, plan: ActionPlan) -> None:
    assert plan.message is not None and plan.message.wpp_message_id is not None
    client.delete_for_everyone(
        name, token, chats.of_message(plan.message), plan.message.wpp_message_id
    )


def _read(client: HostClient, name: str, token: str, plan: ActionPlan) -> None:
    assert plan.chat is not None
    client.send_seen(name, token, chats.of_chat_id(plan.chat.chat_id))


def _called(call: HostCall, client: HostClient, name: str, token: str, plan: ActionPlan) -> bool:
    """Run ``call``; True (call_if_connected's None means "not connected")."""
    call(client, name, token, plan)
    return True


@dataclass
class ActionService:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None

    def react(self, caller: Caller, request: ReactRequest, key: str | None) -> MessageRecord:
        """React to one of the caller's messages ("" takes the reaction back)."""
        action = self._action(caller, "react", request.id, key, emoji=request.emoji)
        return self._message(
            self._run(action, lambda c, n, t, p: _react(c, n, t, p, request.emoji))
        )

    def edit(self, caller: Caller, request: EditRequest, key: str | None) -> MessageRecord:
        """Edit the text of one of the account's own messages."""
        action = self._action(caller, "edit", request.id, key, body=request.message)
        return self._message(
            self._run(action, lambda c, n, t, p: _edit(c, n, t, p, request.message))
        )

    def delete(self, caller: Caller, message_id: str, key: str | None) -> MessageRecord:
        """Delete one of the account's own messages for everyone."""
        return self._message(self._run(self._action(caller, "delete", message_id, key), _delete))

    def read(self, caller: Caller, request: ReadRequest, key: str | None) -> ReadResult:
        """Mark a chat's incoming messages read, and the chat read on the phone (once: a chat
        with nothing unread asks nothing of the host)."""
        action = MessageAction(
            user_id=caller.user_id,
            kind="read",
            message_id=None,
            session_name=session_name_for(caller.user_id, request.account),
            chat_id=request.chat_id,
            emoji=None,
            body=None,
            idempotency_key=key,
            request_hash=action_hash("read", request.account, request.chat_id),
            window_s=None,
        )
        plan, done = self._decide(action)
        if done is not None:
            return ReadResult(done.chat, 0)
        self._call_host(plan, _read)
        _, chat, marked = self.store.finish_action(action)
        return ReadResult(chat, marked)

    # --- the steps ------------------------------------------------------------------------

    def _action(
        self,
        caller: Caller,
        kind: ActionKind,
        message_id: str,
        key: str | None,
        *,
        emoji: str | None = None,
        body: str | None = None,
    ) -> MessageAction:
        return MessageAction(
            user_id=caller.user_id,
            kind=kind,
            message_id=message_id,
            session_name=None,
            chat_id=None,
            emoji=emoji,
            body=body,
            idempotency_key=key,
            request_hash=action_hash(kind, message_id, emoji, body),
            window_s={"edit": EDIT_WINDOW_S, "delete": DELETE_WINDOW_S}.get(kind),
        )

    def _decide(self, action: MessageAction) -> tuple[ActionPlan, ActionPlan | None]:
        """(the plan, itself when it is already the answer: replay or nothing to do)."""
        plan = self.store.begin_action(action)
        if plan.outcome in _REFUSALS:
            raise _REFUSALS[plan.outcome]()
        if plan.outcome == "window_passed":
            raise _WINDOW_PASSED[action.kind]()
        if plan.outcome == "rate_limited":
            raise RateLimited(plan.retry_after_s)
        return plan, (plan if plan.outcome in ("replay", "unchanged") else None)

    def _run(self, action: MessageAction, call: HostCall) -> ActionPlan | MessageRecord:
        plan, done = self._decide(action)
        if done is not None:
            return done
        self._call_host(plan, call)
        message, _, _ = self.store.finish_action(action)
        assert message is not None
        return message

    def _call_host(self, plan: ActionPlan, call: HostCall) -> None:
        assert plan.session is not None
        name = plan.session.session_id
        with host_session(self, name, plan.host_token, plan.host) as host:
            try:
                answer = host.call_if_connected(
                    lambda token: _called(call, host.host, name, token, plan)
                )
            except HostSessionClosed:
                answer = None
        if answer is None:
            raise SessionNotConnected()

    @staticmethod
    def _message(result: ActionPlan | MessageRecord) -> MessageRecord:
        if isinstance(result, MessageRecord):
            return result
        if result.message is None:
            raise MessageNotFound()
        return result.message
