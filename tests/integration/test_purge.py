"""The purge job on real PostgreSQL and the simulator: what goes, what stays, in batches."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from local import devdb
from local.processes import free_port
from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user
from tests.integration.store_helpers import begin
from tests.rows import every
from tests.waiting import wait_until
from wa_gateway.crypto import Keyring
from wa_gateway.errors import HostError, StoreUnavailable
from wa_gateway.events.service import to_record
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.purge import Purger
from wa_gateway.pass_records import PurgeLimits, PurgePass
from wa_gateway.records import HostEntry, HostPlacement, HostRecord, SessionUpdate
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.settings import Settings
from wa_gateway.store import Store

DAY = 86400
NUMBERED_EVENTS = (
    "select e.payload ->> 'n' from whatsapp_events e"
    " where e.whatsapp_session_id = (select id from whatsapp_sessions where session_id = %s)"
)


@pytest.fixture()
def clean(database: str) -> None:
    """Each test starts with no session old enough to purge."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_sessions set qr_updated_at = now(), disconnected_at = now(),"
            " updated_at = now()"
        )


def make_session(store: Store, database: str, status: str, **aged: Any) -> tuple[str, str]:
    user = devdb.create_user(database, f"purge-{uuid.uuid4().hex[:10]}@example.com", "pw")
    name = session_name_for(user.id)
    begin(store, user.id, name)
    if status == "pairing":
        store.apply_host_state(SessionUpdate(name, "pairing", qr_code="2@q", qr_image="i"))
    elif status in ("connected", "disconnected"):
        store.apply_host_state(SessionUpdate(name, "connected"))
    if status == "disconnected":
        store.apply_host_state(SessionUpdate(name, "disconnected", reason="logged_out"))
    with psycopg.connect(database, autocommit=True) as conn:
        for column, age_s in aged.items():
            conn.execute(
                f"update whatsapp_sessions set {column} = now() - make_interval(secs => %s)"
                " where session_id = %s",
                (age_s, name),
            )
    return user.id, name


def exists(database: str, name: str) -> dict[str, Any] | None:
    with psycopg.connect(database) as conn:
        cursor = conn.execute("select * from whatsapp_sessions where session_id = %s", (name,))
        assert cursor.description is not None
        row = cursor.fetchone()
        return (
            None
            if row is None
            else dict(zip([c.name for c in cursor.description], row, strict=True))
        )


def purger(store: Store, **kwargs: Any) -> Purger:
    settings: dict[str, Any] = {
        "qr_ttl_s": DAY,
        "stale_after_s": 7 * DAY,
        "hosts": HostDirectory(Settings(), None),  # no host: nothing to close
        "keyring": None,
    }
    settings.update(kwargs)
    return Purger(store=store, **settings)


@pytest.mark.usefixtures("clean")
def test_old_qr_codes_are_cleared_and_stale_sessions_deleted(store: Store, database: str) -> None:
    _, old_qr = make_session(store, database, "pairing", qr_updated_at=DAY + 60)
    _, fresh_qr = make_session(store, database, "pairing")
    stale_user, stale = make_session(store, database, "disconnected", disconnected_at=8 * DAY)
    _, recent = make_session(store, database, "disconnected", disconnected_at=6 * DAY)
    _, connected = make_session(store, database, "connected", updated_at=30 * DAY)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status) select user_id, id, 'inbound', '5511999999999', 'kept', 'received'"
            " from whatsapp_sessions where session_id = %s",
            (stale,),
        )

    report = purger(store).run()

    assert (report.qr_cleared, report.sessions_deleted, report.complete) == (1, 1, True)
    cleared = exists(database, old_qr)
    assert cleared is not None and cleared["qr_code"] is None and cleared["qr_image"] is None
    assert (exists(database, fresh_qr) or {}).get("qr_code") == "2@q"
    assert exists(database, stale) is None
    assert exists(database, recent) is not None and exists(database, connected) is not None
    with psycopg.connect(database) as conn:
        kept = conn.execute(
            "select body, whatsapp_session_id from whatsapp_messages where user_id = %s",
            (stale_user,),
        ).fetchall()
    assert kept == [("kept", None)]  # the user's history outlives the session row


@pytest.mark.usefixtures("clean")
def test_it_works_in_bounded_batches_and_is_idempotent(store: Store, database: str) -> None:
    names = [
        make_session(store, database, "disconnected", disconnected_at=9 * DAY)[1] for _ in range(5)
    ]
    report = purger(store, batch_size=2).run()
    assert (report.sessions_deleted, report.batches) == (5, 3)
    assert all(exists(database, n) is None for n in names)
    again = purger(store, batch_size=2).run()
    assert (again.sessions_deleted, again.qr_cleared, again.batches) == (0, 0, 1)


