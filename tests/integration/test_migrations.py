"""The migrations are applied as on a Supabase project: by the Supabase CLI (``supabase db
push``), connected as ``postgres``, which is not a superuser, and recorded in the CLI's own
history table."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from local import devdb


def query(dsn: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(statement, params).fetchall()


def test_postgres_is_not_a_superuser_and_supabase_admin_is(database: str) -> None:
    roles = query(
        database,
        "select rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication,"
        " rolbypassrls from pg_roles where rolname in ('postgres', 'supabase_admin')"
        " order by rolname",
    )

    assert roles == [
        ("postgres", False, True, True, True, True, True),
        ("supabase_admin", True, True, True, True, True, True),
    ]


def test_postgres_owns_the_database_and_everything_the_migrations_made(database: str) -> None:
    owners = query(
        database,
        "select distinct pg_get_userbyid(relowner) from pg_class"
        " where relnamespace in ('public'::regnamespace, 'supabase_migrations'::regnamespace)"
        " union select distinct pg_get_userbyid(proowner) from pg_proc"
        " where pronamespace = 'public'::regnamespace"
        " union select pg_get_userbyid(pubowner) from pg_publication"
        " where pubname = 'supabase_realtime'"
        " union select pg_get_userbyid(datdba) from pg_database"
        " where datname = current_database()",
    )

    assert owners == [("postgres",)]


def test_the_cli_history_records_each_migration_with_its_statements(database: str) -> None:
    files = [p.stem.partition("_") for p in devdb.migration_files()]
    rows = query(
        database,
        "select version, name, cardinality(statements) from"
        " supabase_migrations.schema_migrations order by version",
    )
    columns = query(
        database,
        "select array_agg(attname::text order by attnum) from pg_attribute"
        " where attrelid = 'supabase_migrations.schema_migrations'::regclass and attnum > 0",
    )

    assert [(v, n) for v, n, _ in rows] == [(v, n) for v, _, n in files]
    assert all(count > 0 for _, _, count in rows)
    assert columns == [(["version", "statements", "name"],)]


def test_preparing_a_migrated_database_again_applies_nothing(database: str) -> None:
    before = query(
        database, "select version, statements from supabase_migrations.schema_migrations"
    )

    devdb.prepare(database)

    after = query(database, "select version, statements from supabase_migrations.schema_migrations")
    assert sorted(after) == sorted(before)


def test_the_cli_gets_a_url_it_can_parse_for_a_socket_or_a_host() -> None:
    socket = devdb.cli_db_url("postgresql://postgres:@/wa_test?host=/tmp/pg%20dir")
    remote = devdb.cli_db_url("host=db.example port=6543 dbname=postgres user=me password=p@ss")

    assert socket == "postgresql://postgres@localhost/wa_test?host=%2Ftmp%2Fpg+dir"
    assert remote == "postgresql://postgres:p%40ss@db.example:6543/postgres"


def test_a_database_migrated_by_another_owner_is_refused(make_database: Any) -> None:
    """A database whose tables a superuser made (as before the migrations ran as postgres)
    would take later migrations only partly: preparing it says to start afresh instead."""
    dsn = make_database()
    with psycopg.connect(devdb.as_role(dsn, devdb.ADMIN_ROLE), autocommit=True) as conn:
        conn.execute("create table public.made_by_the_superuser (id int)")

    with pytest.raises(RuntimeError, match="made_by_the_superuser"):
        devdb.prepare(dsn)
