"""Templates: the table users write themselves. Every command as every role (anon, the owner,
another user, service_role), and what the database refuses to store whoever writes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.conftest import as_role
from tests.integration.store_helpers import new_user
from tests.rows import every, run_as


@dataclass(frozen=True)
class Owners:
    dsn: str
    alice: str
    bob: str

    def as_alice(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """A statement as alice, signed in, in a transaction rolled back."""
        return run_as(self.dsn, "authenticated", self.alice, statement, params)


@pytest.fixture()
def owners(database: str) -> Iterator[Owners]:
    """alice and bob, each with a template named "welcome"."""
    alice, bob = new_user(database, "tpl-a").id, new_user(database, "tpl-b").id
    with psycopg.connect(database, autocommit=True) as conn:
        for user, body in ((alice, "Hi {{name}}, from alice"), (bob, "Hi {{name}}, from bob")):
            conn.execute(
                "insert into whatsapp_templates (user_id, name, body) values (%s, 'welcome', %s)",
                (user, body),
            )
    yield Owners(database, alice, bob)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = any(%s::uuid[])", ([alice, bob],))


def bodies(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(r[0] for r in rows)


# --- select ----------------------------------------------------------------------------------


def test_each_user_reads_only_their_own_templates(database: str, owners: Owners) -> None:
    query = "select body from whatsapp_templates where name = 'welcome' and user_id = any(%s)"
    both = ([owners.alice, owners.bob],)

    assert bodies(owners.as_alice(query, both)) == ["Hi {{name}}, from alice"]
    assert bodies(run_as(database, "authenticated", owners.bob, query, both)) == [
        "Hi {{name}}, from bob"
    ]
    assert len(run_as(database, "service_role", None, query, both)) == 2
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, "anon", None, query, both)


# --- insert ----------------------------------------------------------------------------------


def test_a_user_adds_a_template_that_is_theirs_by_default(owners: Owners) -> None:
    rows = owners.as_alice(
        "insert into whatsapp_templates (name, body) values ('bye', 'Bye {{name}}')"
        " returning user_id, name"
    )

    assert rows == [(uuid.UUID(owners.alice), "bye")]


@pytest.mark.parametrize("role", ["authenticated", "anon"])
def test_no_client_role_adds_a_template_for_someone_else(
    database: str, owners: Owners, role: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(
            database,
            role,
            owners.alice if role == "authenticated" else None,
            "insert into whatsapp_templates (user_id, name, body) values (%s, 'x', 'y')",
            (owners.bob,),
        )


def test_anon_adds_no_template(database: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(
            database, "anon", None, "insert into whatsapp_templates (name, body) values ('x', 'y')"
        )


def test_the_service_role_adds_a_template_for_any_user(database: str, owners: Owners) -> None:
    rows = run_as(
        database,
        "service_role",
        None,
        "insert into whatsapp_templates (user_id, name, body) values (%s, 'ops', 'x')"
        " returning user_id",
        (owners.bob,),
    )

    assert rows == [(uuid.UUID(owners.bob),)]


def test_a_name_is_unique_per_user_only(owners: Owners) -> None:
    with pytest.raises(errors.UniqueViolation):
        owners.as_alice("insert into whatsapp_templates (name, body) values ('welcome', 'again')")


# --- update ----------------------------------------------------------------------------------

UPDATE = "update whatsapp_templates set body = 'changed' where user_id = %s returning id"


def test_the_owner_changes_their_template_and_its_updated_at_moves(
    database: str, owners: Owners
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_templates set updated_at = now() - interval '1 day'"
            " where user_id = %s",
            (owners.alice,),
        )
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", owners.alice)
        changed = conn.execute(
            "update whatsapp_templates set body = 'changed' where user_id = %s"
            " returning updated_at > now() - interval '1 minute'",
            (owners.alice,),
        ).fetchall()

    assert changed == [(True,)]


def test_another_user_changes_nothing_of_the_owners(database: str, owners: Owners) -> None:
    assert run_as(database, "authenticated", owners.bob, UPDATE, (owners.alice,)) == []


def test_no_user_gives_a_template_away(owners: Owners) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        owners.as_alice(
            "update whatsapp_templates set user_id = %s where user_id = %s",
            (owners.bob, owners.alice),
        )


def test_anon_changes_no_template(database: str, owners: Owners) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, "anon", None, UPDATE, (owners.alice,))


def test_the_service_role_changes_any_template(database: str, owners: Owners) -> None:
    assert len(run_as(database, "service_role", None, UPDATE, (owners.alice,))) == 1


# --- delete ----------------------------------------------------------------------------------

DELETE = "delete from whatsapp_templates where user_id = %s returning id"


def test_the_owner_deletes_their_template(owners: Owners) -> None:
    assert len(owners.as_alice(DELETE, (owners.alice,))) == 1


def test_another_user_deletes_nothing_of_the_owners(database: str, owners: Owners) -> None:
    assert run_as(database, "authenticated", owners.bob, DELETE, (owners.alice,)) == []


def test_anon_deletes_no_template(database: str, owners: Owners) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, "anon", None, DELETE, (owners.alice,))


def test_the_service_role_deletes_any_template(database: str, owners: Owners) -> None:
    assert len(run_as(database, "service_role", None, DELETE, (owners.bob,))) == 1


# --- the policies and what is stored ---------------------------------------------------------


def test_one_policy_per_command_for_signed_in_owners(database: str) -> None:
    policies = every(
        database,
        "select cmd, roles::text[], qual, with_check from pg_policies"
        " where schemaname = 'public' and tablename = 'whatsapp_templates' order by cmd",
    )

    assert [p[0] for p in policies] == ["DELETE", "INSERT", "SELECT", "UPDATE"]
    for cmd, roles, qual, with_check in policies:
        assert roles == ["authenticated"]
        if cmd != "INSERT":
            assert "SELECT auth.uid()" in qual
        if cmd in ("INSERT", "UPDATE"):
            assert "SELECT auth.uid()" in with_check


@pytest.mark.parametrize(
    "name", ["", "Welcome", "with space", "acentuação", "x" * 65, "a/b", "a.b"]
)
def test_a_name_outside_the_rules_is_refused(owners: Owners, name: str) -> None:
    with pytest.raises(errors.CheckViolation):
        owners.as_alice("insert into whatsapp_templates (name, body) values (%s, 'x')", (name,))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "x" * 4097,
        "Hi {{Name}}",
        "Hi {{ name }}",
        "Hi {{name}",
        "Hi name}}",
        "Hi {{1name}}",
        "Hi {{" + "a" * 33 + "}}",
        "{{}}",
    ],
)
def test_a_body_outside_the_rules_is_refused(owners: Owners, body: str) -> None:
    with pytest.raises(errors.CheckViolation):
        owners.as_alice("insert into whatsapp_templates (name, body) values ('t', %s)", (body,))


@pytest.mark.parametrize(
    "body",
    ["Plain text", "{single} braces", "{{a}} and {{b_2}}", "x" * 4096, "{{" + "a" * 32 + "}}"],
)
def test_a_body_within_the_rules_is_stored(owners: Owners, body: str) -> None:
    rows = owners.as_alice(
        "insert into whatsapp_templates (name, body) values ('t', %s) returning body", (body,)
    )

    assert rows == [(body,)]
