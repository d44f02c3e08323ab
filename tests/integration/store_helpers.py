"""Steps the store's integration tests share."""

from __future__ import annotations

import uuid

from local import devdb
from wa_gateway.records import SessionUpdate, StartPlan, StartRefusal, StartRequest
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import Store


def new_user(database: str, label: str) -> devdb.DevUser:
    """A user of one test alone."""
    return devdb.create_user(database, f"{label}-{uuid.uuid4().hex[:10]}@example.com", "pw")


def begin(store: Store, user_id: str, name: str, method: str = "qr") -> StartPlan | StartRefusal:
    """start-session's first step for a user's default account, on the default host."""
    return store.begin_start(StartRequest(user_id, name, "default", method, 3, "h"))


def connected(store: Store, database: str, label: str = "linked") -> tuple[devdb.DevUser, str]:
    """A new user whose default session the host has linked; the user and the session's name."""
    user = new_user(database, label)
    name = session_name_for(user.id)
    begin(store, user.id, name)
    store.apply_host_state(SessionUpdate(name, "connected"))
    return user, name
