"""The SQL of API keys and event delivery, on a real PostgreSQL: a key's check and the call it
carries run as one transaction (as the key's owner, under RLS, for a user's read); the rate and
the last use; deliveries numbered in commit order; endpoints leased, retried with backoff,
failed after their retries, replayed in order."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.integration.store_helpers import begin, new_user
from tests.rows import add_session, every
from wa_gateway.delivery.http import Outcome
from wa_gateway.delivery.store import DeliveryCalls, RetryPolicy
from wa_gateway.events.service import to_record
from wa_gateway.keys import api_key
from wa_gateway.records import EndpointToCreate, KeyToCreate, SessionUpdate
from wa_gateway.sessions.service import session_name_for
from wa_gateway.store import PostgresTransport, Store
from wa_gateway.store.sql_records import sql_record


@pytest.fixture(scope="module")
def dsn(make_database: Any) -> str:
    """A database of this module's own: it adds a function only its tests call."""
    made: str = make_database()
    with psycopg.connect(made, autocommit=True) as conn:
        conn.execute(
            "create function public.gateway_test_whoami(p_record jsonb) returns jsonb"
            " language sql as $$ select jsonb_build_object('role', current_user,"
            " 'uid', auth.uid(), 'echo', p_record) $$"
        )
        conn.execute("grant execute on function public.gateway_test_whoami to authenticated")
    return made


@pytest.fixture()
def transport(dsn: str) -> Iterator[PostgresTransport]:
    made = PostgresTransport(dsn)
    yield made
    made.close()


def make_key(dsn: str, user_id: str, scopes: list[str]) -> str:
    key = api_key.new_key()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_api_keys (user_id, name, prefix, key_hash, scopes)"
            " values (%s, 'k', %s, %s, %s)",
            (user_id, api_key.prefix(key), api_key.digest(key), scopes),
        )
    return key


def keyed(transport: PostgresTransport, key: str, **call: Any) -> Any:
    return transport.rpc(
        "gateway_keyed_call", {"p_call": {"key_hash": api_key.digest(key), **call}}
    )


def test_a_keyed_read_runs_as_the_owner_and_a_service_call_as_service_role(
    dsn: str, transport: PostgresTransport
) -> None:
    owner = new_user(dsn, "keyed")
    key = make_key(dsn, owner.id, ["read"])
    params = {"p_record": {"n": 1}}
    as_user = keyed(transport, key, user_id=owner.id, scope="read", count=True,
                    function="gateway_test_whoami", params=params, as_user=True)  # fmt: skip
    assert as_user == {"result": {"role": "authenticated", "uid": owner.id, "echo": {"n": 1}}}
    service = keyed(transport, key, user_id=owner.id, function="gateway_test_whoami",
                    params=params)  # fmt: skip
    assert service["result"]["role"] == "service_role" and service["result"]["uid"] is None


def test_a_key_is_refused_when_unknown_deleted_another_owners_or_out_of_scope(
    dsn: str, transport: PostgresTransport
) -> None:
    owner, other = new_user(dsn, "owner"), new_user(dsn, "other")
    key = make_key(dsn, owner.id, ["send"])
    call = {"function": "gateway_test_whoami", "params": {"p_record": {}}}
    assert keyed(transport, key, user_id=other.id, **call) == {"refused": "invalid_key"}
    assert keyed(transport, key, scope="read", **call) == {"refused": "insufficient_scope"}
    assert keyed(transport, api_key.new_key(), **call) == {"refused": "invalid_key"}
    assert keyed(transport, key, scope="send") == {"user_id": owner.id}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from whatsapp_api_keys where user_id = %s", (owner.id,))
    assert keyed(transport, key, user_id=owner.id, **call) == {"refused": "invalid_key"}


def test_only_gateway_functions_with_their_own_parameters_may_be_called(
    dsn: str, transport: PostgresTransport
) -> None:
    owner = new_user(dsn, "fn")
    key = make_key(dsn, owner.id, ["read"])
    for function, params in (
        ("pg_sleep", {}),
        ("gateway_keyed_call", {"p_call": {}}),
        ("gateway_test_whoami", {"p_record": {}, "p_extra": 1}),
    ):
        with pytest.raises(psycopg.errors.UndefinedFunction):
            keyed(transport, key, user_id=owner.id, function=function, params=params)


