"""Rules the schema itself keeps: a disconnected session holds no QR or pairing code, whichever
path disconnected it, and every SQL function has one definition in the migrations."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors

from local import devdb
from tests.integration.store_helpers import new_user
from tests.rows import add_host, every, inserted

CODES = {
    "qr_code": "'2@qr'",
    "qr_image": "'data:image/png;base64,x'",
    "qr_expires_at": "now() + interval '1 minute'",
    "pairing_code": "'ABCD-EFGH'",
}


@dataclass(frozen=True)
class Pairing:
    """A session in the middle of pairing, holding a QR and a pairing code, on a host."""

    conn: psycopg.Connection
    id: str
    name: str
    host_id: str


@pytest.fixture(scope="module")
def user_id(database: str) -> str:
    return new_user(database, "schema").id


@pytest.fixture()
def pairing(database: str, user_id: str) -> Iterator[Pairing]:
    """Everything, the host included, lives in a transaction that is rolled back, so no other
    test sees a host in the pool."""
    suffix = uuid.uuid4().hex[:10]
    with psycopg.connect(database) as conn:
        host = add_host(conn, f"schema-{suffix}")
        name = f"schema_{suffix}"
        # It holds a QR and a code at once, so a path that forgets any of them is refused.
        session = inserted(
            conn,
            "insert into whatsapp_sessions (user_id, session_id, account, status, host_id,"
            f" qr_updated_at, qr_count, {', '.join(CODES)}) values (%s, %s, %s, 'pairing', %s,"
            f" now(), 1, {', '.join(CODES.values())}) returning id",
            (user_id, name, suffix, host),
        )
        yield Pairing(conn, str(session), name, str(host))
        conn.rollback()


@pytest.mark.parametrize("column", sorted(CODES))
def test_a_session_cannot_become_disconnected_while_it_holds_a_code(
    pairing: Pairing, column: str
) -> None:
    # Clear every code but one, then disconnect by hand: only that one is left to refuse it.
    others = ", ".join(f"{c} = null" for c in CODES if c != column)
    pairing.conn.execute(f"update whatsapp_sessions set {others} where id = %s", (pairing.id,))

    with pytest.raises(errors.CheckViolation) as refused:
        pairing.conn.execute(
            "update whatsapp_sessions set status = 'disconnected' where id = %s", (pairing.id,)
        )

    assert refused.value.sqlstate == "23514"
    assert refused.value.diag.constraint_name == "whatsapp_sessions_disconnected_holds_no_code"


def test_a_disconnected_session_cannot_be_inserted_with_a_pairing_code(
    database: str, user_id: str
) -> None:
    with psycopg.connect(database) as conn, pytest.raises(errors.CheckViolation) as refused:
        conn.execute(
            "insert into whatsapp_sessions (user_id, session_id, account, status, pairing_code)"
            " values (%s, %s, 'inserted', 'disconnected', 'ABCD-EFGH')",
            (user_id, f"schema_{uuid.uuid4().hex[:10]}"),
        )

    assert refused.value.sqlstate == "23514"


def host_event(p: Pairing) -> None:
    p.conn.execute(
        "select gateway_apply_host_state(jsonb_build_object("
        " 'session_name', %s::text, 'status', 'disconnected', 'reason', 'logged_out'))",
        (p.name,),
    )


def status_refresh(p: Pairing) -> None:
    p.conn.execute("select gateway_repair_session(%s, 'disconnected', 'logged_out')", (p.name,))


def send_finds_the_session_gone(p: Pairing) -> None:
    message = p.conn.execute(
        "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, status,"
        " send_state) select user_id, id, 'outbound', '5511999999999', 'queued', 'pending'"
        " from whatsapp_sessions where id = %s returning id",
        (p.id,),
    ).fetchone()
    assert message is not None
    p.conn.execute(
        "select gateway_finish_send(jsonb_build_object("
        " 'message_id', %s::uuid, 'attempt', 0, 'outcome', 'failed', 'session_lost', true))",
        (message[0],),
    )


def host_marked_down(p: Pairing) -> None:
    p.conn.execute("select gateway_mark_host(%s, false, 'unreachable', true)", (p.host_id,))


@pytest.mark.parametrize(
    "disconnect", [host_event, status_refresh, send_finds_the_session_gone, host_marked_down]
)
def test_every_path_into_disconnected_clears_the_qr_and_the_pairing_code(
    pairing: Pairing, disconnect: Callable[[Pairing], None]
) -> None:
    disconnect(pairing)

    row = pairing.conn.execute(
        f"select status, disconnected_at = now(), {', '.join(CODES)}"
        " from whatsapp_sessions where id = %s",
        (pairing.id,),
    ).fetchone()
    assert row == ("disconnected", True, None, None, None, None)


def test_disconnecting_a_disconnected_session_keeps_when_and_why_it_was(pairing: Pairing) -> None:
    first = pairing.conn.execute(
        "select status_reason, disconnected_at"
        " from gateway_mark_disconnected(array[%s]::uuid[], 'logged_out', now())",
        (pairing.id,),
    ).fetchall()
    again = pairing.conn.execute(
        "select count(*) from gateway_mark_disconnected("
        " array[%s]::uuid[], 'host_down', now() + interval '1 hour')",
        (pairing.id,),
    ).fetchone()

    kept = pairing.conn.execute(
        "select status_reason, disconnected_at from whatsapp_sessions where id = %s",
        (pairing.id,),
    ).fetchall()
    assert again == (0,) and kept == first and first[0][0] == "logged_out"


CREATE_FUNCTION = re.compile(
    r"^\s*create\s+(?:or\s+replace\s+)?function\s+public\.(\w+)\s*\(", re.I | re.M
)


def public_functions(database: str) -> list[tuple[str, int, str]]:
    """Every function in ``public``: its name, how many parameters it takes, its body."""
    return every(
        database,
        "select proname, pronargs, prosrc from pg_proc where pronamespace = 'public'::regnamespace",
    )


def test_every_sql_function_is_defined_once_across_the_migrations(database: str) -> None:
    defined_in: defaultdict[str, list[str]] = defaultdict(list)
    for path in devdb.migration_files():
        for name in CREATE_FUNCTION.findall(path.read_text()):
            defined_in[name.lower()].append(path.name)
    overloads = Counter(name for name, _, _ in public_functions(database))

    assert overloads, "the migrations define no function"
    assert set(defined_in) == set(overloads)
    redefined = {name: files for name, files in defined_in.items() if len(files) != overloads[name]}
    assert redefined == {}, "a function is created again: edit its one definition instead"


MAX_PARAMETERS = 6  # more, and a function takes a record instead (see the README's layout)
RECORD_READ = re.compile(r"jsonb_populate_record\(\s*null::public\.\w+,\s*(p_\w+)\s*\)")


def test_no_sql_function_takes_more_than_six_values(database: str) -> None:
    long = {name: count for name, count, _ in public_functions(database) if count > MAX_PARAMETERS}

    assert long == {}


def test_a_record_is_read_only_through_its_type(database: str) -> None:
    """A function that reads a record parameter through its type never picks keys out of it by
    hand (``p_x ->> 'key'``): a key read so is one the type-and-builder test cannot see."""
    readers = {
        name: (RECORD_READ.findall(body), body) for name, _, body in public_functions(database)
    }
    assert {
        "gateway_record_inbound",
        "gateway_reconcile_session",
        "gateway_create_api_key",
        "gateway_create_endpoint",
    } <= {name for name, (params, _) in readers.items() if params}
    by_hand = {
        name: param
        for name, (params, body) in readers.items()
        for param in params
        if re.search(rf"\b{param}\s*->", body)
    }
    assert by_hand == {}


def test_an_idempotency_key_is_looked_up_and_judged_in_one_function(database: str) -> None:
    """What a reused key answers (conflict, replay, in flight) is decided in one place per
    table of keys: for a send (a plain one, one with a template or a time alike) and for an
    action on a message (react, edit, delete, read)."""
    lookups = {
        name: set(re.findall(r"from public\.(\w+)[^;]*idempotency_key\s*=", body))
        for name, _, body in public_functions(database)
        if re.search(r"idempotency_key\s*=", body)
    }
    assert lookups == {
        "gateway_open_send": {"whatsapp_messages"},
        "gateway_begin_action": {"whatsapp_action_keys"},
    }


def test_the_scheduler_finds_what_is_due_through_its_partial_index(database: str) -> None:
    """The rule of what awaits the scheduler is written once, as the expression of the
    generated column the indexes' predicates and the claims name (not status itself, so that an
    ack stays a HOT update): the planner matches the two, so a claim reads a small index. The
    expression calls no function of ours: every write of a message computes it, and a function
    that sets its search_path is never inlined (a SQL one is planned again by each statement)."""
    with psycopg.connect(database) as conn:
        conn.execute("set enable_seqscan = off")
        [(plan,)] = conn.execute(
            "explain (format json) select * from public.whatsapp_messages m"
            " where m.whatsapp_session_id = gen_random_uuid() and m.send_at <= now()"
            " and m.awaits_scheduler"
        ).fetchall()
        [(generated,)] = conn.execute(
            "select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a"
            " on a.attrelid = d.adrelid and a.attnum = d.adnum"
            " where d.adrelid = 'public.whatsapp_messages'::regclass"
            " and a.attname = 'awaits_scheduler'"
        ).fetchall()

    # Either partial index of the rows awaiting the scheduler (the session's, or the user's
    # for the limit of scheduled messages): both hold those rows alone.
    assert re.search(r'"Index Name": "whatsapp_messages_scheduled(_user)?_idx"', json.dumps(plan))
    # (A message's status is a domain over text: the rule reads it as its text.)
    assert re.search(r"\(?status\)?(::text)? = 'scheduled'", generated)
    assert "gateway_" not in generated


def test_helpers_that_compute_a_value_are_plpgsql_whose_plans_last(database: str) -> None:
    """Every function here sets its search_path (Supabase's lint 0011), which keeps PostgreSQL
    from inlining a SQL function into its caller: a small immutable helper written in SQL (a
    rank, a type shown, a path) is then parsed and planned again by every statement or
    transaction that calls it, tens of microseconds each time on the webhook's path, where a
    PL/pgSQL one keeps its plan for the connection."""
    in_sql = every(
        database,
        "select proname from pg_proc where pronamespace = 'public'::regnamespace"
        " and provolatile = 'i'"
        " and prolang = (select oid from pg_language where lanname = 'sql') order by 1",
    )

    assert in_sql == []


def test_a_messages_values_are_checked_by_domains_not_by_checks_of_its_table(
    database: str, user_id: str
) -> None:
    """Every incoming message and every ack writes whatsapp_messages, and PostgreSQL reads a
    table's checks back from their text at the start of each statement that writes it; a
    domain's check is read once per connection. So a message's values are domains; the table
    keeps the one check that spans columns (a message names a chat)."""
    checks = every(
        database,
        "select conname from pg_constraint"
        " where conrelid = 'public.whatsapp_messages'::regclass and contype = 'c'",
    )
    assert checks == [("whatsapp_messages_names_a_chat",)]

    # The rules still hold: a number of letters is refused, as the column's check refused it.
    with psycopg.connect(database) as conn, pytest.raises(errors.CheckViolation) as refused:
        conn.execute(
            "insert into whatsapp_messages (user_id, direction, phone, status)"
            " values (%s, 'outbound', 'not-a-number', 'queued')",
            (user_id,),
        )
    assert refused.value.sqlstate == "23514"
