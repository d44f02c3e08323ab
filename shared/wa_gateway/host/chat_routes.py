"""The host's routes that change a message, mark a chat read, and tell of groups: what the
conversations' calls ask. Every route here is behind the host's ``statusConnection``: call them
for a connected session only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from wa_gateway.errors import HostError
from wa_gateway.host.answers import HostSessionClosed
from wa_gateway.host.http import seg


class HostChat(NamedTuple):
    """A chat as the host's routes name it (``contactToArray``): a number, a LID's digits
    with ``isLid``, or a group's id with ``isGroup``."""

    target: str  # what goes in the route's "phone"
    is_lid: bool = False
    is_group: bool = False

    def fields(self) -> dict[str, Any]:
        """The body fields that name this chat."""
        payload: dict[str, Any] = {"phone": self.target, "isGroup": self.is_group}
        if self.is_lid:
            payload["isLid"] = True
        return payload


class ChatRoutes:
    """Part of :class:`wa_gateway.host.client.HostClient`, whose ``_request`` they use."""

    _request: Callable[..., tuple[int, Any]]

    def react(self, session: str, token: str, *, message_id: str, emoji: str) -> None:
        """React to a message (``react-message``; "" takes the reaction back)."""
        self._change(session, token, "react-message", {"msgId": message_id, "reaction": emoji})

    def edit(self, session: str, token: str, *, message_id: str, text: str) -> None:
        """Edit one's own text message (``edit-message``: the library answers the message read
        back, or 500 when WhatsApp would not edit it)."""
        payload = {"id": message_id, "newText": text}
        self._change(session, token, "edit-message", payload, ok=201)

    def delete_for_everyone(
        self, session: str, token: str, chat: HostChat, message_id: str
    ) -> None:
        """Delete a message for everyone (``delete-message`` with ``onlyLocal: false``): 200,
        or 401 "Error unknown on delete message" when the library said no."""
        payload = chat.fields()
        payload.update(messageId=message_id, onlyLocal=False, deleteMediaInDevice=False)
        self._change(session, token, "delete-message", payload)

    def send_seen(self, session: str, token: str, chat: HostChat) -> None:
        """Mark a chat read on the phone (``send-seen``: WPP.chat.markIsRead)."""
        self._change(session, token, "send-seen", chat.fields(), ok=201)

    def _change(
        self, session: str, token: str, route: str, payload: dict[str, Any], *, ok: int = 200
    ) -> None:
        """POST ``payload`` to one of the session's routes that change something; raise unless
        the host answered ``ok`` with a JSON object."""
        path = f"/api/{seg(session)}/{route}"
        status, body = self._request("POST", path, token=token, json=payload)
        if status == ok and isinstance(body, dict):
            return
        if status == 404:
            raise HostSessionClosed()
        # wppconnect answers 500 when the library threw (the message could not be changed).
        raise HostError(maybe_acted=status not in (400, 401, 500))

    def group_info(self, session: str, token: str, group: str) -> dict[str, Any]:
        """A group's subject and participants (``group-info/:groupId``): for a group the
        account was never in, the subject is "" and there are no participants."""
        status, body = self._request(
            "GET", f"/api/{seg(session)}/group-info/{seg(group)}", token=token
        )
        info = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(info, dict):
            if status == 404:
                raise HostSessionClosed()
            raise HostError(maybe_acted=False)
        return info

    def own_number(self, session: str, token: str) -> str | None:
        """The account's own id (``get-phone-number``: the library's ``getWid``)."""
        status, body = self._request("GET", f"/api/{seg(session)}/get-phone-number", token=token)
        wid = body.get("response") if isinstance(body, dict) else None
        if status != 200:
            raise HostError(maybe_acted=False)
        return wid if isinstance(wid, str) else None
