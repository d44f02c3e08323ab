"""The outbox, the governor, inbound messages and acks, on real PostgreSQL."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from local import devdb
from tests.integration.store_helpers import connected
from tests.rows import one
from wa_gateway.event_records import Ack, EventRecord, InboundMessage
from wa_gateway.records import SessionUpdate
from wa_gateway.send_records import OutboundRequest
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import PostgresTransport, Store
from wa_gateway.store.sql_records import sql_record

TO = "5511987654321"


@pytest.fixture(scope="module")
def store(transport: PostgresTransport) -> Store:
    return Store(transport, send_burst=3, send_rate_per_s=0.5, send_lease_s=30)


def sent(store: Store, user: devdb.DevUser, name: str) -> tuple[str, str]:
    """A send the host took: the message's id, and the id the host gave it."""
    plan = store.begin_send(outbound(user, name))
    assert plan.message is not None
    wpp_id = f"true_{uuid.uuid4().hex}"
    store.finish_send(plan.message, "sent", wpp_message_id=wpp_id)
    return plan.message.id, wpp_id


def applied(store: Store, fact: InboundMessage | Ack) -> bool:
    """What the webhook does with an incoming message or an ack: True if it changed anything."""
    kind = "ack" if isinstance(fact, Ack) else "inbound"
    event = EventRecord(fact.session_name, None, None, kind, uuid.uuid4().hex, {}, kind, fact)
    return store.ingest_event(event).changed


def outbound(
    user: devdb.DevUser, name: str, body: str = "oi", key: str | None = None
) -> OutboundRequest:
    return OutboundRequest(user.id, name, TO, body, None, key, f"hash-{body}")


def test_a_send_writes_a_queued_row_with_a_lease_before_the_host(
    store: Store, database: str
) -> None:
    user, name = connected(store, database)
    plan = store.begin_send(outbound(user, name))
    assert plan.outcome == "send" and plan.message is not None
    assert plan.message.status == "queued" and plan.message.send_state == "pending"
    done = store.finish_send(plan.message, "sent", wpp_message_id="true_x_1")
    assert done.status == "sent" and done.wpp_message_id == "true_x_1"


def test_a_key_replays_conflicts_and_waits_for_its_lease(store: Store, database: str) -> None:
    user, name = connected(store, database)
    first = store.begin_send(outbound(user, name, key="k1"))
    assert first.outcome == "send" and first.message is not None
    assert store.begin_send(outbound(user, name, key="k1")).outcome == "in_flight"
    assert store.begin_send(outbound(user, name, body="other", key="k1")).outcome == "conflict"
    store.finish_send(first.message, "retryable", error_code="host_error")
    again = store.begin_send(outbound(user, name, key="k1"))
    assert again.outcome == "send" and again.message is not None
    assert again.message.id == first.message.id
    assert again.message.attempts == first.message.attempts + 1
    store.finish_send(again.message, "sent", wpp_message_id="true_x_2")
    replay = store.begin_send(outbound(user, name, key="k1"))
    assert replay.outcome == "replay" and replay.message is not None
    assert replay.message.wpp_message_id == "true_x_2"


def test_the_governor_empties_and_tells_when_to_retry(store: Store, database: str) -> None:
    user, name = connected(store, database)
    outcomes = [store.begin_send(outbound(user, name, body=f"m{i}")) for i in range(4)]
    assert [p.outcome for p in outcomes] == ["send", "send", "send", "rate_limited"]
    assert outcomes[3].retry_after_s == 2  # one token at 0.5 per second


def test_not_connected_writes_nothing(store: Store, database: str) -> None:
    user = devdb.create_user(database, f"msg-{uuid.uuid4().hex[:10]}@example.com", "pw")
    plan = store.begin_send(outbound(user, session_name_for(user.id)))
    assert plan.outcome == "not_connected" and plan.message is None


def test_inbound_messages_are_stored_once(store: Store, database: str) -> None:
    _, name = connected(store, database)
    message = InboundMessage(
        name, f"false_{uuid.uuid4().hex}", TO, "oi", "Ana", "chat", False, "5511912345678"
    )
    assert applied(store, message) is True
    assert applied(store, message) is False


ACK_ORDERS = list(itertools.permutations(["sent", "delivered", "read"]))


