"""A scheduled pass meets a failure it did not expect for one item: a session placed on a pool
host whose secret key was encrypted with a key since retired (the keyring raises
DecryptionError). The pass counts it for that item and goes on with the others; reconcile
still gives back the lease of every session it did not put right."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user
from tests.e2e.test_scheduled_waits import a_pass, due_now, row
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.reconcile import Reconciler
from wa_gateway.settings import Settings
from wa_gateway.store import PostgresTransport, Store

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

RETIRED_KEY_SECRET = "v1.retired." + "A" * 40  # a key id the keyring no longer holds


@contextmanager
def on_a_retired_key_host(database: str, name: str) -> Iterator[None]:
    """Session ``name`` placed on a pool host whose secret only a retired key could read
    (marked down; and only once the test's users are linked: with a pool, starts go to its
    active hosts); the host is removed afterwards, which takes it off the session."""
    with psycopg.connect(database, autocommit=True) as conn:
        found = conn.execute(
            "insert into wpp_hosts (name, url, secret_key, capacity, state)"
            " values (%s, 'http://127.0.0.1:9', %s, 1, 'down') returning id",
            (f"retired-{uuid.uuid4().hex[:8]}", RETIRED_KEY_SECRET),
        ).fetchone()
        assert found is not None
        try:
            conn.execute(
                "update whatsapp_sessions set host_id = %s where session_id = %s",
                (found[0], name),
            )
            yield
        finally:
            conn.execute("delete from wpp_hosts where id = %s", (found[0],))


def test_a_scheduler_pass_counts_an_unreadable_host_secret_and_sends_the_rest(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, _, unreachable = connected_user(gateway, simulator, "retiredkey")
    _, _, fine = connected_user(gateway, simulator, "goodkey")
    stuck = due_now(database, unreachable, "on the retired key's host")
    due_now(database, fine, "on the default host")

    with on_a_retired_key_host(database, unreachable):
        report = a_pass(gateway).run()

    assert report.errors.get("internal_error") == 1 and report.sent >= 1
    assert [m["body"] for m in simulator.outbox(fine)] == ["on the default host"]
    # Not lost: still under the pass's lease, for a later pass once the secret is readable.
    held = row(database, stuck)
    assert (held["status"], held["send_state"]) == ("queued", "pending")


def test_a_reconcile_pass_counts_an_unreadable_host_secret_and_gives_back_its_lease(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, _, unreachable = connected_user(gateway, simulator, "retiredrec")
    settings = Settings.load(gateway.env)
    store = Store(PostgresTransport(gateway.dsn))
    reconciler = Reconciler(store, HostDirectory(settings, settings.keyring), settings.keyring)

    with on_a_retired_key_host(database, unreachable):
        report = reconciler.run()

    # Counted for that session (each time a batch of the pass took it, once given back), and
    # the others were put right.
    assert report.errors.get("internal_error", 0) >= 1
    assert report.checked > report.errors["internal_error"]
    with psycopg.connect(database) as conn:
        lease = conn.execute(
            "select m.lease_until from whatsapp_reconcile_marks m join whatsapp_sessions s"
            " on s.id = m.whatsapp_session_id where s.session_id = %s",
            (unreachable,),
        ).fetchone()
    assert lease == (None,)
