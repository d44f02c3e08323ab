"""Supabase's database linter rules that a catalog query can check offline.

Supabase's dashboard runs its linter (splinter) against a project: functions with a mutable
search_path, functions the API roles may call, foreign keys with no index. These tests ask the
migrated database the same questions, so a migration that would be flagged fails here first.
They also check that the bootstrap reproduces what makes the first rule bite: Supabase's default
privileges, which let anon and authenticated execute every new function in ``public``.
"""

from __future__ import annotations

import psycopg

from tests.rows import every

# The one function a user may call (it reads as the caller, under RLS); every other function in
# public is for service_role alone.
USER_FUNCTIONS = {"gateway_get_session"}

# The table-wide privileges users hold, each on purpose: the reports and the conversations are
# views that read as their reader, and users delete their own templates (every other command
# is column by column).
TABLE_WIDE = {
    ("whatsapp_report_daily", "authenticated", "SELECT"),
    ("whatsapp_report_delivery", "authenticated", "SELECT"),
    ("whatsapp_report_failures", "authenticated", "SELECT"),
    ("whatsapp_report_templates", "authenticated", "SELECT"),
    ("whatsapp_conversations", "authenticated", "SELECT"),
    ("whatsapp_templates", "authenticated", "DELETE"),
}


PUBLIC_FUNCTIONS = """
    select p.oid, p.proname from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
"""


def public_functions_where(dsn: str, condition: str) -> list[str]:
    """The names of the functions of ours in public (``PUBLIC_FUNCTIONS``) for which
    ``condition`` holds, ``p`` being the function's row of pg_proc."""
    rows = every(
        dsn,
        f"select f.proname from ({PUBLIC_FUNCTIONS}) f join pg_proc p using (oid)"
        f" where {condition} order by 1",
    )
    return [r[0] for r in rows]


def test_every_function_in_public_sets_its_search_path(database: str) -> None:
    """Lint 0011 function_search_path_mutable."""
    mutable = public_functions_where(
        database,
        "not exists (select from unnest(coalesce(p.proconfig, '{}')) c"
        "            where c like 'search_path=%%')",
    )

    assert mutable == []


def test_no_function_in_public_is_executable_by_anon_or_public(database: str) -> None:
    executable = public_functions_where(
        database,
        "has_function_privilege('anon', p.oid, 'EXECUTE')"
        " or exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
        "            where a.grantee = 0)",
    )

    assert executable == []


def test_users_may_execute_only_the_functions_that_read_as_them(database: str) -> None:
    executable = public_functions_where(
        database, "has_function_privilege('authenticated', p.oid, 'EXECUTE')"
    )
    service = every(
        database,
        "select count(*) filter (where not has_function_privilege('service_role', oid,"
        f" 'EXECUTE')), count(*) from ({PUBLIC_FUNCTIONS}) f",
    )

    assert set(executable) == USER_FUNCTIONS
    assert service[0][0] == 0 and service[0][1] > len(USER_FUNCTIONS)


def test_no_function_in_public_is_security_definer(database: str) -> None:
    """Lints 0028/0029: nothing runs with its owner's rights on behalf of an API role."""
    definers = public_functions_where(database, "p.prosecdef")

    assert definers == []


def test_api_roles_draw_no_sequence_and_hold_no_table_wide_privilege(database: str) -> None:
    """Users read column by column (see test_column_grants); nothing else is theirs but
    ``TABLE_WIDE``."""
    held = every(
        database,
        "select c.relname, r.role, p.privilege from pg_class c"
        " cross join (values ('anon'), ('authenticated')) r(role)"
        " cross join (values ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'),"
        "             ('REFERENCES'), ('TRIGGER')) p(privilege)"
        " where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v')"
        "   and has_table_privilege(r.role, c.oid, p.privilege)"
        " union all "
        "select c.relname, r.role, p.privilege from pg_class c"
        " cross join (values ('anon'), ('authenticated')) r(role)"
        " cross join (values ('USAGE'), ('SELECT'), ('UPDATE')) p(privilege)"
        " where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'"
        "   and has_sequence_privilege(r.role, c.oid, p.privilege)",
    )

    assert set(held) == TABLE_WIDE


def test_every_foreign_key_has_an_index_led_by_its_columns(database: str) -> None:
    """Lint 0001 unindexed_foreign_keys: deleting a referenced row (a user, a session, a host)
    must find the referencing rows by an index, not by reading the table. The index must cover
    every row (a partial one does not) and start with the key's columns."""
    unindexed = every(
        database,
        "select c.conrelid::regclass::text, c.conname from pg_constraint c"
        " where c.contype = 'f' and c.connamespace = 'public'::regnamespace"
        "   and not exists ("
        "     select from pg_index i"
        "     where i.indrelid = c.conrelid and i.indisvalid and i.indpred is null"
        "       and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]"
        "           @> c.conkey"
        "       and cardinality(c.conkey) <= i.indnkeyatts)"
        " order by 1, 2",
    )

    assert unindexed == []


def test_new_functions_in_public_are_executable_by_every_api_role_by_default(
    database: str,
) -> None:
    """As on a Supabase project, a function created by postgres is executable by anon,
    authenticated and service_role until a migration revokes it: the rules above hold because
    each migration revokes, not because the local database is laxer than Supabase."""
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        user = conn.execute("select current_user").fetchone()
        conn.execute("create function public.lint_probe() returns int language sql as 'select 1'")
        roles = conn.execute(
            "select r, has_function_privilege(r, 'public.lint_probe()', 'EXECUTE')"
            " from unnest(array['anon', 'authenticated', 'service_role']) r"
        ).fetchall()
        conn.execute("create table public.lint_probe_t (id int)")
        tables = conn.execute(
            "select has_table_privilege('anon', 'public.lint_probe_t', 'SELECT')"
        ).fetchone()

    assert user == ("postgres",)
    assert roles == [("anon", True), ("authenticated", True), ("service_role", True)]
    assert tables == (True,)
