"""The store's session transitions on real PostgreSQL: what moves a session, what doesn't, and
that shuffled, duplicated host events end where in-order delivery would."""

from __future__ import annotations

import itertools
import random
from typing import Any

import psycopg
import pytest

from local import devdb
from tests.integration.store_helpers import begin
from wa_gateway.auth.caller import Caller
from wa_gateway.events.service import to_record
from wa_gateway.records import SessionOnHost, SessionUpdate
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.sessions.transitions import from_event
from wa_gateway.store import PostgresTransport, Store


@pytest.fixture(scope="module")
def store(transport: PostgresTransport) -> Store:
    return Store(transport, qr_first_ttl_s=60, qr_next_ttl_s=20)


def caller_for(user: devdb.DevUser) -> Caller:
    claims = {"sub": user.id, "role": "authenticated", "aud": "authenticated"}
    return Caller(user_id=user.id, claims=claims, token="unused")


def open_session(store: Store, user: devdb.DevUser, method: str = "qr") -> str:
    name = session_name_for(user.id)
    plan = begin(store, user.id, name, method)
    assert plan.session.status == "starting"
    return name


def test_first_start_creates_the_session_and_opens_an_attempt(
    store: Store, user: devdb.DevUser
) -> None:
    name = session_name_for(user.id)
    plan = begin(store, user.id, name)
    assert (plan.action, plan.opened, plan.session.status) == ("start", True, "starting")
    assert plan.host_token is None
    again = begin(store, user.id, name)
    assert (again.action, again.opened, again.session.id) == ("start", False, plan.session.id)


def test_a_valid_qr_is_reused_without_the_host(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    result = store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A", qr_image="i"))
    assert result is not None and result.changed and result.session.qr_expires_at
    plan = begin(store, user.id, name)
    assert plan.action == "none" and plan.session.qr_code == "2@A"


def test_a_repeated_start_neither_locks_nor_writes(
    store: Store, user: devdb.DevUser, database: str
) -> None:
    """While another transaction holds the session row, a repeat is answered at once, and
    the row is left as it was (no lock taken, so no new row version)."""
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "connected"))
    with psycopg.connect(database) as holder:
        version = holder.execute(
            "select xmin::text from whatsapp_sessions where session_id = %s for update", (name,)
        ).fetchone()
        transport = PostgresTransport(database, timeout_s=0.5)
        try:  # a lock wait would end in a statement timeout
            plan = begin(Store(transport), user.id, name)
        finally:
            transport.close()
        assert plan.action == "none" and plan.session.status == "connected"
        holder.rollback()
        after = holder.execute(
            "select xmin::text from whatsapp_sessions where session_id = %s", (name,)
        ).fetchone()
    assert after == version


def test_switching_pairing_method_restarts(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A"))
    plan = begin(store, user.id, name, "code")
    assert plan.action == "restart"
    assert plan.session.status == "starting" and plan.session.qr_code is None


def test_a_connected_session_is_left_alone(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "connected"))
    plan = begin(store, user.id, name)
    assert plan.action == "none" and plan.session.status == "connected"


def test_a_late_qr_never_pulls_a_connected_session_back(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A"))
    store.apply_host_state(SessionUpdate(name, "connected"))
    late = store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@B"))
    assert late is not None and not late.changed
    assert late.session.status == "connected" and late.session.qr_code is None


def test_duplicates_change_nothing(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    first = store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A"))
    second = store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A"))
    assert first is not None and second is not None
    assert first.changed and not second.changed
    assert second.session.updated_at == first.session.updated_at


def test_qr_lifetime_is_longer_for_the_first_code(store: Store, user: devdb.DevUser) -> None:
    from datetime import datetime

    name = open_session(store, user)

    def lifetime(code: str) -> float:
        result = store.apply_host_state(SessionUpdate(name, "pairing", qr_code=code))
        assert result is not None and result.session.qr_expires_at and result.session.updated_at
        expires = datetime.fromisoformat(result.session.qr_expires_at)
        return (expires - datetime.fromisoformat(result.session.updated_at)).total_seconds()

    assert lifetime("2@first") == 60
    assert lifetime("2@second") == 20


def test_disconnected_is_final_until_the_next_start(store: Store, user: devdb.DevUser) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "connected"))
    gone = store.apply_host_state(SessionUpdate(name, "disconnected", reason="disconnectedMobile"))
    assert gone is not None and gone.session.status == "disconnected"
    assert gone.session.status_reason == "disconnectedMobile"
    late = store.apply_host_state(SessionUpdate(name, "connected"))
    assert late is not None and late.session.status == "disconnected"
    plan = begin(store, user.id, name)
    assert plan.opened and plan.session.status == "starting"


def test_unknown_sessions_are_ignored(store: Store) -> None:
    assert store.apply_host_state(SessionUpdate("user_nobody", "connected")) is None