@pytest.mark.parametrize("order", ACK_ORDERS, ids=["-".join(o) for o in ACK_ORDERS])
def test_acks_in_any_order_end_at_read(store: Store, database: str, order: tuple[str, ...]) -> None:
    user, name = connected(store, database)
    message_id, wpp_id = sent(store, user, name)
    for status in (*order, *order):
        applied(store, Ack(name, wpp_id, status, TO, "oi"))
    assert applied(store, Ack(name, wpp_id, "failed", TO, "oi")) is False
    assert status_of(database, message_id) == "read"


def test_acks_update_the_message_in_place_with_no_new_index_entries(
    store: Store, database: str
) -> None:
    """An ack changes no column an index names (the scheduler's indexes read the row's
    awaits_scheduler, which an ack leaves false, not its status), and the table leaves room on
    each page: each ack is a HOT update, not an entry in every one of the table's indexes."""
    user, name = connected(store, database)
    plan = store.begin_send(outbound(user, name, body="in place"))
    assert plan.message is not None
    wpp_id = f"true_{uuid.uuid4().hex}"
    store.finish_send(plan.message, "sent", wpp_message_id=wpp_id)
    with psycopg.connect(devdb.as_role(database, devdb.ADMIN_ROLE)) as conn:  # one transaction
        for status in ("delivered", "read"):
            event = EventRecord(name, None, None, "onack", f"ack-{status}", {}, "ack",
                                Ack(name, wpp_id, status, TO, "in place"))  # fmt: skip
            conn.execute("select public.gateway_ingest_event(%s)", (json.dumps(sql_record(event)),))
        updated, hot = conn.execute(
            "select pg_stat_get_xact_tuples_updated(r), pg_stat_get_xact_tuples_hot_updated(r)"
            " from cast('public.whatsapp_messages' as regclass) r"
        ).fetchone() or (None, None)
        conn.commit()
    assert status_of(database, plan.message.id) == "read"
    assert (updated, hot) == (2, 2)


def test_failed_only_before_delivery(store: Store, database: str) -> None:
    user, name = connected(store, database)
    message_id, wpp_id = sent(store, user, name)
    assert applied(store, Ack(name, wpp_id, "failed", TO, "oi")) is True
    assert applied(store, Ack(name, wpp_id, "read", TO, "oi")) is False
    assert status_of(database, message_id) == "failed"


def test_a_late_ack_completes_a_send_that_timed_out(store: Store, database: str) -> None:
    user, name = connected(store, database)
    plan = store.begin_send(outbound(user, name, body="late", key="late"))
    assert plan.message is not None
    store.finish_send(plan.message, "unknown", error_code="host_timeout")
    wpp_id = f"true_{uuid.uuid4().hex}"
    assert applied(store, Ack(name, wpp_id, "delivered", TO, "late")) is True
    replay = store.begin_send(outbound(user, name, body="late", key="late"))
    assert replay.outcome == "replay" and replay.message is not None
    assert (replay.message.wpp_message_id, replay.message.status) == (wpp_id, "delivered")


def status_of(database: str, message_id: str) -> str:
    return str(
        one(database, "select status from whatsapp_messages where id = %s", (message_id,))[0]
    )


def test_concurrent_sends_with_one_key_decide_one_send(store: Store, database: str) -> None:
    """The guarantee behind idempotent sends, at the database: many transactions racing with
    one key, on their own connections, let exactly one of them send."""
    from concurrent.futures import ThreadPoolExecutor

    user, name = connected(store, database)
    racing = Store(PostgresTransport(database, max_idle=16), send_burst=100)
    request = outbound(user, name, body="once", key="race")
    with ThreadPoolExecutor(max_workers=12) as pool:
        plans = list(pool.map(lambda _: racing.begin_send(request), range(12)))
    outcomes = sorted(p.outcome for p in plans)
    assert outcomes.count("send") == 1 and set(outcomes) <= {"send", "in_flight"}
    assert len({p.message.id for p in plans if p.message}) == 1


def _activity(database: str, name: str) -> tuple[str, object]:
    """The session row's version (xmin) and last_activity."""
    version, at = one(
        database,
        "select xmin::text, last_activity from whatsapp_sessions where session_id = %s",
        (name,),
    )
    return version, at


