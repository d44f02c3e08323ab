"""A "does not exist" the product cannot know to be true: wppconnect-server 2.10.4's status
middleware answers it when wa-js's lookup failed on WhatsApp's side (wa-js answers a failed
lookup as "no account", and keeps that miss for 15 s, so the host's own number check agrees),
and then sends all the same. The message stays unknown until an ack shows it went out, or its
lease ends without one; it is never sent twice, and an ack lifts it even after the lease."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.conftest import FAST_LEASE_S
from tests.e2e.flows import assert_error, connected_user, rows_of
from tests.e2e.test_messaging_real_host import lease_over, send
from tests.e2e.test_scheduled_waits import a_pass, due_now, row
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def test_a_scheduled_message_whose_lookup_failed_goes_once_and_shows_as_sent(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, _, name = connected_user(gateway, simulator, "lookupfailed")
    message_id = due_now(database, name, "to a number whose lookup fails")
    with simulator.configured(number_check_fail_next=1):
        report = a_pass(gateway).run()
    assert report.errors.get("host_error") == 1
    [sent] = wait_until(lambda: simulator.outbox(name))
    done = wait_until(
        lambda: row(database, message_id), lambda r: r["status"] in ("sent", "delivered", "read")
    )
    assert done["wpp_message_id"] == sent["id"]
    assert a_pass(gateway).run().sent == 0
    assert [m["body"] for m in simulator.outbox(name)] == ["to a number whose lookup fails"]


def test_an_ack_after_the_lease_lifts_a_send_failed_as_unknown_recipient(
    fast_gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(fast_gateway, simulator, "lateack")
    key = "late-lift"
    with simulator.configured(number_check_fail_next=1, auto_ack=False):
        assert_error(send(fast_gateway, token, "5511987650022", "slow ack", key), 502, "host_error")
        [row] = rows_of(database, user.id, "outbound")
        wait_until(lambda: lease_over(database, row["id"]), within_s=FAST_LEASE_S + 2)
        decided = send(fast_gateway, token, "5511987650022", "slow ack", key)
        assert_error(decided, 422, "unknown_recipient")
        [sent] = simulator.outbox(name)
        simulator.control("POST", f"{name}/ack", {"id": sent["id"], "ack": 2})
        wait_until(
            lambda: rows_of(database, user.id, "outbound")[0]["status"],
            lambda s: s == "delivered",
        )
    replay = send(fast_gateway, token, "5511987650022", "slow ack", key)
    assert replay.status_code == 200
    assert replay.json()["message"]["wpp_message_id"] == sent["id"]
    assert len(simulator.outbox(name)) == 1
