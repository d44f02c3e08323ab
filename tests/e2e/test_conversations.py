"""Conversations end to end: every incoming kind from the simulator (reply, reaction, edit,
deletion, location, contact card, group message), the conversations view and its unread counts,
and send-message's reply, react, edit, delete, read and group sends, through the gateway, the
simulator and PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import requests

from tests.conftest import Gateway, Simulator, as_role
from tests.e2e.flows import connected_user, rows_of
from tests.waiting import wait_until

CONTACT = "5511987650001"
VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Souza\nTEL;type=CELL:+5511912340000\nEND:VCARD"


def incoming(simulator: Simulator, name: str, **spec: Any) -> dict[str, Any]:
    answer: dict[str, Any] = simulator.control("POST", f"{name}/incoming", spec).json()
    return answer


def send(gateway: Gateway, token: str, path: str, body: dict[str, Any]) -> requests.Response:
    return gateway.call("POST", "send-message", token, path=path, json=body)


def read_as(database: str, user_id: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows as the user reads them (RLS and the column grants apply)."""
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", user_id)
        cursor = conn.execute(query, params)
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def message_by_wpp_id(database: str, wpp_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select * from whatsapp_messages where wpp_message_id = %s", (wpp_id,)
        )
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        row = cursor.fetchone()
    return None if row is None else dict(zip(names, row, strict=True))


def stored(database: str, wpp_id: str, check: Any = lambda r: True) -> dict[str, Any]:
    row: dict[str, Any] = wait_until(
        lambda: message_by_wpp_id(database, wpp_id),
        lambda r: r is not None and bool(check(r)),
        5,
        message=f"message {wpp_id}",
    )
    return row


def received(simulator: Simulator, database: str, name: str, body: str) -> dict[str, Any]:
    """A message ``body`` from ``CONTACT``, once stored: its row."""
    return stored(database, incoming(simulator, name, **{"from": CONTACT, "body": body})["id"])


def test_every_incoming_kind_is_stored_once_with_what_it_carries(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "kinds")
    first = incoming(simulator, name, **{"from": CONTACT, "body": "Oi!", "notifyName": "Ana"})
    reply = incoming(simulator, name, **{"from": CONTACT, "body": "isso", "quoted": first["id"]})
    place = incoming(
        simulator,
        name,
        **{"from": CONTACT, "location": {"lat": -23.5505, "lng": -46.6333, "name": "Praça da Sé"}},
    )
    card = incoming(simulator, name, **{"from": CONTACT, "vcard": VCARD, "vcard_name": "Ana Souza"})
    cards = incoming(
        simulator,
        name,
        **{
            "from": CONTACT,
            "vcards": [{"name": "A", "vcard": VCARD}, {"name": "B", "vcard": VCARD}],
        },
    )
    group = simulator.control(
        "POST", f"{name}/group", {"subject": "Família", "participants": ["5511911112222"]}
    ).json()["group"]
    in_group = incoming(
        simulator, name, **{"from": "5511911112222", "group": group["id"], "body": "Olá grupo"}
    )

    original = stored(database, first["id"])
    assert stored(database, reply["id"])["reply_to"] == original["id"]
    located = stored(database, place["id"])
    assert located["message_type"] == "location"
    assert located["location"] == {"lat": -23.5505, "lng": -46.6333, "name": "Praça da Sé"}
    assert located["body"] == "Praça da Sé"
    carded = stored(database, card["id"])
    assert (carded["message_type"], carded["vcard"], carded["body"]) == (
        "vcard",
        VCARD,
        "Ana Souza",
    )
    multi = stored(database, cards["id"])
    assert multi["message_type"] == "multi_vcard" and multi["vcard"] == f"{VCARD}\n{VCARD}"
    grouped = stored(database, in_group["id"], lambda r: r["body"] == "Olá grupo")
    assert (grouped["group_id"], grouped["author"], grouped["phone"]) == (
        group["id"],
        "5511911112222",
        None,
    )
    assert grouped["chat_id"] == group["id"] and grouped["body"] == "Olá grupo"
    # Every message was stored once, in the host's order.
    inbound = rows_of(database, user.id, "inbound")
    assert len(inbound) == 6
    chats = read_as(
        database,
        user.id,
        "select chat_id, unread, contact_name, last_body from whatsapp_conversations"
        " order by last_at desc, last_message_id desc",
    )
    assert {c["chat_id"]: c["unread"] for c in chats} == {f"{CONTACT}@c.us": 5, group["id"]: 1}


