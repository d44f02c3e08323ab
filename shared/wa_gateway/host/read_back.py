"""The host's read-back routes, what reconcile asks to learn what the webhooks missed.

None of these marks anything read on the phone: ``list-chats`` is ``WPP.chat.list``,
``get-messages`` ``WPP.chat.getMessages``, ``message-by-id`` ``WPP.chat.getMessageById``
(wppconnect's retriever layer and wapi functions); only callWebHook's ``readMessage`` and the
send-seen routes call ``sendSeen``. Call them for a connected session only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wa_gateway.errors import HostError
from wa_gateway.host.answers import HostChatUnreadable
from wa_gateway.host.http import seg


class ReadBackRoutes:
    """Part of :class:`wa_gateway.host.client.HostClient`, whose ``_request`` they use."""

    _request: Callable[..., tuple[int, Any]]

    def uptime_s(self) -> float | None:
        """How long the host process has been up (``/healthz``), None if it does not say."""
        status, body = self._request("GET", "/healthz")
        if status != 200 or not isinstance(body, dict):
            raise HostError(maybe_acted=False)
        uptime = body.get("uptime")
        return float(uptime) if isinstance(uptime, int | float) else None

    def list_chats(self, session: str, token: str) -> list[dict[str, Any]]:
        """Every chat with its last message's time ``t`` (``list-chats``, POST, unwrapped)."""
        status, body = self._request(
            "POST", f"/api/{seg(session)}/list-chats", token=token, json={}
        )
        if status != 200 or not isinstance(body, list):
            raise HostError(maybe_acted=False)
        return [chat for chat in body if isinstance(chat, dict)]

    def chat_messages(
        self, session: str, token: str, *, chat: str, count: int, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The last ``count`` messages of a chat, oldest first, or the ``count`` before the
        message ``before`` (``get-messages/:chatId``; the id must be a full chat id, as the
        host has it). :class:`HostChatUnreadable` when the route's controller threw (its 401
        with its own body, not the auth middleware's)."""
        query = f"?count={count}" + (f"&direction=before&id={seg(before)}" if before else "")
        status, body = self._request(
            "GET", f"/api/{seg(session)}/get-messages/{seg(chat)}{query}", token=token
        )
        if status == 401:
            raise HostChatUnreadable()
        items = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(items, list):
            raise HostError(maybe_acted=False)
        return [item for item in items if isinstance(item, dict)]

    def message_by_id(self, session: str, token: str, *, id: str) -> dict[str, Any] | None:
        """One message as the host has it now (``message-by-id``), None if it has no such id
        (the controller throws: 400)."""
        status, body = self._request(
            "GET", f"/api/{seg(session)}/message-by-id/{seg(id)}", token=token
        )
        if status == 400:
            return None
        answer = body.get("response") if isinstance(body, dict) else None
        data = answer.get("data") if isinstance(answer, dict) else None
        if status not in (200, 201) or not isinstance(data, dict):
            raise HostError(maybe_acted=False)
        return data

    def reactions(self, session: str, token: str, message_id: str) -> list[dict[str, Any]]:
        """Everyone's reactions on a message (``reactions/:id``): one item per person with
        ``id`` (the reaction's key), ``reactionText`` and ``timestamp``."""
        status, body = self._request(
            "GET", f"/api/{seg(session)}/reactions/{seg(message_id)}", token=token
        )
        answer = body.get("response") if isinstance(body, dict) else None
        groups = answer.get("reactions") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(groups, list):
            raise HostError(maybe_acted=False)
        return [
            sender
            for group in groups
            if isinstance(group, dict) and isinstance(group.get("senders"), list)
            for sender in group["senders"]
            if isinstance(sender, dict)
        ]
