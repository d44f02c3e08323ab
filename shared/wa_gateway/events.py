"""Applying the host's webhook events to the store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wa_gateway import qr, transitions
from wa_gateway.store import Store

SESSION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def apply_event(store: Store, session_name: str, event: Mapping[str, Any]) -> bool:
    """Apply one event; True if it changed a session. Unknown sessions and events are ignored."""
    if not SESSION_NAME.match(session_name):
        return False
    update = transitions.from_event(session_name, event)
    if update is None:
        return False
    if update.qr_code:
        update = replace(update, qr_image=qr.png_data_url(update.qr_code))
    result = store.apply_host_state(update)
    return bool(result and result.changed)