def test_a_contacts_reaction_edit_and_deletion_change_the_stored_message(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "changes")
    first = incoming(simulator, name, **{"from": CONTACT, "body": "primeira"})
    second = incoming(simulator, name, **{"from": CONTACT, "body": "segunda"})
    # A contact's first message comes undecrypted first; it is edited once it has its text.
    row = stored(database, first["id"], lambda r: r["body"] == "primeira")
    stored(database, second["id"])

    incoming(simulator, name, reaction={"id": first["id"], "emoji": "❤️"})
    reactions = wait_until(
        lambda: read_as(
            database,
            user.id,
            "select message_id, emoji, from_me, phone from whatsapp_reactions",
        ),
        lambda r: len(r) == 1,
        5,
    )
    assert reactions == [
        {"message_id": row["id"], "emoji": "❤️", "from_me": False, "phone": CONTACT}
    ]
    incoming(simulator, name, reaction={"id": first["id"], "emoji": ""})
    wait_until(
        lambda: read_as(database, user.id, "select id from whatsapp_reactions"),
        lambda r: r == [],
        5,
    )

    incoming(simulator, name, revoke={"id": second["id"]})
    deleted = stored(database, second["id"], lambda r: r["deleted_at"] is not None)
    assert deleted["body"] == ""

    # The host posts nothing for an edit: a status refresh (reconcile) reads it back.
    incoming(simulator, name, edit={"id": first["id"], "body": "primeira, editada"})
    assert gateway.call("GET", "status", token, params={"refresh": "true"}).status_code == 200
    edited = stored(database, first["id"], lambda r: r["edited_at"] is not None)
    assert edited["body"] == "primeira, editada"
    assert len(rows_of(database, user.id, "inbound")) == 2