@pytest.mark.usefixtures("clean")
def test_rows_in_use_are_skipped_not_waited_for(store: Store, database: str) -> None:
    _, busy = make_session(store, database, "disconnected", disconnected_at=9 * DAY)
    _, idle = make_session(store, database, "disconnected", disconnected_at=9 * DAY)
    with psycopg.connect(database) as conn, conn.transaction():
        conn.execute("select 1 from whatsapp_sessions where session_id = %s for update", (busy,))
        report = purger(store).run()
    assert report.sessions_deleted == 1
    assert exists(database, idle) is None and exists(database, busy) is not None


def test_the_event_log_forgets_events_past_its_retention(store: Store, database: str) -> None:
    _, name = make_session(store, database, "connected")
    for n in range(5):
        found = {"event": "onpresencechanged-like", "n": n}
        assert store.ingest_event(to_record(name, {**found, "session": name})).stored
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_events set received_at = now() - make_interval(days => 2)"
            " where payload ->> 'n' in ('0', '1', '2')"
            " and whatsapp_session_id = (select id from whatsapp_sessions where session_id = %s)",
            (name,),
        )

    def kept() -> list[str]:
        return sorted(str(n) for (n,) in every(database, NUMBERED_EVENTS, (name,)))

    assert purger(store, event_retention_s=0).run().events_deleted == 0  # 0: kept
    assert kept() == ["0", "1", "2", "3", "4"]
    report = purger(store, event_retention_s=DAY).run()
    assert report.events_deleted >= 3 and report.complete
    assert kept() == ["3", "4"]


@pytest.mark.usefixtures("clean")
def test_it_stops_starting_batches_when_time_runs_low(store: Store, database: str) -> None:
    _, name = make_session(store, database, "disconnected", disconnected_at=9 * DAY)
    report = purger(store).run(remaining_s=lambda: 5.0)
    assert report.complete is False and report.batches == 0
    assert exists(database, name) is not None


@pytest.mark.usefixtures("clean")
def test_purged_sessions_are_logged_out_if_connected_and_their_profile_cleared_otherwise(
    store: Store,
    database: str,
    gateway: Gateway,
    simulator: Simulator,
    local_secrets: LocalSecrets,
) -> None:
    names = []
    for label, start in (("purgelinked", True), ("purgeprofile", False)):
        user, _, name = connected_user(gateway, simulator, label)
        assert gateway.call("POST", "disconnect", gateway.token_for(user)).status_code == 200
        # The host kept the login after all (once the logged-out browser has gone): running,
        # or only its profile.
        wait_until(lambda name=name: simulator.state(name)["browsers"], lambda n: n == 0)
        simulator.control("POST", f"{name}/restore", {"start": start})
        names.append(name)
    linked = names[0]
    assert wait_until(lambda: simulator.state(linked).get("status"), lambda s: s == "CONNECTED")
    # The host posts its webhooks without waiting for them (the logout's, the restored
    # login's), and one still being applied holds its session's row, which the purge rightly
    # skips: on a busy machine such a webhook may still be on its way. None may be.
    for name in names:
        wait_until(lambda name=name: simulator.delivered(name), message=f"the webhooks of {name}")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_sessions set disconnected_at = now() - interval '8 days'"
            " where session_id = any(%s)",
            (names,),
        )
    keyring = Keyring.from_setting(local_secrets.encryption_key)
    hosts = HostDirectory(
        Settings(wpp_server_url=simulator.url, wpp_secret_key=local_secrets.wpp_secret_key),
        keyring,
    )
    with simulator.configured(answer_after_error=True):
        rejections = simulator.control("GET", "host").json()["unhandledRejections"]
        report = purger(store, hosts=hosts, keyring=keyring).run()
        assert simulator.control("GET", "host").json()["unhandledRejections"] == rejections
    assert report.sessions_deleted == 2 and report.host_sessions_cleared == 2
    assert report.host_errors == 0
    assert simulator.state(linked)["exists"] is False  # logged out: the phone is unlinked
    for name in names:
        state = simulator.state(name)
        # No profile is left to restore; the token file stays (a stock host never deletes it).
        assert state["savedLogin"] is None and state["stored"] is True


class _FailingForOne(HostClient):
    """A host that fails to clear one session: a stand-in, since the simulator can't fail
    for one session only."""

    def __init__(self, failing: str, others: list[str]):
        super().__init__("http://127.0.0.1:9", "secret")
        self.failing = failing
        self.names = others
        self.cleared: list[str] = []

    def list_sessions(self) -> list[str]:
        return [self.failing, *self.names]

    def generate_token(self, session: str) -> str:
        return "token"

    def check_connection(self, session: str, token: str) -> bool:
        return False

    def clear_session_data(self, session: str) -> None:
        if session == self.failing:
            raise HostError()
        self.cleared.append(session)