def test_the_rate_per_key_and_the_last_use_to_the_minute(
    dsn: str, transport: PostgresTransport
) -> None:
    owner = new_user(dsn, "rate")
    key = make_key(dsn, owner.id, ["read"])
    rate = {"count": True, "burst": 3, "rate_per_s": 0.5}
    answers = [keyed(transport, key, **rate) for _ in range(4)]
    assert answers[:3] == [{"user_id": owner.id}] * 3
    assert answers[3] == {"refused": "rate_limited", "retry_after": 2}
    other = make_key(dsn, owner.id, ["read"])  # its own bucket
    assert keyed(transport, other, **rate) == {"user_id": owner.id}
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = conn.execute(
            "select last_used_at, xmin::text from whatsapp_api_keys where key_hash = %s",
            (api_key.digest(other),),
        ).fetchone()
        keyed(transport, other, **rate)
        again = conn.execute(
            "select last_used_at, xmin::text from whatsapp_api_keys where key_hash = %s",
            (api_key.digest(other),),
        ).fetchone()
    assert first is not None and first[0] is not None and again == first  # not rewritten


# --- delivery ---------------------------------------------------------------------------------


def endpoint_for(dsn: str, user_id: str, events: list[str]) -> str:
    endpoint = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_endpoints (id, user_id, url, events, secret)"
            " values (%s, %s, 'https://hooks.example.com/in', %s, 'v1.k.x')",
            (endpoint, user_id, events),
        )
    return endpoint