def test_a_reply_reaction_edit_and_deletion_of_ones_own_reach_the_host_once(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "own")
    question_id = str(received(simulator, database, name, "Tudo bem?")["id"])
    answer = gateway.call(
        "POST",
        "send-message",
        token,
        json={"phone": CONTACT, "message": "Tudo!", "reply_to": question_id},
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()["message"]
    assert sent["reply_to"] == question_id
    [out] = simulator.outbox(name)
    assert out["id"] == sent["wpp_message_id"]
    quoted = simulator.control("GET", f"{name}").json()  # the session is still connected
    assert quoted["status"] == "CONNECTED"

    reacted = send(gateway, token, "/react", {"id": question_id, "emoji": "👍"})
    assert reacted.status_code == 200, reacted.text
    again = send(gateway, token, "/react", {"id": question_id, "emoji": "👍"})
    assert again.status_code == 200
    edited = send(gateway, token, "/edit", {"id": sent["id"], "message": "Tudo ótimo!"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["message"]["body"] == "Tudo ótimo!"
    assert edited.json()["message"]["edited_at"] is not None
    deleted = send(gateway, token, "/delete", {"id": sent["id"]})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"]["deleted_at"] is not None
    assert send(gateway, token, "/delete", {"id": sent["id"]}).status_code == 200

    actions = simulator.control("GET", f"{name}/actions").json()["actions"]
    assert [a["route"] for a in actions] == ["react-message", "edit-message", "delete-message"]
    assert actions[2]["revoked"] is True
    mine = read_as(database, user.id, "select emoji, from_me from whatsapp_reactions")
    assert mine == [{"emoji": "👍", "from_me": True}]
    assert len(simulator.outbox(name)) == 1


def test_reading_a_conversation_zeroes_its_unread_count_and_tells_the_host_once(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "read")
    for text in ("um", "dois", "três"):
        received(simulator, database, name, text)
    [chat] = read_as(database, user.id, "select unread from whatsapp_conversations")
    assert chat["unread"] == 3

    first = send(gateway, token, "/read", {"phone": CONTACT})
    second = send(gateway, token, "/read", {"phone": CONTACT})

    assert first.status_code == 200, first.text
    assert first.json() == {
        "conversation": {"account": "default", "chat_id": f"{CONTACT}@c.us", "unread": 0},
        "marked": 3,
    }
    assert second.json()["marked"] == 0
    [chat] = read_as(database, user.id, "select unread from whatsapp_conversations")
    assert chat["unread"] == 0
    seen = [a for a in simulator.control("GET", f"{name}/actions").json()["actions"]]
    assert seen == [{"route": "send-seen", "chat": f"{CONTACT}@c.us"}]


def test_a_group_the_account_is_in_is_sent_to_and_one_it_is_not_in_is_refused(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "groups")
    mine = simulator.control(
        "POST", f"{name}/group", {"subject": "Equipe", "participants": ["5511933334444"]}
    ).json()["group"]
    other = simulator.control(
        "POST",
        f"{name}/group",
        {"subject": "Outros", "participants": ["5511933334444"], "member": False},
    ).json()["group"]

    sent = gateway.call(
        "POST", "send-message", token, json={"group": mine["id"], "message": "Bom dia, equipe"}
    )
    refused = gateway.call(
        "POST", "send-message", token, json={"group": other["id"], "message": "Oi"}
    )

    assert sent.status_code == 200, sent.text
    assert sent.json()["message"]["to"] == mine["id"]
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "group_not_found"
    assert [m["to"] for m in simulator.outbox(name)] == [mine["id"]]
    [row] = rows_of(database, user.id, "outbound")
    assert (row["group_id"], row["phone"], row["chat_id"]) == (mine["id"], None, mine["id"])
    groups = read_as(database, user.id, "select group_id, subject from whatsapp_groups")
    assert groups == [{"group_id": mine["id"], "subject": "Equipe"}]


def test_a_reaction_whose_webhook_was_lost_is_read_back_by_reconcile(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "lostreact")
    row = received(simulator, database, name, "reage aí")
    with simulator.configured(webhook_ignore=["status@broadcast", "onreactionmessage"]):
        incoming(simulator, name, reaction={"id": row["wpp_message_id"], "emoji": "🎉"})
    assert read_as(database, user.id, "select emoji from whatsapp_reactions") == []

    assert gateway.call("GET", "status", token, params={"refresh": "true"}).status_code == 200

    reactions = read_as(database, user.id, "select message_id, emoji from whatsapp_reactions")
    assert reactions == [{"message_id": row["id"], "emoji": "🎉"}]


def test_a_key_replays_a_reaction_and_refuses_another_request_with_it(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, name = connected_user(gateway, simulator, "actkey")
    message_id = str(received(simulator, database, name, "oi")["id"])

    def react(emoji: str, key: str) -> requests.Response:
        return gateway.call(
            "POST",
            "send-message",
            token,
            path="/react",
            json={"id": message_id, "emoji": emoji},
            headers={"Idempotency-Key": key},
        )

    first, again = react("👍", "k-1"), react("👍", "k-1")
    other = react("👎", "k-1")
    taken_back = react("", "k-2")

    assert first.status_code == again.status_code == 200
    assert first.json()["message"]["id"] == again.json()["message"]["id"] == message_id
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert taken_back.status_code == 200
    actions = simulator.control("GET", f"{name}/actions").json()["actions"]
    assert [(a["route"], a["emoji"]) for a in actions] == [
        ("react-message", "👍"),
        ("react-message", ""),
    ]