class _OneHost(HostDirectory):
    def __init__(self, client: HostClient):
        super().__init__(Settings(wpp_server_url=client.base_url, wpp_secret_key="x"), None)
        self.client = client

    def client_for(self, placement: HostPlacement | None) -> HostClient:
        return self.client


@pytest.mark.usefixtures("clean")
def test_a_host_error_for_one_session_does_not_stop_the_others(store: Store, database: str) -> None:
    names = [
        make_session(store, database, "disconnected", disconnected_at=9 * DAY)[1] for _ in range(3)
    ]
    host = _FailingForOne(names[1], [names[0], names[2]])
    report = purger(store, hosts=_OneHost(host), keyring=Keyring.from_setting("ab" * 32)).run()
    assert report.sessions_deleted == 3
    assert (report.host_sessions_cleared, report.host_errors) == (2, 1)
    assert sorted(host.cleared) == sorted([names[0], names[2]])


@pytest.mark.usefixtures("clean")
def test_stored_host_tokens_move_to_the_active_key(store: Store, database: str) -> None:
    old = Keyring.from_setting("old:" + "11" * 32)
    rotated = Keyring.from_setting("new:" + "22" * 32 + ",old:" + "11" * 32)
    only_new = Keyring.from_setting("new:" + "22" * 32)
    _, name = make_session(store, database, "connected")
    store.apply_host_state(
        SessionUpdate(name, "connected", host_token=old.encrypt("$2b$10$tok", context=name))
    )
    report = purger(store, keyring=rotated).run()
    assert report.tokens_reencrypted >= 1 and report.complete
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select k.host_token from whatsapp_session_secrets k join whatsapp_sessions s"
            " on s.id = k.session_id where s.session_id = %s",
            (name,),
        ).fetchone()
    assert row is not None and row[0].startswith("v1.new.")
    assert only_new.decrypt(row[0], context=name) == "$2b$10$tok"
    again = purger(store, keyring=rotated).run()
    assert again.tokens_reencrypted == 0


@pytest.mark.usefixtures("clean")
def test_with_one_key_no_token_is_looked_at(store: Store, database: str) -> None:
    """A token under a key the keyring no longer has can't be moved: only a rotation (two keys
    or more) makes the purge look through the stored tokens."""
    gone = Keyring.from_setting("gone:" + "33" * 32)
    _, name = make_session(store, database, "connected")
    store.apply_host_state(
        SessionUpdate(name, "connected", host_token=gone.encrypt("$2b$10$tok", context=name))
    )
    one = purger(store, keyring=Keyring.from_setting("new:" + "22" * 32)).run()
    assert (one.tokens_reencrypted, one.tokens_unreadable) == (0, 0)
    two = purger(store, keyring=Keyring.from_setting("new:" + "22" * 32 + ",old:" + "11" * 32))
    assert two.run().tokens_unreadable >= 1


class _FirstPassFails(Store):
    """A store whose first pass cannot finish, with one host in its pool."""

    def __init__(self, store: Store, host: HostRecord) -> None:
        super().__init__(store.transport)
        self.host = host
        self.marked: list[tuple[str, bool]] = []

    def purge_first_pass(self, limits: PurgeLimits) -> PurgePass:
        raise StoreUnavailable()

    def hosts(self) -> list[HostRecord]:
        return [self.host]

    def mark_host(self, host_id: str, *, ok: bool, error: str | None, mark_down: bool) -> int:
        self.marked.append((host_id, mark_down))
        return 0


def test_hosts_are_checked_even_when_the_first_pass_fails(store: Store) -> None:
    dead = HostClient(f"http://127.0.0.1:{free_port()}", "x", connect_timeout_s=0.2)
    host = HostRecord(str(uuid.uuid4()), "host-a", dead.base_url, "enc", 5, "active")
    failing = _FirstPassFails(store, host)
    with pytest.raises(StoreUnavailable):
        purger(failing, hosts=_OneHost(dead), health_pause_s=0).run()
    assert failing.marked == [(host.id, True)]


def test_an_operator_adds_changes_and_removes_a_pool_host(store: Store) -> None:
    name = f"pool-{uuid.uuid4().hex[:8]}"
    # Added down, so no session of another test is placed on it meanwhile.
    added = store.put_host(
        name, url="http://pool.invalid", secret_key="v1.k.x", capacity=2, state="down"
    )
    try:
        assert added == HostEntry(added.id, name, "http://pool.invalid", 2, "down")
        changed = store.put_host(name, capacity=7)
        assert changed == added._replace(capacity=7)
        assert any(h.name == name and h.capacity == 7 for h in store.hosts())
    finally:
        assert store.remove_host(name)
    assert all(h.name != name for h in store.hosts())
