"""Row Level Security from the other side: through the functions. tests/integration/test_rls.py
acts as each database role directly; here alice (linked, with messages), bob (signed in, with
nothing) and anon (no token) call every function, and no answer or readable column ever holds
a host token, in clear or encrypted, or a secret of the stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql

from local import devdb
from tests.conftest import Gateway, Simulator, as_role
from tests.e2e.flows import assert_error, connected_user, sent_text
from tests.waiting import wait_until
from wa_gateway.crypto import DecryptionError, Keyring

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TO = "5511987654321"
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "start-session", {}),
    ("POST", "start-session", {"json": {"method": "qr"}}),
    ("GET", "status", {}),
    ("GET", "status", {"params": {"refresh": "true"}}),
    ("POST", "send-message", {"json": {"phone": TO, "message": "oi"}}),
    ("POST", "disconnect", {}),
]


@dataclass
class Alice:
    user: devdb.DevUser
    token: str
    session: str


@pytest.fixture(scope="module")
def alice(gateway: Gateway, simulator: Simulator, database: str) -> Alice:
    user, token, session = connected_user(gateway, simulator, "rlsalice")
    sent_text(gateway, token, TO, "hello")
    simulator.control("POST", f"{session}/incoming", {"from": "5511912340000", "body": "hi"})
    wait_until(lambda: inbound_count(database, user.id), lambda n: n == 1)
    return Alice(user, token, session)


def inbound_count(database: str, user_id: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s and direction = 'inbound'",
            (user_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def alice_state(gateway: Gateway, simulator: Simulator, alice: Alice) -> tuple[Any, ...]:
    mine = gateway.call("GET", "status", alice.token).json()["session"]
    return mine["status"], mine["phone_number"], len(simulator.outbox(alice.session))


def test_anon_gets_401_from_every_function(gateway: Gateway) -> None:
    for method, function, extra in CALLS:
        assert_error(gateway.call(method, function, **extra), 401, "missing_token")


def test_bob_sees_and_changes_nothing_of_alices(
    gateway: Gateway, simulator: Simulator, alice: Alice
) -> None:
    bob = gateway.token_for(gateway.new_user("rlsbob"))
    before = alice_state(gateway, simulator, alice)
    assert before[0] == "connected"

    # Reads: bob has no session, whatever he names.
    for params in ({}, {"refresh": "true"}, {"session": alice.session}, {"account": "default"}):
        answer = gateway.call("GET", "status", bob, params=params)
        assert answer.status_code == 200 and answer.json() == {"session": None}, answer.text

    # Bodies that name alice's session are refused; nothing else can name it.
    for function in ("start-session", "send-message", "disconnect"):
        body: dict[str, Any] = {"session": alice.session}
        if function == "send-message":
            body.update(phone=TO, message="from bob")
        assert_error(gateway.call("POST", function, bob, json=body), 400, "invalid_request")

    # Writes: each one acts on bob's own session only.
    assert_error(
        gateway.call("POST", "send-message", bob, json={"phone": TO, "message": "x"}),
        409,
        "session_not_connected",
    )
    started = gateway.call("POST", "start-session", bob).json()["session"]
    assert started["name"] != alice.session and started["status"] == "pairing"
    stopped = gateway.call("POST", "disconnect", bob).json()["session"]
    assert stopped["name"] == started["name"] and stopped["status"] == "disconnected"
    assert alice_state(gateway, simulator, alice) == before
    assert simulator.state(alice.session)["status"] == "CONNECTED"


def host_tokens(database: str, keyring: Keyring) -> list[tuple[str, str]]:
    """Every stored host token the functions made: (ciphertext, plaintext). (Other tests
    store made-up ciphertexts directly; those are no one's token.)"""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select k.host_token, s.session_id from whatsapp_session_secrets k"
            " join whatsapp_sessions s on s.id = k.session_id"
        ).fetchall()
    tokens = []
    for ciphertext, name in rows:
        try:
            tokens.append((ciphertext, keyring.decrypt(ciphertext, context=name)))
        except DecryptionError:
            continue
    return tokens


def forbidden_texts(gateway: Gateway, database: str) -> list[str]:
    keyring = Keyring.from_setting(gateway.env["ENCRYPTION_KEY"])
    tokens = host_tokens(database, keyring)
    assert tokens, "no host token stored: the test would prove nothing"
    secrets = gateway.local_secrets
    return [
        *[t for pair in tokens for t in pair],
        secrets.jwt_secret,
        secrets.verify_token,
        secrets.encryption_key.split(":", 1)[1],
        secrets.wpp_secret_key,
        "$2b$",
    ]


def test_no_answer_holds_a_host_token_or_a_secret(
    gateway: Gateway, simulator: Simulator, database: str, alice: Alice
) -> None:
    bob = gateway.token_for(gateway.new_user("rlsbob2"))
    answers: list[requests.Response] = []
    for token in (alice.token, bob, None):
        for method, function, extra in CALLS:
            if function == "disconnect" and token == alice.token:
                continue  # alice stays linked for the other tests
            answers.append(gateway.call(method, function, token, **extra))
    answers.append(gateway.call("GET", "status", alice.token, params={"refresh": "true"}))
    forbidden = forbidden_texts(gateway, database)
    for answer in answers:
        text = answer.text + json.dumps(dict(answer.headers))
        for value in forbidden:
            assert value not in text, (answer.request.url, answer.status_code)


def readable_rows(database: str, role: str, user_id: str | None) -> dict[str, str | None]:
    """Every table of the public schema as ``role`` sees it: its rows, in the columns the role
    may select, as JSON text, or None when the role may select no column of it."""
    seen: dict[str, str | None] = {}
    with psycopg.connect(database) as conn:
        readable = conn.execute(
            "select c.relname, array_remove(array_agg(a.attname::text order by a.attnum)"
            "  filter (where has_column_privilege(%s, c.oid, a.attnum, 'SELECT')), null)"
            " from pg_class c join pg_attribute a on a.attrelid = c.oid"
            " where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'"
            "   and a.attnum > 0 and not a.attisdropped"
            " group by c.relname",
            (role,),
        ).fetchall()
        for table, columns in readable:
            if not columns:
                seen[table] = None
                continue
            query = sql.SQL("select to_jsonb(t)::text from (select {} from {}) t").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.Identifier("public", table),
            )
            with conn.transaction(force_rollback=True):
                as_role(conn, role, user_id)
                rows = conn.execute(query).fetchall()
            seen[table] = "\n".join(str(r[0]) for r in rows)
    return seen


def test_no_column_a_user_can_read_holds_a_host_token_or_a_secret(
    gateway: Gateway, database: str, alice: Alice
) -> None:
    forbidden = forbidden_texts(gateway, database)
    mine = readable_rows(database, "authenticated", alice.user.id)
    assert mine["whatsapp_session_secrets"] is None and mine["wpp_hosts"] is None
    assert mine["whatsapp_sessions"] and mine["whatsapp_messages"]
    for table, text in mine.items():
        for value in forbidden:
            assert value not in (text or ""), table
    assert all(text is None for text in readable_rows(database, "anon", None).values())


def test_bob_reads_none_of_alices_rows_in_any_table(
    gateway: Gateway, database: str, alice: Alice
) -> None:
    bob = gateway.new_user("rlsbob3")
    for table, text in readable_rows(database, "authenticated", bob.id).items():
        assert alice.user.id not in (text or ""), table
        assert alice.session not in (text or ""), table