def test_host_tokens_are_stored_beside_the_session(
    store: Store, user: devdb.DevUser, database: str
) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "starting", host_token="v1.k1.abc"))
    plan = begin(store, user.id, name)
    assert plan.host_token == "v1.k1.abc"


def test_a_session_is_found_with_what_reaches_it_on_its_host(
    store: Store, user: devdb.DevUser
) -> None:
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "starting", host_token="v1.k1.abc"))
    found = store.session_for_host(user_id=user.id, session_name=name)
    assert isinstance(found, SessionOnHost)
    assert found.session.session_id == name and found.host_token == "v1.k1.abc"
    assert found.host is None  # no pool host: the default host
    assert store.session_for_host(user_id=user.id, session_name=name + "_gone") is None


def test_users_read_their_own_session_only(store: Store, user: devdb.DevUser) -> None:
    import uuid

    name = open_session(store, user)
    mine = store.get_session(caller_for(user), name)
    stranger = devdb.DevUser(id=str(uuid.uuid4()), email="nobody@example.com")
    assert mine is not None and mine.session_id == name
    assert store.get_session(caller_for(stranger), name) is None


def test_each_call_is_one_round_trip(store: Store, user: devdb.DevUser) -> None:
    before = store.round_trips
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@A"))
    store.get_session(caller_for(user), name)
    assert store.round_trips - before == 3


# --- event order ---------------------------------------------------------------------------

QR_LOGIN = [
    {"event": "status-find", "status": "notLogged"},
    {"event": "qrcode", "urlcode": "2@only", "qrcode": "iVBOR"},
    {"event": "status-find", "status": "qrReadSuccess"},
    {"event": "status-find", "status": "inChat"},
    {"event": "status-find", "status": "inChat"},
]
QR_TIMEOUT = [
    {"event": "status-find", "status": "notLogged"},
    {"event": "qrcode", "urlcode": "2@only", "qrcode": "iVBOR"},
    {"event": "status-find", "status": "browserClose"},
]
UNLINK = [
    {"event": "status-find", "status": "isLogged"},
    {"event": "status-find", "status": "inChat"},
    {"event": "status-find", "status": "disconnectedMobile"},
]


def final_state(store: Store, user: devdb.DevUser, events: list[dict[str, Any]]) -> tuple[Any, ...]:
    name = session_name_for(user.id)
    begin(store, user.id, name)
    for event in events:
        update = from_event(name, event)
        if update is not None:
            store.apply_host_state(update)
    session = store.get_session(caller_for(user), name)
    assert session is not None
    return session.status, session.qr_code, session.pairing_code


@pytest.mark.parametrize("flow", [QR_LOGIN, QR_TIMEOUT, UNLINK], ids=["login", "timeout", "unlink"])
def test_shuffled_and_duplicated_events_end_as_in_order(
    store: Store, database: str, flow: list[dict[str, Any]]
) -> None:
    import uuid

    def fresh_user() -> devdb.DevUser:
        return devdb.create_user(database, f"order-{uuid.uuid4().hex[:10]}@example.com", "pw")

    expected = final_state(store, fresh_user(), flow)
    rng = random.Random(7)
    orders = list(itertools.permutations(flow))
    for order in rng.sample(orders, min(12, len(orders))):
        delivered = [e for e in order for _ in range(rng.choice((1, 2)))]
        assert final_state(store, fresh_user(), delivered) == expected


def test_claims_travel_intact_whatever_the_user_put_in_them(
    store: Store, user: devdb.DevUser
) -> None:
    """A user writes their own user_metadata, which the token carries: quotes, backslashes
    and statements in it reach the database as one value, and RLS still finds the user."""
    name = open_session(store, user)
    claims = {
        **caller_for(user).claims,
        "user_metadata": {"name": "O'Brien \\' \"x\"; commit; drop table whatsapp_sessions; --"},
    }
    record = store.get_session(Caller(user_id=user.id, claims=claims, token="unused"), name)
    assert record is not None and record.session_id == name


def test_session_events_count_for_the_attempt_the_host_holds_and_no_other(
    store: Store, user: devdb.DevUser
) -> None:
    name = open_session(store, user)  # attempt 1, and the host starts a browser with its URL
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", host_attempt=1))
    store.repair_session(name, "disconnected", reason="cancelled")
    assert begin(store, user.id, name).session.attempt == 2
    # The host answered the second start early: its browser keeps attempt 1's URL.
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", start_attempt=2))

    def post(attempt: int, event: dict[str, Any]) -> Any:
        return store.ingest_event(to_record(name, {**event, "session": name}, attempt=attempt))

    assert post(1, {"event": "status-find", "status": "inChat"}).changed
    assert status_of(store, user) == "connected"
    assert post(1, {"event": "logoutsession", "connected": False}).changed
    assert status_of(store, user) == "disconnected"

    # A third start launches a new browser: attempts 1 and 2 are no longer the host's.
    begin(store, user.id, name)
    store.apply_host_state(SessionUpdate(name, "starting", host_attempt=3, start_attempt=3))
    for attempt in (1, 2):
        late = post(attempt, {"event": "status-find", "status": "browserClose"})
        assert (late.stored, late.reason) == (False, "other_attempt")
    assert status_of(store, user) == "starting"


