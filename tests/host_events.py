"""Events as wppconnect-server 2.10.4 posts them to a session's webhook."""

from __future__ import annotations

from typing import Any


def onmessage(session: str, wpp_id: str, **fields: Any) -> dict[str, Any]:
    """A chat message from Ana (5511987654321) to the account (5511912345678), with ``fields``
    added or replaced."""
    return {
        "event": "onmessage",
        "session": session,
        "id": wpp_id,
        "body": "oi",
        "type": "chat",
        "from": "5511987654321@c.us",
        "to": "5511912345678@c.us",
        "fromMe": False,
        "isGroupMsg": False,
        "chatId": "5511987654321@c.us",
        "sender": {"id": "5511987654321@c.us", "pushname": "Ana"},
        **fields,
    }
