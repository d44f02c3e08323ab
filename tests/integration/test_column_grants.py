"""Users read only the columns the app needs, whichever way they read.

A signed-in user reads their rows through the REST API, through Realtime and through the one
function that runs as them. All three obey the column grants: PostgREST's queries run as the
user, and Supabase Realtime's ``realtime.apply_rls`` sends a subscriber only the columns for
which ``has_column_privilege(<their role>, <table>, <column>, 'SELECT')`` holds. Every column of
every user-readable table is listed here as readable or private, so a new column is a decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.integration.store_helpers import new_user
from tests.rows import add_delivery, add_host, inserted, run_as

READABLE: dict[str, set[str]] = {
    "whatsapp_sessions": {
        "id",
        "user_id",
        "account",
        "session_id",
        "status",
        "status_reason",
        "pairing_method",
        "qr_code",
        "qr_image",
        "qr_expires_at",
        "pairing_code",
        "phone_number",
        "last_activity",
        "created_at",
        "updated_at",
    },
    "whatsapp_messages": {
        "id",
        "user_id",
        "whatsapp_session_id",
        "direction",
        "phone",
        "contact_name",
        "body",
        "message_type",
        "status",
        "origin",
        "wpp_message_id",
        "error_code",
        "failure_code",
        "contact_lid",
        "send_at",
        "template_name",
        "sent_at",
        "delivered_at",
        "read_at",
        "created_at",
        "updated_at",
        "mime_type",
        "filename",
        "size",
        "sha256",
        "media_path",
        "media_state",
        "reply_to",
        "reply_to_wpp_id",
        "edited_at",
        "deleted_at",
        "location",
        "vcard",
        "group_id",
        "author",
        "message_at",
        "chat_id",
        "search",
    },
    "whatsapp_templates": {"id", "user_id", "name", "body", "created_at", "updated_at"},
    "whatsapp_error_logs": {
        "id",
        "user_id",
        "whatsapp_session_id",
        "function_name",
        "code",
        "message",
        "context",
        "created_at",
    },
    "whatsapp_events": {
        "id",
        "user_id",
        "whatsapp_session_id",
        "seq",
        "event",
        "payload",
        "received_at",
    },
    "whatsapp_api_keys": {
        "id",
        "user_id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
    },
    "whatsapp_endpoints": {"id", "user_id", "url", "events", "description", "created_at"},
    "whatsapp_notifications": {"id", "user_id", "type", "body", "created_at"},
    "whatsapp_deliveries": {
        "id",
        "endpoint_id",
        "user_id",
        "notification_id",
        "seq",
        "status",
        "attempts",
        "queued_at",
        "next_attempt_at",
        "last_attempt_at",
        "last_status",
        "last_error",
        "delivered_at",
        "created_at",
    },
    "whatsapp_groups": {
        "id",
        "user_id",
        "whatsapp_session_id",
        "account",
        "group_id",
        "subject",
        "participants",
        "created_at",
        "updated_at",
    },
    "whatsapp_chats": {
        "id",
        "user_id",
        "whatsapp_session_id",
        "account",
        "chat_id",
        "phone",
        "contact_lid",
        "group_id",
        "contact_name",
        "last_message_id",
        "last_body",
        "last_at",
        "last_direction",
        "last_message_type",
        "last_status",
        "unread",
        "updated_at",
    },
    "whatsapp_reactions": {
        "id",
        "user_id",
        "message_id",
        "emoji",
        "from_me",
        "phone",
        "contact_lid",
        "reacted_at",
        "created_at",
        "updated_at",
    },
}

PRIVATE: dict[str, set[str]] = {
    "whatsapp_sessions": {
        "host_id",
        "server_url",
        "attempt",
        "host_attempt",
        "held_updates",
        "qr_updated_at",
        "qr_count",
        "send_tokens",
        "send_tokens_at",
        "connected_at",
        "disconnected_at",
    },
    "whatsapp_messages": {
        "idempotency_key",
        "request_hash",
        "send_state",
        "lease_until",
        "attempts",
        "host_at",
        "awaits_scheduler",  # the scheduler's index column, read from send_state
    },
    "whatsapp_templates": set(),
    "whatsapp_error_logs": set(),
    "whatsapp_events": {"dedup_key"},
    "whatsapp_api_keys": {"key_hash"},
    "whatsapp_endpoints": {"secret", "last_seq", "next_due_at", "lease_until", "lease_token"},
    "whatsapp_notifications": set(),
    "whatsapp_deliveries": set(),
    "whatsapp_groups": {"participants_at"},
    "whatsapp_chats": set(),
    "whatsapp_reactions": {"reactor"},
}


def columns_of(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "select attname from pg_attribute where attrelid = %s::regclass"
        " and attnum > 0 and not attisdropped",
        (f"public.{table}",),
    ).fetchall()
    return {r[0] for r in rows}


def selectable(conn: psycopg.Connection[Any], role: str, table: str) -> dict[str, bool]:
    rows = conn.execute(
        "select attname, has_column_privilege(%s, attrelid, attname, 'SELECT')"
        " from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        (role, f"public.{table}"),
    ).fetchall()
    return dict(rows)


@pytest.mark.parametrize("table", sorted(READABLE))
def test_every_column_is_either_readable_or_private(database: str, table: str) -> None:
    with psycopg.connect(database) as conn:
        columns = columns_of(conn, table)

    assert READABLE[table] & PRIVATE[table] == set()
    assert columns == READABLE[table] | PRIVATE[table]


def test_realtime_sends_users_the_readable_columns_only(database: str) -> None:
    """Realtime's rule, for every column of every table it publishes."""
    with psycopg.connect(database) as conn:
        published = [
            r[0]
            for r in conn.execute(
                "select tablename from pg_publication_tables"
                " where pubname = 'supabase_realtime' and schemaname = 'public' order by 1"
            )
        ]
        sent = {table: selectable(conn, "authenticated", table) for table in published}

    assert published == [
        "whatsapp_chats",
        "whatsapp_groups",
        "whatsapp_messages",
        "whatsapp_reactions",
        "whatsapp_sessions",
    ]
    for table, columns in sent.items():
        assert {c for c, ok in columns.items() if ok} == READABLE[table], table
        assert {c for c, ok in columns.items() if not ok} == PRIVATE[table], table


