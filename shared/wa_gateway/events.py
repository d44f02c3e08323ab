"""Applying the host's webhook events to the store: one event, one database round trip."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from wa_gateway import qr, transitions
from wa_gateway.message_events import ack_from_event, inbound_from_event
from wa_gateway.store import Store

SESSION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MESSAGE_EVENTS = {"onmessage", "onselfmessage", "unreadmessages"}


@dataclass(frozen=True)
class EventPolicy:
    """Which inbound messages are kept: group and status broadcasts are off by default."""

    groups: bool = False
    status_broadcasts: bool = False


def apply_event(
    store: Store, session_name: str, event: Mapping[str, Any], policy: EventPolicy = EventPolicy()
) -> bool:
    """Apply one event; True if it changed something. Unknown sessions and events are ignored."""
    if not SESSION_NAME.match(session_name):
        return False
    name = event.get("event")
    if name in MESSAGE_EVENTS:
        message = inbound_from_event(
            session_name, event, groups=policy.groups, status_broadcasts=policy.status_broadcasts
        )
        return message is not None and store.record_inbound(message)
    if name == "onack":
        ack = ack_from_event(session_name, event)
        return ack is not None and store.apply_ack(ack)
    update = transitions.from_event(session_name, event)
    if update is None:
        return False
    if update.qr_code:
        update = replace(update, qr_image=qr.png_data_url(update.qr_code))
    result = store.apply_host_state(update)
    return bool(result and result.changed)
