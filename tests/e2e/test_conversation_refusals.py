"""Bad input to send-message's reply, react, edit, delete, read and group sends: each gets its
4xx in the contract's shape, and nothing is stored and nothing reaches the host (the simulator's
outbox and its list of the account's actions stay as they were)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests

from local import devdb
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.waiting import wait_until

CONTACT = "5511987650002"


def state(simulator: Simulator, database: str, name: str, user_id: str) -> tuple[Any, ...]:
    """What a refused call must leave as it was: the host's outbox and actions, and the user's
    messages, reactions and chats, once the host has acked every message it sent."""
    wait_until(lambda: simulator.settled(name) and _all_read(database, user_id), bool, 5)
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select (select count(*) from whatsapp_messages where user_id = %(u)s),"
            " (select string_agg(concat_ws('|', id, body, status, edited_at, deleted_at, read_at,"
            "   reply_to), ',' order by id) from whatsapp_messages where user_id = %(u)s),"
            " (select count(*) from whatsapp_reactions where user_id = %(u)s),"
            " (select coalesce(sum(unread), 0) from whatsapp_chats where user_id = %(u)s)",
            {"u": user_id},
        ).fetchone()
    return (
        simulator.outbox(name),
        simulator.control("GET", f"{name}/actions").json()["actions"],
        rows,
    )


@dataclass
class TwoUsers:
    """alice, linked, with a message she sent and one she received; bob, linked, with none."""

    gateway: Gateway
    simulator: Simulator
    database: str
    alice: devdb.DevUser
    alice_token: str
    alice_name: str
    bob_token: str
    bob_name: str
    sent: str
    received: str

    def call(self, path: str, body: dict[str, Any], token: str | None = None) -> requests.Response:
        """A POST to send-message's ``path``, as alice unless given another's token."""
        return self.gateway.call(
            "POST", "send-message", token or self.alice_token, path=path, json=body
        )

    def alices_state(self) -> tuple[Any, ...]:
        return state(self.simulator, self.database, self.alice_name, str(self.alice.id))


@pytest.fixture(scope="module")
def two_users(gateway: Gateway, simulator: Simulator, database: str) -> TwoUsers:
    alice, alice_token, alice_name = connected_user(gateway, simulator, "refuse-a")
    _, bob_token, bob_name = connected_user(gateway, simulator, "refuse-b")
    sent = gateway.call(
        "POST", "send-message", alice_token, json={"phone": CONTACT, "message": "Olá"}
    ).json()["message"]
    received = simulator.control(
        "POST", f"{alice_name}/incoming", {"from": CONTACT, "body": "Oi"}
    ).json()
    # Stored once decrypted: a contact's first message comes undecrypted first.
    received_id = wait_until(
        lambda: _id_of(database, received["id"], "Oi"), lambda found: found is not None, 5
    )
    return TwoUsers(
        gateway,
        simulator,
        database,
        alice,
        alice_token,
        alice_name,
        bob_token,
        bob_name,
        sent["id"],
        received_id,
    )


def _all_read(database: str, user_id: str) -> bool:
    """Every message the user sent has its last ack (the host acks 2, then 3, on its own)."""
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s and direction = 'outbound'"
            " and status <> 'read'",
            (user_id,),
        ).fetchone()
    return row == (0,)


def _id_of(database: str, wpp_id: str, body: str) -> str | None:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select id from whatsapp_messages where wpp_message_id = %s and body = %s",
            (wpp_id, body),
        ).fetchone()
    return None if row is None else str(row[0])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/react", {"emoji": "👍"}),
        ("/edit", {"message": "roubado"}),
        ("/delete", {}),
        ("/", {"phone": CONTACT, "message": "resposta", "reply_to": None}),
    ],
    ids=["react", "edit", "delete", "reply"],
)
def test_another_users_message_id_is_not_found(
    simulator: Simulator, two_users: TwoUsers, path: str, body: dict[str, Any]
) -> None:
    """bob names alice's message: the same 404 as an id that exists nowhere."""
    key = "reply_to" if path == "/" else "id"
    before = two_users.alices_state()
    bob_before = simulator.outbox(two_users.bob_name)

    answer = two_users.call(path, {**body, key: two_users.sent}, two_users.bob_token)

    assert_error(answer, 404, "message_not_found")
    assert two_users.alices_state() == before
    assert simulator.outbox(two_users.bob_name) == bob_before


