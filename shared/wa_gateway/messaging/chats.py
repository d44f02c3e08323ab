"""A chat as the host's routes name it: a number, a LID's digits (``isLid``) or a group's id
(``isGroup``), from a stored message or from a chat id."""

from __future__ import annotations

from wa_gateway.host.chat_routes import HostChat
from wa_gateway.records import MessageRecord


def of_message(message: MessageRecord) -> HostChat:
    """The chat of a stored message: its group, its contact's number, else their LID."""
    if message.group_id:
        return HostChat(message.group_id, is_group=True)
    if message.phone:
        return HostChat(message.phone)
    return HostChat(message.contact_lid or "", is_lid=True)


def of_chat_id(chat_id: str) -> HostChat:
    """The chat of a chat id (``<digits>@c.us``, ``<digits>@lid`` or ``<group>@g.us``)."""
    user, _, server = chat_id.partition("@")
    if server == "g.us":
        return HostChat(chat_id, is_group=True)
    return HostChat(user, is_lid=server == "lid")