@pytest.mark.parametrize("table", sorted(READABLE))
def test_anon_may_select_no_column(database: str, table: str) -> None:
    with psycopg.connect(database) as conn:
        columns = selectable(conn, "anon", table)

    assert not any(columns.values())


@dataclass(frozen=True)
class Owner:
    user_id: str
    other_id: str


@pytest.fixture(scope="module")
def owner(database: str) -> Iterator[Owner]:
    """A user with a row in every user-readable table, every column filled in, and a
    stranger."""
    user, other = new_user(database, "cols").id, new_user(database, "cols-x").id
    with psycopg.connect(database, autocommit=True) as conn:
        host = add_host(conn, f"cols-{uuid.uuid4().hex[:10]}")
        session = inserted(
            conn,
            "insert into whatsapp_sessions (user_id, session_id, status, qr_code, qr_image,"
            " qr_expires_at, qr_updated_at, qr_count, phone_number, host_id, server_url,"
            " send_tokens, send_tokens_at) values (%s, %s, 'pairing', '2@qr',"
            " 'data:image/png;base64,x', now(), now(), 1, '5511900000000', %s,"
            " 'http://host.invalid', 3, now()) returning id",
            (user, f"user_{user}", host),
        )
        message = inserted(
            conn,
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, idempotency_key, request_hash, send_state, lease_until)"
            " values (%s, %s, 'outbound', '5511999999999', 'oi', 'queued', 'k', 'h', 'pending',"
            " now()) returning id",
            (user, session),
        )
        conn.execute(
            "insert into whatsapp_reactions (user_id, message_id, reactor, emoji, from_me, phone,"
            " reacted_at) values (%s, %s, '5511999999999@c.us', '👍', false, '5511999999999',"
            " now())",
            (user, message),
        )
        conn.execute(
            "insert into whatsapp_groups (user_id, whatsapp_session_id, account, group_id,"
            " subject, participants, participants_at) values (%s, %s, 'default',"
            " '120363000000000001@g.us', 'Team', '[]', now())",
            (user, session),
        )
        conn.execute(
            "insert into whatsapp_error_logs (user_id, whatsapp_session_id, function_name, code,"
            " message) values (%s, %s, 'send-message', 'host_error', 'x')",
            (user, session),
        )
        conn.execute(
            "insert into whatsapp_templates (user_id, name, body) values (%s, 'hi', 'Hi {{n}}')",
            (user,),
        )
        conn.execute(
            "insert into whatsapp_events (user_id, whatsapp_session_id, seq, event, dedup_key,"
            " payload) values (%s, %s, 1, 'status-find', %s, '{}')",
            (user, session, uuid.uuid4().hex),
        )
        conn.execute(
            "insert into whatsapp_api_keys (user_id, name, prefix, key_hash, scopes)"
            " values (%s, 'backend', 'wak_abcdef', %s, '{send}')",
            (user, uuid.uuid4().hex * 2),
        )
        add_delivery(conn, user)
    yield Owner(user, other)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("delete from whatsapp_sessions where user_id = %s", (user,))
        conn.execute("delete from whatsapp_endpoints where user_id = %s", (user,))
        conn.execute("delete from whatsapp_notifications where user_id = %s", (user,))
        conn.execute("delete from whatsapp_api_keys where user_id = %s", (user,))
        conn.execute("delete from wpp_hosts where id = %s", (host,))