@pytest.mark.parametrize("emoji", ["ok", "👍👍", "🏽", "🇧", "a", " 👍", "x" * 70])
def test_an_emoji_that_is_not_one_is_refused(two_users: TwoUsers, emoji: str) -> None:
    before = two_users.alices_state()

    answer = two_users.call("/react", {"id": two_users.received, "emoji": emoji})

    assert_error(answer, 422, "invalid_emoji")
    assert two_users.alices_state() == before


@pytest.mark.parametrize(
    ("path", "body", "age", "status", "code"),
    [
        ("/edit", {"message": "tarde demais"}, "16 minutes", 409, "edit_window_passed"),
        ("/delete", {}, "49 hours", 409, "delete_window_passed"),
    ],
    ids=["edit", "delete"],
)
def test_a_change_past_whatsapps_window_is_refused(
    database: str,
    two_users: TwoUsers,
    path: str,
    body: dict[str, Any],
    age: str,
    status: int,
    code: str,
) -> None:
    sent = two_users.call("/", {"phone": CONTACT, "message": "x"}).json()["message"]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            f"update whatsapp_messages set sent_at = now() - interval '{age}' where id = %s",
            (sent["id"],),
        )
    before = two_users.alices_state()

    answer = two_users.call(path, {**body, "id": sent["id"]})

    assert_error(answer, status, code)
    assert two_users.alices_state() == before


def test_someone_elses_message_is_not_edited_or_deleted_for_everyone(two_users: TwoUsers) -> None:
    before = two_users.alices_state()
    for path, body in (("/edit", {"message": "não é minha"}), ("/delete", {})):
        answer = two_users.call(path, {**body, "id": two_users.received})
        assert_error(answer, 409, "not_own_message")
    assert two_users.alices_state() == before


def test_a_group_the_account_is_not_in_is_refused_for_sends_and_reads(
    database: str, two_users: TwoUsers
) -> None:
    never = "120363999999999999@g.us"
    before = two_users.alices_state()

    send = two_users.call("/", {"group": never, "message": "Oi"})
    read = two_users.call("/read", {"group": never})

    assert_error(send, 404, "group_not_found")
    assert read.status_code == 200 and read.json() == {"conversation": None, "marked": 0}
    assert two_users.alices_state() == before
    with psycopg.connect(database) as conn:
        kept = conn.execute(
            "select count(*) from whatsapp_groups where group_id = %s", (never,)
        ).fetchone()
    assert kept == (0,)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/react", {"id": "not-a-uuid", "emoji": "👍"}, 400, "invalid_request"),
        (
            "/react",
            {"id": "00000000-0000-0000-0000-000000000000", "emoji": 1},
            400,
            "invalid_request",
        ),
        (
            "/edit",
            {"id": "00000000-0000-0000-0000-000000000000", "message": " "},
            400,
            "invalid_request",
        ),
        (
            "/edit",
            {"id": "00000000-0000-0000-0000-000000000000", "message": "x" * 4097},
            422,
            "message_too_long",
        ),
        (
            "/delete",
            {"id": "00000000-0000-0000-0000-000000000000", "extra": 1},
            400,
            "invalid_request",
        ),
        ("/read", {"phone": CONTACT, "group": "1203630000@g.us"}, 400, "invalid_request"),
        ("/read", {"group": "team@g.us"}, 400, "invalid_request"),
        ("/", {"group": "123", "message": "x"}, 400, "invalid_request"),
        ("/", {"phone": CONTACT, "message": "x", "reply_to": "x"}, 400, "invalid_request"),
        (
            "/react",
            {"id": "00000000-0000-0000-0000-000000000000", "emoji": "👍"},
            404,
            "message_not_found",
        ),
    ],
)
def test_malformed_calls_are_refused_before_anything(
    two_users: TwoUsers, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    before = two_users.alices_state()

    answer = two_users.call(path, body)

    assert_error(answer, status, code)
    assert two_users.alices_state() == before