def test_messages_and_acks_move_last_activity_in_minute_steps(store: Store, database: str) -> None:
    user, name = connected(store, database)
    transport = store.transport
    version, since = _activity(database, name)

    def inbound(at: datetime) -> None:
        message = InboundMessage(
            name, f"false_{uuid.uuid4().hex}", TO, "oi", None, "chat", False, None
        )
        stored = transport.rpc(
            "gateway_record_inbound",
            {"p_message": sql_record(message), "p_now": at.isoformat()},
        )
        assert stored["stored"] is True

    assert isinstance(since, datetime)
    inbound(since + timedelta(seconds=30))  # stored, and the session row left alone
    assert _activity(database, name) == (version, since)
    _, wpp_id = sent(store, user, name)
    version, since = _activity(database, name)
    assert isinstance(since, datetime)
    changed = transport.rpc(
        "gateway_apply_ack",
        {
            "p_ack": sql_record(Ack(name, wpp_id, "delivered", TO, "oi")),
            "p_now": (since + timedelta(seconds=59)).isoformat(),
        },
    )
    assert changed == {"changed": True, "matched": False}
    assert _activity(database, name) == (version, since)
    later = since + timedelta(minutes=2)
    inbound(later)
    assert _activity(database, name)[1] == later


@pytest.mark.parametrize(
    ("kind", "durable"),
    [
        ("inbound", False),  # the host keeps it: reconcile reads it back
        ("matched ack", True),  # the only record that a timed-out send went out
        ("ack", False),
        ("session", False),
    ],
)
def test_only_what_exists_nowhere_else_waits_for_the_disk(
    store: Store, database: str, kind: str, durable: bool
) -> None:
    """Session states and acks are put right by the next event or a status refresh, and an
    incoming message by reconcile (tests/faults/test_reconcile.py: a pass after every webhook
    was lost stores each message once), so their commit need not wait for the WAL flush; an
    ack completing a send whose answer never came, the only record that it went out, commits
    as the database is configured to."""
    user, name = connected(store, database)
    args: SessionUpdate | InboundMessage | Ack = SessionUpdate(name, "connected")
    if kind == "inbound":
        args = InboundMessage(
            name, f"false_{uuid.uuid4().hex}", TO, "oi", None, "chat", False, None
        )
    elif kind.endswith("ack"):
        body = f"sent {uuid.uuid4().hex}"
        if kind == "matched ack":
            plan = store.begin_send(outbound(user, name, body=body))
            assert plan.message is not None
            store.finish_send(plan.message, "unknown", error_code="host_timeout")
        args = Ack(name, f"true_{uuid.uuid4().hex}", "delivered", TO, body)
    event = EventRecord(name, None, None, kind, uuid.uuid4().hex, {}, kind.split()[-1], args)
    with psycopg.connect(database) as conn:  # one transaction, rolled back
        default = conn.execute("show synchronous_commit").fetchone()
        conn.execute("set local role service_role")
        conn.execute(
            "select public.gateway_ingest_event(%s::jsonb)", (json.dumps(sql_record(event)),)
        )
        setting = conn.execute("show synchronous_commit").fetchone()
        conn.rollback()
    assert setting == (default if durable else ("off",))


# --- canonical ids and contacts' LIDs ---------------------------------------------------------

LID = "123456789012345"


def contact_key(database: str, name: str, phone: str | None, lid: str | None) -> str | None:
    found: str | None = one(
        database,
        "select gateway_contact_key(s.id, %s, %s) from whatsapp_sessions s where s.session_id = %s",
        (phone, lid, name),
    )[0]
    return found


def test_a_brazilian_mobile_is_one_contact_with_and_without_its_ninth_digit(
    store: Store, database: str
) -> None:
    _, name = connected(store, database)
    key = contact_key(database, name, "553198877665", None)
    assert contact_key(database, name, "5531998877665", None) == key
    assert contact_key(database, name, "5511987654321", None) == contact_key(
        database, name, "551187654321", None
    )
    assert contact_key(database, name, "5531988776650", None) != key  # another mobile
    assert contact_key(database, name, "14155550100", None) == "14155550100"


def test_a_lid_is_the_contact_its_mapped_number_is(store: Store, database: str) -> None:
    _, name = connected(store, database)
    assert contact_key(database, name, None, LID) == f"{LID}@lid"
    store.remember_contact(name, LID, "5531998877665")
    assert contact_key(database, name, None, LID) == contact_key(
        database, name, "553198877665", None
    )


