"""Row Level Security and grants, acting directly as each database role, as PostgREST would.

alice owns a session, its secret, a message and an error log; bob owns nothing; anon is
signed out. For every table and every command: who may, and who may not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors

from tests.integration.store_helpers import new_user
from tests.rows import add_delivery, add_host, add_session, inserted, run_as
from wa_gateway.sessions.accounts import session_name_for

USER_TABLES = (
    "whatsapp_sessions",
    "whatsapp_messages",
    "whatsapp_error_logs",
    "whatsapp_events",
    "whatsapp_api_keys",
    "whatsapp_endpoints",
    "whatsapp_notifications",
    "whatsapp_deliveries",
    "whatsapp_chats",
    "whatsapp_reactions",
    "whatsapp_groups",
)
SERVICE_TABLES = (
    "whatsapp_session_secrets",
    "wpp_hosts",
    "whatsapp_event_seqs",
    "whatsapp_api_key_buckets",
    "whatsapp_message_changes",
    "whatsapp_action_keys",
)
ALL_TABLES = (*USER_TABLES, *SERVICE_TABLES)


@dataclass(frozen=True)
class World:
    alice: str
    bob: str
    session_id: str
    session_name: str


@pytest.fixture(scope="module")
def world(database: str) -> Iterator[World]:
    alice = new_user(database, "rls-alice").id
    bob = new_user(database, "rls-bob").id
    name = session_name_for(alice)
    with psycopg.connect(database, autocommit=True) as conn:
        sid = add_session(conn, alice, name)
        conn.execute(
            "insert into whatsapp_session_secrets (session_id, host_token) values (%s, 'v1.k.x')",
            (sid,),
        )
        message = inserted(
            conn,
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, wpp_message_id) values (%s, %s, 'inbound', '5511999999999', 'oi',"
            " 'received', %s) returning id",
            (alice, sid, f"false_{uuid.uuid4().hex}"),
        )
        conn.execute(
            "insert into whatsapp_reactions (user_id, message_id, reactor, emoji, from_me,"
            " reacted_at) values (%s, %s, 'me', '👍', true, now())",
            (alice, message),
        )
        conn.execute(
            "insert into whatsapp_groups (user_id, whatsapp_session_id, account, group_id)"
            " values (%s, %s, 'default', '120363000000000002@g.us')",
            (alice, sid),
        )
        conn.execute(
            "insert into whatsapp_message_changes (whatsapp_session_id, target, kind)"
            " values (%s, %s, 'revoke')",
            (sid, f"false_{uuid.uuid4().hex}"),
        )
        conn.execute(
            "insert into whatsapp_action_keys (user_id, idempotency_key, request_hash)"
            " values (%s, 'k', 'h')",
            (alice,),
        )
        conn.execute(
            "insert into whatsapp_error_logs (user_id, whatsapp_session_id, function_name, code,"
            " message) values (%s, %s, 'send-message', 'host_error', 'x')",
            (alice, sid),
        )
        conn.execute(
            "insert into whatsapp_events (user_id, whatsapp_session_id, seq, event, dedup_key,"
            " payload) values (%s, %s, 1, 'status-find', %s, '{}')",
            (alice, sid, uuid.uuid4().hex),
        )
        conn.execute(
            "insert into whatsapp_event_seqs (whatsapp_session_id, last_seq) values (%s, 1)",
            (sid,),
        )
        key = inserted(
            conn,
            "insert into whatsapp_api_keys (user_id, name, prefix, key_hash, scopes)"
            " values (%s, 'backend', 'wak_abcdef', %s, '{read}') returning id",
            (alice, uuid.uuid4().hex * 2),
        )
        conn.execute(
            "insert into whatsapp_api_key_buckets (key_id, tokens, at) values (%s, 1, now())",
            (key,),
        )
        add_delivery(conn, alice)
        # A pool host makes every start use the pool: it exists only while these tests run.
        host = f"rls-{uuid.uuid4().hex[:8]}"
        add_host(conn, host, capacity=5)
    yield World(alice, bob, sid, name)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("delete from wpp_hosts where name = %s", (host,))


def who(world: World, actor: str) -> tuple[str, str | None]:
    return {
        "alice": ("authenticated", world.alice),
        "bob": ("authenticated", world.bob),
        "anon": ("anon", None),
    }[actor]


@pytest.mark.parametrize("table", USER_TABLES)
def test_alice_reads_her_own_rows(database: str, world: World, table: str) -> None:
    rows = run_as(database, "authenticated", world.alice, f"select user_id from {table}")
    assert rows and all(str(r[0]) == world.alice for r in rows)


@pytest.mark.parametrize("table", USER_TABLES)
def test_bob_reads_none_of_alices_rows(database: str, world: World, table: str) -> None:
    rows = run_as(
        database,
        "authenticated",
        world.bob,
        f"select 1 from {table} where user_id = %s",
        (world.alice,),
    )
    assert rows == []


@pytest.mark.parametrize("table", ALL_TABLES)
def test_anon_reads_nothing(database: str, world: World, table: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, "anon", None, f"select 1 from {table}")


@pytest.mark.parametrize("actor", ["alice", "bob"])
@pytest.mark.parametrize("table", SERVICE_TABLES)
def test_secrets_and_the_host_pool_are_unreadable_by_users(
    database: str, world: World, actor: str, table: str
) -> None:
    role, uid = who(world, actor)
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, role, uid, f"select * from {table}")


WRITES = {
    "whatsapp_sessions": {
        "insert": "insert into whatsapp_sessions (user_id, session_id) values (%(uid)s, 'x_y')",
        "update": "update whatsapp_sessions set status = 'connected' where id = %(sid)s",
        "delete": "delete from whatsapp_sessions where id = %(sid)s",
    },
    "whatsapp_messages": {
        "insert": "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone,"
        " status) values (%(uid)s, %(sid)s, 'outbound', '5511999999999', 'sent')",
        "update": "update whatsapp_messages set status = 'read'"
        " where whatsapp_session_id = %(sid)s",
        "delete": "delete from whatsapp_messages where whatsapp_session_id = %(sid)s",
    },
    "whatsapp_error_logs": {
        "insert": "insert into whatsapp_error_logs (user_id, function_name, code, message)"
        " values (%(uid)s, 'f', 'c', 'm')",
        "update": "update whatsapp_error_logs set message = 'm' where user_id = %(uid)s",
        "delete": "delete from whatsapp_error_logs where user_id = %(uid)s",
    },
    "whatsapp_events": {
        "insert": "insert into whatsapp_events (user_id, whatsapp_session_id, seq, event,"
        " dedup_key, payload) values (%(uid)s, %(sid)s, 99, 'x', 'y', '{}')",
        "update": "update whatsapp_events set event = 'x' where whatsapp_session_id = %(sid)s",
        "delete": "delete from whatsapp_events where whatsapp_session_id = %(sid)s",
    },
    "whatsapp_event_seqs": {
        "insert": "insert into whatsapp_event_seqs values (%(sid)s, 5)",
        "update": "update whatsapp_event_seqs set last_seq = 9 where whatsapp_session_id = %(sid)s",
        "delete": "delete from whatsapp_event_seqs where whatsapp_session_id = %(sid)s",
    },
    "whatsapp_api_keys": {
        "insert": "insert into whatsapp_api_keys (user_id, name, prefix, key_hash, scopes)"
        " values (%(uid)s, 'x', 'wak_abcdef', repeat('a', 64), '{send}')",
        "update": "update whatsapp_api_keys set scopes = '{send,read,sessions}'",
        "delete": "delete from whatsapp_api_keys",
    },
    "whatsapp_api_key_buckets": {
        "insert": "insert into whatsapp_api_key_buckets select id, 99, now()"
        " from whatsapp_api_keys",
        "update": "update whatsapp_api_key_buckets set tokens = 99",
        "delete": "delete from whatsapp_api_key_buckets",
    },
    "whatsapp_endpoints": {
        "insert": "insert into whatsapp_endpoints (id, user_id, url, events, secret) values"
        " (gen_random_uuid(), %(uid)s, 'https://x.example', '{session.status}', 'v1.k.x')",
        "update": "update whatsapp_endpoints set url = 'https://evil.example'",
        "delete": "delete from whatsapp_endpoints",
    },
    "whatsapp_notifications": {
        "insert": "insert into whatsapp_notifications (user_id, type, body)"
        " values (%(uid)s, 'session.status', '{}')",
        "update": "update whatsapp_notifications set body = '{}'",
        "delete": "delete from whatsapp_notifications",
    },
    "whatsapp_deliveries": {
        "insert": "insert into whatsapp_deliveries (endpoint_id, user_id, notification_id, seq)"
        " select endpoint_id, user_id, notification_id, 99 from whatsapp_deliveries",
        "update": "update whatsapp_deliveries set status = 'pending'",
        "delete": "delete from whatsapp_deliveries",
    },
    "wpp_hosts": {
        "insert": "insert into wpp_hosts (name, url, secret_key, capacity)"
        " values ('evil', 'http://evil', 'v1.k.x', 1)",
        "update": "update wpp_hosts set state = 'down'",
        "delete": "delete from wpp_hosts",
    },
    "whatsapp_session_secrets": {
        "insert": "insert into whatsapp_session_secrets (session_id, host_token)"
        " values (%(sid)s, 'v1.k.y')",
        "update": "update whatsapp_session_secrets set host_token = 'v1.k.z'"
        " where session_id = %(sid)s",
        "delete": "delete from whatsapp_session_secrets where session_id = %(sid)s",
    },
    "whatsapp_chats": {
        "insert": "insert into whatsapp_chats (user_id, whatsapp_session_id, account, chat_id,"
        " last_message_id, last_body, last_at, last_direction, last_message_type, last_status)"
        " values (%(uid)s, %(sid)s, 'default', '1@c.us', gen_random_uuid(), '', now(),"
        " 'inbound', 'chat', 'received')",
        "update": "update whatsapp_chats set unread = 0",
        "delete": "delete from whatsapp_chats",
    },
    "whatsapp_reactions": {
        "insert": "insert into whatsapp_reactions (user_id, message_id, reactor, emoji, from_me,"
        " reacted_at) select %(uid)s, id, 'me', '👎', true, now() from whatsapp_messages",
        "update": "update whatsapp_reactions set emoji = '👎'",
        "delete": "delete from whatsapp_reactions",
    },
    "whatsapp_groups": {
        "insert": "insert into whatsapp_groups (user_id, whatsapp_session_id, account, group_id)"
        " values (%(uid)s, %(sid)s, 'default', '120363000000000003@g.us')",
        "update": "update whatsapp_groups set subject = 'x'",
        "delete": "delete from whatsapp_groups",
    },
    "whatsapp_message_changes": {
        "insert": "insert into whatsapp_message_changes (whatsapp_session_id, target, kind)"
        " values (%(sid)s, 'x', 'revoke')",
        "update": "update whatsapp_message_changes set applied_at = now()",
        "delete": "delete from whatsapp_message_changes",
    },
    "whatsapp_action_keys": {
        "insert": "insert into whatsapp_action_keys (user_id, idempotency_key, request_hash)"
        " values (%(uid)s, 'x', 'h')",
        "update": "update whatsapp_action_keys set request_hash = 'x'",
        "delete": "delete from whatsapp_action_keys",
    },
}


@pytest.mark.parametrize("actor", ["alice", "bob", "anon"])
@pytest.mark.parametrize("command", ["insert", "update", "delete"])
@pytest.mark.parametrize("table", ALL_TABLES)
def test_no_client_role_writes_directly(
    database: str, world: World, table: str, command: str, actor: str
) -> None:
    role, uid = who(world, actor)
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(
            database,
            role,
            uid,
            WRITES[table][command],
            {"uid": uid or world.alice, "sid": world.session_id},
        )


@pytest.mark.parametrize("actor", ["alice", "bob", "anon"])
@pytest.mark.parametrize(
    "call",
    [
        "select gateway_begin_start(jsonb_build_object('user_id', %(uid)s::uuid,"
        " 'session_name', %(name)s::text, 'account', 'default', 'method', 'qr',"
        " 'max_accounts', 3))",
        "select gateway_apply_host_state(jsonb_build_object('session_name', %(name)s::text,"
        " 'status', 'connected'))",
        "select gateway_ingest_event(jsonb_build_object('session_name', %(name)s::text,"
        " 'event', 'x', 'dedup_key', 'k', 'payload', '{}'::jsonb, 'kind', 'none'))",
        "select gateway_hosts()",
        "select gateway_put_host('evil', 'http://evil', 'v1.k.x', 1, null)",
        "select gateway_session_for_host(%(uid)s, %(name)s)",
        "select gateway_purge_batch(1, 1, 1)",
    ],
)
def test_state_transitions_are_for_the_service_role_only(
    database: str, world: World, actor: str, call: str
) -> None:
    role, uid = who(world, actor)
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, role, uid, call, {"uid": world.alice, "name": world.session_name})


def test_reading_a_session_by_name_respects_rls(database: str, world: World) -> None:
    query = "select gateway_get_session(%s)"
    mine = run_as(database, "authenticated", world.alice, query, (world.session_name,))
    theirs = run_as(database, "authenticated", world.bob, query, (world.session_name,))
    assert mine[0][0]["session_id"] == world.session_name
    assert theirs == [(None,)]
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, "anon", None, query, (world.session_name,))


def test_every_table_has_rls_enabled_and_per_command_policies(database: str) -> None:
    with psycopg.connect(database) as conn:
        enabled = dict(
            conn.execute(
                "select relname, relrowsecurity from pg_class "
                "where relnamespace = 'public'::regnamespace and relname = any(%s)",
                (list(ALL_TABLES),),
            ).fetchall()
        )
        policies = conn.execute(
            "select tablename, cmd, roles::text[], qual from pg_policies"
            " where schemaname = 'public'"
        ).fetchall()
    assert enabled == dict.fromkeys(ALL_TABLES, True)
    # Service tables: no policy at all. Templates, which users write: test_template_rls.
    assert {p[0] for p in policies} == {*USER_TABLES, "whatsapp_templates"}
    for table, cmd, roles, qual in policies:
        if table == "whatsapp_templates":
            continue
        assert cmd == "SELECT" and roles == ["authenticated"]
        assert "SELECT auth.uid()" in qual


def test_sessions_and_messages_are_published_for_realtime(database: str) -> None:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
        ).fetchall()
    assert {r[0] for r in rows} >= {"whatsapp_sessions", "whatsapp_messages"}
