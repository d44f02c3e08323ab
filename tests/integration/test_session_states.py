"""The session states that follow the host's timing, on real PostgreSQL: a login syncing
between pairing and connected, a loss the gateway only inferred undone by a login, the reason
that says why a session ended winning over browserClose, a start that waits for our logout's
browser, and a start without progress called stalled."""

from __future__ import annotations

import psycopg
import pytest

from local import devdb
from tests.integration.store_helpers import new_user
from wa_gateway.events.service import to_record
from wa_gateway.records import SessionUpdate, StartPlan, StartRequest, StartWait
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.sessions.transitions import from_event, syncing
from wa_gateway.store import PostgresTransport, Store


@pytest.fixture(scope="module")
def store(transport: PostgresTransport) -> Store:
    return Store(transport, qr_first_ttl_s=60, qr_next_ttl_s=20)


def start(store: Store, user: devdb.DevUser, *, settle_s: int = 0, stuck_s: int = 90) -> object:
    name = session_name_for(user.id)
    request = StartRequest(user.id, name, "default", "qr", 3, "h", settle_s, stuck_s)
    return store.begin_start(request)


def state(store: Store, user: devdb.DevUser) -> tuple[str, str | None]:
    """The session's status and status_reason, as stored."""
    found = store.session_for_host(user_id=user.id, session_name=session_name_for(user.id))
    assert found is not None
    return found.session.status, found.session.status_reason


def status_find(store: Store, user: devdb.DevUser, status: str) -> None:
    update = from_event(session_name_for(user.id), {"event": "status-find", "status": status})
    assert update is not None
    store.apply_host_state(update)


def connected(store: Store, user: devdb.DevUser) -> str:
    name = session_name_for(user.id)
    assert isinstance(start(store, user), StartPlan)
    store.apply_host_state(SessionUpdate(name, "connected"))
    return name


def test_a_login_is_syncing_between_pairing_and_connected(
    store: Store, user: devdb.DevUser
) -> None:
    name = session_name_for(user.id)
    start(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A", qr_image="i"))
    status_find(store, user, "qrReadSuccess")
    assert state(store, user) == ("starting", "syncing")
    plan = start(store, user)
    assert isinstance(plan, StartPlan) and plan.action == "none"  # nothing to ask the host
    assert plan.session.qr_code is None  # the used QR is gone
    late = store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@B"))
    assert late is not None and not late.changed
    status_find(store, user, "inChat")
    assert state(store, user) == ("connected", None)
    status_find(store, user, "isLogged")  # late: nothing moves back
    assert state(store, user) == ("connected", None)


def test_a_loss_the_gateway_inferred_comes_back_with_a_login_and_a_logout_does_not(
    store: Store, user: devdb.DevUser, database: str
) -> None:
    name = connected(store, user)
    store.repair_session(name, "disconnected", "host_disconnected")
    status_find(store, user, "isLogged")
    assert state(store, user) == ("starting", "syncing")
    status_find(store, user, "inChat")
    assert state(store, user) == ("connected", None)

    other = new_user(database, "states-logout")
    connected(store, other)
    store.repair_session(session_name_for(other.id), "disconnected", "logged_out")
    for event in ("isLogged", "inChat"):
        status_find(store, other, event)
        assert state(store, other) == ("disconnected", "logged_out")


def test_the_reason_a_session_ended_wins_over_the_browser_close_it_causes(
    store: Store, user: devdb.DevUser
) -> None:
    connected(store, user)
    status_find(store, user, "browserClose")  # delivered first
    status_find(store, user, "disconnectedMobile")
    assert state(store, user) == ("disconnected", "disconnectedMobile")
    status_find(store, user, "autocloseCalled")  # a reason is kept once it is not browserClose
    assert state(store, user) == ("disconnected", "disconnectedMobile")


def test_a_start_right_after_our_logout_waits_for_the_old_browser_to_close(
    store: Store, user: devdb.DevUser
) -> None:
    name = connected(store, user)
    store.repair_session(name, "disconnected", "logged_out")
    waiting = start(store, user, settle_s=3)
    assert isinstance(waiting, StartWait) and 0 < waiting.retry_in_s <= 3
    assert state(store, user) == ("disconnected", "logged_out")  # nothing opened meanwhile
    closed = {"event": "status-find", "status": "browserClose"}
    assert store.ingest_event(to_record(name, closed)).stored
    plan = start(store, user, settle_s=3)
    assert isinstance(plan, StartPlan) and plan.opened


def test_a_start_after_the_settle_time_or_after_another_ending_does_not_wait(
    store: Store, user: devdb.DevUser, database: str
) -> None:
    name = connected(store, user)
    store.repair_session(name, "disconnected", "logged_out")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_sessions set disconnected_at = now() - interval '4 seconds'"
            " where session_id = %s",
            (name,),
        )
    assert isinstance(start(store, user, settle_s=3), StartPlan)

    other = new_user(database, "states-cancel")
    connected(store, other)
    store.repair_session(session_name_for(other.id), "disconnected", "cancelled")
    assert isinstance(start(store, other, settle_s=3), StartPlan)


def test_a_start_without_progress_past_the_bound_is_stalled(
    store: Store, user: devdb.DevUser, database: str
) -> None:
    name = session_name_for(user.id)
    first = start(store, user, stuck_s=90)
    assert isinstance(first, StartPlan) and not first.stalled
    again = start(store, user, stuck_s=90)
    assert isinstance(again, StartPlan) and not again.stalled
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_sessions set last_activity = now() - interval '91 seconds'"
            " where session_id = %s",
            (name,),
        )
    late = start(store, user, stuck_s=90)
    assert isinstance(late, StartPlan) and late.stalled and late.action == "start"

    store.repair_session(name, "disconnected", "start_failed")
    reopened = start(store, user, stuck_s=90)
    assert isinstance(reopened, StartPlan) and reopened.stalled and reopened.opened


def test_a_fresh_look_can_make_a_linked_session_syncing_and_back(
    store: Store, user: devdb.DevUser
) -> None:
    name = connected(store, user)
    repaired = store.repair_session(name, "starting", "syncing")
    assert repaired is not None and repaired.changed
    assert state(store, user) == ("starting", "syncing")
    again = store.repair_session(name, "starting", "syncing")
    assert again is not None and not again.changed
    store.apply_host_state(syncing(name))
    store.repair_session(name, "connected")
    assert state(store, user) == ("connected", None)