def event_record(name: str, event: str, message: InboundMessage) -> EventRecord:
    return EventRecord(name, None, None, event, uuid.uuid4().hex, {}, "inbound", message)


def inbound_from_lid(name: str, wpp_id: str) -> InboundMessage:
    return InboundMessage(name, wpp_id, None, "oi", "Ana", "chat", False, None, LID)


def test_a_lid_sender_is_asked_about_once_and_its_number_filled_in(
    store: Store, database: str
) -> None:
    user, name = connected(store, database)
    first = store.ingest_event(event_record(name, "onmessage", inbound_from_lid(name, "f_1")))
    assert first.lid_lookup is not None and first.lid_lookup.lid == LID
    second = store.ingest_event(event_record(name, "onmessage", inbound_from_lid(name, "f_2")))
    assert second.stored and second.lid_lookup is None  # asked already, answer pending
    assert store.remember_contact(name, LID, "5511912345001") == 2
    third = store.ingest_event(event_record(name, "onmessage", inbound_from_lid(name, "f_3")))
    assert third.lid_lookup is None
    with psycopg.connect(database) as conn:
        phones = conn.execute(
            "select phone, contact_lid from whatsapp_messages where user_id = %s", (user.id,)
        ).fetchall()
    assert sorted(phones) == [("5511912345001", LID)] * 3


def test_a_lid_the_host_could_not_map_is_asked_again_after_ten_minutes(
    store: Store, database: str
) -> None:
    _, name = connected(store, database)

    def record(wpp_id: str, at: datetime) -> bool:
        message = sql_record(inbound_from_lid(name, wpp_id))
        result = store.transport.rpc(
            "gateway_record_inbound", {"p_message": message, "p_now": at.isoformat()}
        )
        return bool(result["lid_lookup"])

    now = datetime.now().astimezone()
    assert record("r_1", now) is True
    store.remember_contact(name, LID, None)  # the host could not tell
    assert record("r_2", now + timedelta(minutes=5)) is False
    assert record("r_3", now + timedelta(minutes=11)) is True


def test_a_late_ack_naming_the_canonical_id_completes_the_send_and_renames_it(
    store: Store, database: str
) -> None:
    user, name = connected(store, database)
    request = outbound(user, name, body="late", key="ninth")._replace(phone="5531998877665")
    plan = store.begin_send(request)
    assert plan.message is not None
    store.finish_send(plan.message, "unknown", error_code="host_timeout")
    wpp_id = f"true_{uuid.uuid4().hex}"
    assert applied(store, Ack(name, wpp_id, "delivered", "553198877665", "late")) is True
    replay = store.begin_send(request)
    assert replay.outcome == "replay" and replay.message is not None
    assert (replay.message.wpp_message_id, replay.message.phone) == (wpp_id, "553198877665")


def test_a_late_ack_naming_a_mapped_lid_completes_the_send(store: Store, database: str) -> None:
    user, name = connected(store, database)
    store.remember_contact(name, LID, TO)
    plan = store.begin_send(outbound(user, name, body="via lid", key="lid"))
    assert plan.message is not None
    store.finish_send(plan.message, "unknown", error_code="host_timeout")
    wpp_id = f"true_{uuid.uuid4().hex}"
    assert applied(store, Ack(name, wpp_id, "sent", None, "via lid", lid=LID)) is True
    replay = store.begin_send(outbound(user, name, body="via lid", key="lid"))
    assert replay.message is not None and replay.message.contact_lid == LID


def test_a_failed_ack_keeps_why(store: Store, database: str) -> None:
    user, name = connected(store, database)
    message_id, wpp_id = sent(store, user, name)
    failed = Ack(name, wpp_id, "failed", TO, "oi", failure_code="content_too_big")
    assert applied(store, failed) is True
    row = one(
        database, "select status, failure_code from whatsapp_messages where id = %s", (message_id,)
    )
    assert row == ("failed", "content_too_big")


def test_a_sent_message_is_named_by_the_canonical_id_the_host_sent_to(
    store: Store, database: str
) -> None:
    user, name = connected(store, database)
    plan = store.begin_send(outbound(user, name)._replace(phone="5531998877665"))
    assert plan.message is not None
    done = store.finish_send(
        plan.message, "sent", wpp_message_id=f"true_{uuid.uuid4().hex}", phone="553198877665"
    )
    assert done.phone == "553198877665"
