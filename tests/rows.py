"""Rows read and written straight in the test database, as its owner or as a client role."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql as pgsql

from tests.conftest import as_role


def one(dsn: str, sql: str, params: Any = None) -> tuple[Any, ...]:
    """The row a query must find."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row


def every(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Every row a query finds."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def inserted(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    """The id of the row an ``insert ... returning id`` wrote."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def run_as(
    dsn: str, role: str, user_id: str | None, sql: str | pgsql.Composed, params: Any = None
) -> list[tuple[Any, ...]]:
    """A statement as a client role (``user_id`` signed in), in a transaction rolled back."""
    with psycopg.connect(dsn) as conn, conn.transaction(force_rollback=True):
        as_role(conn, role, user_id)
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def add_session(conn: psycopg.Connection[Any], user_id: str, name: str | None = None) -> str:
    """A connected session of the user's (named at random unless ``name``); its row id."""
    return str(
        inserted(
            conn,
            "insert into whatsapp_sessions (user_id, session_id, status)"
            " values (%s, %s, 'connected') returning id",
            (user_id, name or f"u{uuid.uuid4().hex[:20]}"),
        )
    )


def add_host(conn: psycopg.Connection[Any], name: str, capacity: int = 1) -> Any:
    """A pool host that answers nowhere; its id."""
    return inserted(
        conn,
        "insert into wpp_hosts (name, url, secret_key, capacity)"
        " values (%s, %s, 'v1.k.x', %s) returning id",
        (name, f"http://{name}.invalid", capacity),
    )


def add_delivery(conn: psycopg.Connection[Any], user_id: str) -> None:
    """An endpoint of the user's, and one notification delivered to it."""
    endpoint = uuid.uuid4()
    conn.execute(
        "insert into whatsapp_endpoints (id, user_id, url, events, secret)"
        " values (%s, %s, 'https://example.com/hook', '{message.received}', 'v1.k.x')",
        (endpoint, user_id),
    )
    notification = inserted(
        conn,
        "insert into whatsapp_notifications (user_id, type, body)"
        " values (%s, 'message.received', '{}') returning id",
        (user_id,),
    )
    conn.execute(
        "insert into whatsapp_deliveries (endpoint_id, user_id, notification_id, seq)"
        " values (%s, %s, %s, 1)",
        (endpoint, user_id, notification),
    )