def session_for(dsn: str, user_id: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return add_session(conn, user_id)


INSERT_INBOUND = (
    "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
    " status) values (%s, %s, 'inbound', '5511999999999', %s, 'received')"
)


def bodies_in_seq_order(dsn: str, endpoint: str) -> list[str]:
    rows = every(
        dsn,
        "select n.body -> 'data' ->> 'body' from whatsapp_deliveries d"
        " join whatsapp_notifications n on n.id = d.notification_id"
        " where d.endpoint_id = %s order by d.seq",
        (endpoint,),
    )
    return [r[0] for r in rows]


def test_deliveries_are_numbered_in_commit_order_and_only_for_wanted_events(dsn: str) -> None:
    user = new_user(dsn, "order")
    session = session_for(dsn, user.id)
    wanted = endpoint_for(dsn, user.id, ["message.received"])
    unwanted = endpoint_for(dsn, user.id, ["session.status"])
    first = psycopg.connect(dsn)
    first.execute(INSERT_INBOUND, (user.id, session, "started first, committed second"))
    done = threading.Event()

    def second() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(INSERT_INBOUND, (user.id, session, "committed first"))
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert not done.is_set()  # it waits for the endpoint's row: numbers follow commits
    first.commit()
    first.close()
    thread.join(5)
    # The first to take the endpoint's lock commits first: that is the order delivered.
    assert bodies_in_seq_order(dsn, wanted) == ["started first, committed second",
                                                "committed first"]  # fmt: skip
    assert bodies_in_seq_order(dsn, unwanted) == []


def test_a_message_first_reported_undecrypted_is_announced_once_with_its_text(
    dsn: str, transport: PostgresTransport
) -> None:
    """The host reports a new message first as ``ciphertext`` (no text), then again, with the
    same id, decrypted: the endpoint hears of it once, when its text is stored."""
    store = Store(transport)
    user = new_user(dsn, "decrypted")
    name = session_name_for(user.id)
    begin(store, user.id, name)
    store.apply_host_state(SessionUpdate(name, "connected"))
    endpoint = endpoint_for(dsn, user.id, ["message.received"])
    wpp_id = f"false_5511987650001@c.us_3A{uuid.uuid4().hex[:16].upper()}"
    event = {"event": "onmessage", "session": name, "id": wpp_id, "from": "5511987650001@c.us",
             "to": "5511912345678@c.us", "fromMe": False, "t": 1_800_000_000}  # fmt: skip

    store.ingest_event(to_record(name, {**event, "type": "ciphertext"}))
    assert bodies_in_seq_order(dsn, endpoint) == []
    store.ingest_event(to_record(name, {**event, "type": "chat", "body": "olá"}))
    store.ingest_event(to_record(name, {**event, "type": "chat", "body": "olá", "t": 1}))
    assert bodies_in_seq_order(dsn, endpoint) == ["olá"]


def test_a_claimed_endpoint_is_leased_retried_failed_and_replayed_in_order(
    dsn: str, transport: PostgresTransport
) -> None:
    user = new_user(dsn, "lease")
    session = session_for(dsn, user.id)
    endpoint = endpoint_for(dsn, user.id, ["message.received"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        for body in ("a", "b", "c"):
            conn.execute(INSERT_INBOUND, (user.id, session, body))
    calls = DeliveryCalls(transport)
    retry = RetryPolicy(base_s=1, max_s=1, for_s=2)
    [claim] = [c for c in calls.claim(limit=50, batch=2, lease_s=30) if c.endpoint_id == endpoint]
    assert [d.body["data"]["body"] for d in claim.deliveries] == ["a", "b"]
    assert [c.endpoint_id for c in calls.claim(limit=50, batch=2, lease_s=30)] == []  # leased

    a, b = claim.deliveries
    results = [(a.id, Outcome(True, 200)), (b.id, Outcome(False, 503, "http_status"))]
    recorded = calls.record(
        claim, claim.lease_token, results, retry=retry, more=True, batch=2, lease_s=30
    )
    assert recorded.deliveries == () and not recorded.lost  # a failure ends the batch
    assert calls.record(claim, claim.lease_token, [], retry=retry, more=False, batch=2,
                        lease_s=30).lost  # fmt: skip
    assert [
        c for c in calls.claim(limit=50, batch=2, lease_s=30) if c.endpoint_id == endpoint
    ] == []
    time.sleep(2.1)  # b's retries run out; c waited behind it
    [again] = [c for c in calls.claim(limit=50, batch=5, lease_s=30) if c.endpoint_id == endpoint]
    assert [d.body["data"]["body"] for d in again.deliveries] == ["b", "c"]
    calls.record(again, again.lease_token, [(again.deliveries[0].id, Outcome(False, None,
                 "timeout"))], retry=retry, more=True, batch=5, lease_s=30)  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        states = conn.execute(
            "select status, attempts, last_status, last_error from whatsapp_deliveries"
            " where endpoint_id = %s order by seq",
            (endpoint,),
        ).fetchall()
        assert states == [("delivered", 1, 200, None), ("failed", 2, None, "timeout"),
                          ("failed", 0, None, "expired")]  # fmt: skip
        replayed = transport.rpc(
            "gateway_replay_deliveries",
            {"p_record": {"user_id": user.id, "id": endpoint, "since": "2000-01-01T00:00:00Z"}},
        )
        assert replayed == {"replayed": 2}
        stranger = new_user(dsn, "stranger")
        assert transport.rpc(
            "gateway_replay_deliveries",
            {"p_record": {"user_id": stranger.id, "id": endpoint, "since": "2000-01-01T00:00Z"}},
        ) is None  # fmt: skip
    [last] = [c for c in calls.claim(limit=50, batch=5, lease_s=30) if c.endpoint_id == endpoint]
    assert [d.body["data"]["body"] for d in last.deliveries] == ["b", "c"]
    assert json.loads(json.dumps(last.deliveries[0].body))["type"] == "message.received"


def new_key_record(user_id: str) -> dict[str, Any]:
    key = api_key.new_key()
    record = KeyToCreate(user_id, "k", api_key.prefix(key), api_key.digest(key), ("read",), 2)
    return {"p_key": sql_record(record)}


def new_endpoint_record(user_id: str) -> dict[str, Any]:
    record = EndpointToCreate(str(uuid.uuid4()), user_id, "https://example.com/hook",
                              ("message.received",), None, "v1.k.x", 2)  # fmt: skip
    return {"p_endpoint": sql_record(record)}


@pytest.mark.parametrize(
    ("function", "record"),
    [("gateway_create_api_key", new_key_record), ("gateway_create_endpoint", new_endpoint_record)],
)
def test_a_user_creates_keys_and_endpoints_up_to_their_own_limit(
    dsn: str, transport: PostgresTransport, function: str, record: Any
) -> None:
    owner, other = new_user(dsn, "limit"), new_user(dsn, "limit")

    def create(user_id: str) -> str:
        answer = transport.rpc(function, record(user_id))
        return str(answer["outcome"])

    assert [create(owner.id) for _ in range(3)] == ["ok", "ok", "limit"]
    assert create(other.id) == "ok"  # one user's limit is theirs alone
