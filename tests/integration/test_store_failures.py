"""Both transports judge a failed call by one map (``wa_gateway.store.failures``): here the
psycopg transport meets the real failures in PostgreSQL, and must answer as the PostgREST
transport answers the same SQLSTATEs in tests/unit/test_postgrest_transport.py: the same
``StoreUnavailable``, sent again exactly where that is safe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from wa_gateway.errors import StoreUnavailable
from wa_gateway.store import PostgresTransport

# SQLSTATE -> calls sent for it (2: tried again once), or None: raised as it is, not a 503.
SENT_FOR: dict[str, int | None] = {
    "40001": 2,
    "40P01": 2,
    "57014": 1,
    "55P03": 1,
    "53300": 1,
    "57P03": 1,
    "P0001": None,
    "42501": None,
}


@pytest.fixture(scope="module")
def dsn(make_database: Any) -> Iterator[str]:
    """A database of this module's own, with functions that fail on demand."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "create function public.test_fail(p_code text) returns json language plpgsql as"
            " $$ begin raise exception 'failing with %', p_code using errcode = p_code; end $$"
        )
        conn.execute(
            "create function public.test_sleep(p_seconds float) returns json language sql as"
            " $$ select json_build_object('slept', true) from pg_sleep(p_seconds) $$"
        )
        conn.execute(
            "create function public.test_backend() returns json language sql as"
            " $$ select json_build_object('pid', pg_backend_pid()) $$"
        )
        conn.execute(
            "grant execute on function public.test_fail, public.test_sleep, public.test_backend"
            " to public"
        )
    yield dsn


@pytest.mark.parametrize("sqlstate", sorted(SENT_FOR))
@pytest.mark.parametrize("repeatable", [True, False])
def test_each_sqlstate_is_judged_as_through_postgrest(
    dsn: str, sqlstate: str, repeatable: bool
) -> None:
    transport = PostgresTransport(dsn)
    expected = SENT_FOR[sqlstate]
    try:
        if expected is None:
            with pytest.raises(psycopg.Error) as raised:
                transport.rpc("test_fail", {"p_code": sqlstate}, repeatable=repeatable)
            assert raised.value.sqlstate == sqlstate
            assert transport.round_trips == 1
        else:
            with pytest.raises(StoreUnavailable):
                transport.rpc("test_fail", {"p_code": sqlstate}, repeatable=repeatable)
            assert transport.round_trips == expected
    finally:
        transport.close()


def test_a_statement_timeout_is_unavailable_and_not_tried_again(dsn: str) -> None:
    transport = PostgresTransport(dsn, timeout_s=0.2)
    try:
        with pytest.raises(StoreUnavailable) as raised:
            transport.rpc("test_sleep", {"p_seconds": 5})
        assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)
        assert transport.round_trips == 1
        assert transport.rpc("test_sleep", {"p_seconds": 0}) == {"slept": True}
    finally:
        transport.close()


@pytest.mark.parametrize(("repeatable", "sent"), [(True, 2), (False, 1)])
def test_a_kept_connection_found_dead_is_tried_again_only_for_a_repeatable_call(
    dsn: str, repeatable: bool, sent: int
) -> None:
    transport = PostgresTransport(dsn)
    try:
        transport.rpc("test_sleep", {"p_seconds": 0})  # leaves a kept connection
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = 'wa-gateway' and datname = current_database()"
            )
        transport.round_trips = 0
        if repeatable:
            assert transport.rpc("test_sleep", {"p_seconds": 0}) == {"slept": True}
        else:
            with pytest.raises(StoreUnavailable):
                transport.rpc("test_sleep", {"p_seconds": 0}, repeatable=False)
        assert transport.round_trips == sent
    finally:
        transport.close()


def test_a_call_the_database_refuses_leaves_its_connection_for_the_next_call(dsn: str) -> None:
    """A function that raises rolls back its own transaction and nothing more: the kept
    connection is idle again, so a warm container's next call does not connect anew (and
    its backend keeps the functions it has already compiled)."""
    transport = PostgresTransport(dsn)
    try:
        first = transport.rpc("test_backend", {})
        with pytest.raises(psycopg.Error):
            transport.rpc("test_fail", {"p_code": "P0001"})
        assert transport.rpc("test_backend", {}) == first
    finally:
        transport.close()