def select_as(dsn: str, user_id: str, query: sql.Composed) -> list[tuple[Any, ...]]:
    return run_as(dsn, "authenticated", user_id, query)


def column_query(table: str, columns: list[str]) -> sql.Composed:
    return sql.SQL("select {} from {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier("public", table)
    )


@pytest.mark.parametrize("table", sorted(READABLE))
def test_the_owner_reads_every_readable_column_of_their_rows(
    database: str, owner: Owner, table: str
) -> None:
    rows = select_as(database, owner.user_id, column_query(table, sorted(READABLE[table])))
    others = select_as(database, owner.other_id, column_query(table, sorted(READABLE[table])))

    assert len(rows) == 1 and others == []


PRIVATE_COLUMNS = sorted((t, c) for t, columns in PRIVATE.items() for c in columns)


@pytest.mark.parametrize(("table", "column"), PRIVATE_COLUMNS)
def test_a_private_column_is_refused_even_on_the_owners_rows(
    database: str, owner: Owner, table: str, column: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        select_as(database, owner.user_id, column_query(table, [column]))

    assert refused.value.sqlstate == "42501"


@pytest.mark.parametrize("table", sorted(t for t, columns in PRIVATE.items() if columns))
def test_select_star_is_refused_to_users(database: str, owner: Owner, table: str) -> None:
    """``select=*`` through the REST API, or a function doing ``select *`` as the user."""
    with pytest.raises(errors.InsufficientPrivilege):
        select_as(
            database, owner.user_id, sql.SQL("select * from {}").format(sql.Identifier(table))
        )


def test_the_users_session_read_answers_the_readable_columns(database: str, owner: Owner) -> None:
    """gateway_get_session runs as the user: it reads the granted columns and nothing else."""
    rows = select_as(
        database,
        owner.user_id,
        sql.SQL("select gateway_get_session({})").format(sql.Literal(f"user_{owner.user_id}")),
    )

    session = rows[0][0]
    assert set(session) == READABLE["whatsapp_sessions"]
    assert session["user_id"] == owner.user_id and session["qr_code"] == "2@qr"
