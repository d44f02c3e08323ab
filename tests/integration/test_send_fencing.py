"""The outbox's fence, on real PostgreSQL: each take of a row (a send, a retry, a scheduler's
claim) is one more attempt, and only the attempt that holds the row may send it and say how
its send went. A send an attempt made after losing the row is kept all the same: it is a fact,
as a late ack is."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.store_helpers import connected
from wa_gateway.records import MessageRecord
from wa_gateway.send_records import OutboundRequest
from wa_gateway.store import PostgresTransport, Store


@pytest.fixture(scope="module")
def store(transport: PostgresTransport) -> Store:
    return Store(transport, send_lease_s=30)


def a_send(store: Store, database: str) -> OutboundRequest:
    """A send with a key, from a new user's connected session."""
    user, name = connected(store, database)
    key = uuid.uuid4().hex
    return OutboundRequest(user.id, name, "5511987654321", "fenced", None, key, "hash-fenced")


def taken(store: Store, request: OutboundRequest) -> MessageRecord:
    plan = store.begin_send(request)
    assert plan.outcome == "send" and plan.message is not None, plan
    return plan.message


def test_an_attempt_that_lost_the_row_can_neither_hold_it_nor_record_a_failure(
    store: Store, transport: PostgresTransport, database: str
) -> None:
    request = a_send(store, database)
    lapsed = taken(Store(transport, send_lease_s=0), request)  # its lease ran out at once
    current = taken(store, request)  # a retry with the key takes it over
    assert (lapsed.id, lapsed.attempts, current.attempts) == (current.id, 1, 2)

    held, now = store.hold_send(lapsed, 30)
    assert not held and now.attempts == 2
    stale = store.finish_send(lapsed, "retryable", error_code="host_error")
    assert (stale.status, stale.send_state, stale.error_code) == ("queued", "pending", None)

    held, _ = store.hold_send(current, 30)
    assert held
    done = store.finish_send(current, "sent", wpp_message_id=f"true_{uuid.uuid4().hex}")
    assert done.status == "sent" and done.wpp_message_id
    # Once it went out, no attempt holds it any more.
    assert store.hold_send(current, 30)[0] is False


def test_a_send_made_by_an_attempt_that_lost_the_row_is_kept_as_a_fact(
    store: Store, transport: PostgresTransport, database: str
) -> None:
    request = a_send(store, database)
    lapsed = taken(Store(transport, send_lease_s=0), request)
    current = taken(store, request)

    wpp_id = f"true_{uuid.uuid4().hex}"
    kept = store.finish_send(lapsed, "sent", wpp_message_id=wpp_id)
    assert (kept.status, kept.wpp_message_id, kept.send_state) == ("sent", wpp_id, "done")
    # The attempt now holding it learns so before asking the host to send it again.
    held, now = store.hold_send(current, 30)
    assert not held and now.wpp_message_id == wpp_id


def test_a_row_given_back_is_free_to_take_at_once(store: Store, database: str) -> None:
    request = a_send(store, database)
    first = taken(store, request)
    assert store.begin_send(request).outcome == "in_flight"
    held, _ = store.hold_send(first, 0)  # given back
    assert held
    again = taken(store, request)
    assert again.attempts == first.attempts + 1