def test_a_cancelled_pairings_late_browser_close_does_not_end_the_start_that_replaced_it(
    store: Store, user: devdb.DevUser
) -> None:
    """A cancelled pairing's browser ends on the host (its autoClose); its browserClose (still
    posted to attempt 1's URL, the one the host held) reaches the gateway after the next start
    opened attempt 2 and before that start recorded the host's answer. The host launched a
    fresh browser for attempt 2: the late event is the old browser's, and ends nothing."""
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", host_attempt=1))
    store.repair_session(name, "disconnected", reason="cancelled")
    assert begin(store, user.id, name).session.attempt == 2
    close = {"event": "status-find", "session": name, "status": "browserClose"}
    assert store.ingest_event(to_record(name, close, attempt=1)).stored
    assert status_of(store, user) == "starting"
    store.apply_host_state(
        SessionUpdate(name, "pairing", qr_code="2@two", host_attempt=2, start_attempt=2)
    )
    assert status_of(store, user) == "pairing"
    again = store.ingest_event(to_record(name, close, attempt=1))
    assert (again.stored, again.reason) == (False, "other_attempt")


def test_the_held_attempts_events_during_a_start_count_once_the_host_answers_early(
    store: Store, user: devdb.DevUser
) -> None:
    """The same late browserClose, where the host answered the start early (attempt 1's
    browser was still its own when asked): that browser is the session's, so its close, held
    while the start was under way, ends the session once the start has recorded the answer."""
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", host_attempt=1))
    store.repair_session(name, "disconnected", reason="cancelled")
    assert begin(store, user.id, name).session.attempt == 2
    later_qr = {"event": "qrcode", "urlcode": "2@later"}
    close = {"event": "status-find", "status": "browserClose"}
    for event in (later_qr, close):
        assert store.ingest_event(to_record(name, {**event, "session": name}, attempt=1)).stored
    assert status_of(store, user) == "starting"
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", start_attempt=2))
    session = store.get_session(caller_for(user), name)
    assert session is not None
    assert (session.status, session.status_reason) == ("disconnected", "browserClose")


def status_of(store: Store, user: devdb.DevUser) -> str:
    session = store.get_session(caller_for(user), session_name_for(user.id))
    assert session is not None
    return session.status


def test_a_logged_out_browsers_last_events_do_not_end_the_start_after_it(
    store: Store, user: devdb.DevUser
) -> None:
    """After our logout the host holds nothing of the session: the old browser's last words
    (disconnectedMobile, browserClose: the host posts them one after the other, and they can
    reach the gateway in either order, beside a start) no longer speak for the session once
    a new attempt is open. The start waited for one of them; the other may come after."""
    name = open_session(store, user)  # attempt 1, its browser started with attempt 1's URL
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", host_attempt=1))

    def post(attempt: int, event: dict[str, Any]) -> Any:
        return store.ingest_event(to_record(name, {**event, "session": name}, attempt=attempt))

    assert post(1, {"event": "status-find", "status": "inChat"}).changed
    store.repair_session(name, "disconnected", reason="logged_out")  # our disconnect
    assert post(1, {"event": "status-find", "status": "browserClose"}).stored
    assert begin(store, user.id, name).session.attempt == 2  # the start goes on
    late = post(1, {"event": "status-find", "status": "disconnectedMobile"})
    assert (late.stored, late.reason) == (False, "other_attempt")
    assert status_of(store, user) == "starting"


def test_after_our_logout_the_held_attempts_browser_close_still_counts_until_a_start(
    store: Store, user: devdb.DevUser
) -> None:
    """A start the host answered early left attempt 1's browser the session's; after our
    logout that browser's browserClose (attempt 1) is what the next start waits for, so it is
    stored, not set aside as another attempt's."""
    name = open_session(store, user)
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", host_attempt=1))
    store.repair_session(name, "disconnected", reason="cancelled")
    assert begin(store, user.id, name).session.attempt == 2  # the host answers it early
    store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@one", start_attempt=2))
    linked = {"event": "status-find", "session": name, "status": "inChat"}
    assert store.ingest_event(to_record(name, linked, attempt=1)).changed
    store.repair_session(name, "disconnected", reason="logged_out")  # our disconnect
    close = {"event": "status-find", "session": name, "status": "browserClose"}
    assert store.ingest_event(to_record(name, close, attempt=1)).stored
