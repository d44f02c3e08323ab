"""Conversations on real PostgreSQL: changes that overtake their message, an older change that
must not undo a newer one, the chats kept by trigger against the messages themselves, replies
that come before what they quote, and the linked number across a relink."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import psycopg

from tests.integration.store_helpers import begin, connected
from wa_gateway.event_records import EventRecord, InboundMessage, MessageChange
from wa_gateway.records import SessionUpdate
from wa_gateway.send_records import MessageAction
from wa_gateway.store import PostgresTransport, Store

CONTACT = "5511987650009"


def message(name: str, wpp_id: str, body: str = "oi", **fields: Any) -> InboundMessage:
    base = InboundMessage(name, wpp_id, CONTACT, body, "Ana", "chat", False, None)
    return base._replace(**fields)


def ingest(store: Store, name: str, kind: str, args: Any) -> None:
    event = {"inbound": "onmessage", "change": "onreactionmessage"}[kind]
    store.ingest_event(EventRecord(name, None, None, event, uuid.uuid4().hex, {}, kind, args))  # type: ignore[arg-type]


def row(database: str, wpp_id: str) -> dict[str, Any]:
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select * from whatsapp_messages where wpp_message_id = %s", (wpp_id,)
        )
        assert cursor.description is not None
        found = cursor.fetchone()
        assert found is not None
        return dict(zip([c.name for c in cursor.description], found, strict=True))


def reactions(database: str, wpp_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(database) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "select r.reactor, r.emoji from whatsapp_reactions r"
                " join whatsapp_messages m on m.id = r.message_id"
                " where m.wpp_message_id = %s order by 1",
                (wpp_id,),
            )
        ]


def reaction(name: str, target: str, emoji: str, at_ms: int, who: str = CONTACT) -> MessageChange:
    return MessageChange(name, target, "reaction", f"{who}@c.us", None, emoji, who, None, at_ms)


def test_changes_that_overtake_their_message_are_applied_when_it_comes(
    store: Store, database: str
) -> None:
    _, name = connected(store, database)
    edited, revoked, reacted = (f"false_{CONTACT}@c.us_{uuid.uuid4().hex}" for _ in range(3))
    ingest(store, name, "change", MessageChange(name, edited, "edit", body="novo", at_ms=2_000))
    ingest(store, name, "change", MessageChange(name, revoked, "revoke"))
    ingest(store, name, "change", reaction(name, reacted, "😂", 1_000))

    for wpp_id in (edited, revoked, reacted):
        ingest(store, name, "inbound", message(name, wpp_id, "antigo", host_t=1))

    assert row(database, edited)["body"] == "novo"
    assert row(database, edited)["edited_at"] is not None
    assert row(database, revoked)["deleted_at"] is not None and row(database, revoked)["body"] == ""
    assert reactions(database, reacted) == [(f"{CONTACT}@c.us", "😂")]


def test_an_older_change_does_not_undo_a_newer_one(store: Store, database: str) -> None:
    _, name = connected(store, database)
    target = f"false_{CONTACT}@c.us_{uuid.uuid4().hex}"
    ingest(store, name, "inbound", message(name, target, "original", host_t=1))

    ingest(store, name, "change", reaction(name, target, "", 3_000))  # taken back, last
    ingest(store, name, "change", reaction(name, target, "👍", 2_000))  # came late
    ingest(store, name, "change", MessageChange(name, target, "edit", body="segunda", at_ms=5_000))
    ingest(store, name, "change", MessageChange(name, target, "edit", body="primeira", at_ms=4_000))
    # Read back later, the message shows its newest text with its edit time.
    ingest(store, name, "inbound", message(name, target, "primeira", host_t=1, edited_ms=4_000))

    assert reactions(database, target) == []
    assert row(database, target)["body"] == "segunda"
    ingest(store, name, "change", MessageChange(name, target, "revoke"))
    ingest(store, name, "change", MessageChange(name, target, "edit", body="terceira", at_ms=9_000))
    assert row(database, target)["body"] == ""
    assert row(database, target)["deleted_at"] is not None


def test_a_reply_before_its_quoted_message_is_linked_when_that_comes(
    store: Store, database: str
) -> None:
    _, name = connected(store, database)
    quoted = f"false_{CONTACT}@c.us_{uuid.uuid4().hex}"
    reply = f"false_{CONTACT}@c.us_{uuid.uuid4().hex}"
    ingest(store, name, "inbound", message(name, reply, "sim", reply_to_wpp_id=quoted, host_t=2))
    assert row(database, reply)["reply_to"] is None

    ingest(store, name, "inbound", message(name, quoted, "pode?", host_t=1))

    assert row(database, reply)["reply_to"] == row(database, quoted)["id"]
    assert row(database, reply)["reply_to_wpp_id"] == quoted


AGGREGATE = """
    select m.chat_id,
      count(*) filter (where m.direction = 'inbound' and m.read_at is null
                       and m.deleted_at is null)::integer,
      (array_agg(m.id order by m.message_at desc, m.id desc))[1]
    from whatsapp_messages m
    where m.user_id = %s and m.whatsapp_session_id is not null
      and m.status not in ('scheduled', 'cancelled')
    group by m.chat_id order by 1
"""


def test_the_chats_always_agree_with_their_messages(store: Store, database: str) -> None:
    """Random writes of every kind that moves a chat; after each, whatsapp_chats is what a
    count over the messages says."""
    user, name = connected(store, database)
    rng = random.Random(25)
    lid = "123456789012345"
    contacts = ["5511987650011", "5511987650012"]
    wpp_ids: list[str] = []
    with psycopg.connect(database, autocommit=True) as conn:
        for step in range(120):
            choice = rng.randrange(7)
            if choice <= 1 or not wpp_ids:
                wpp_id = f"false_x_{uuid.uuid4().hex}"
                who = rng.choice([*contacts, None])
                fields = {"host_t": 1_700_000_000 + rng.randrange(50)}
                if who is None:
                    fields.update(phone=None, contact_lid=lid)
                else:
                    fields.update(phone=who)
                ingest(store, name, "inbound", message(name, wpp_id, f"m{step}", **fields))
                wpp_ids.append(wpp_id)
            elif choice == 2:
                conn.execute(
                    "update whatsapp_messages set read_at = now() where wpp_message_id = %s",
                    (rng.choice(wpp_ids),),
                )
            elif choice == 3:
                ingest(store, name, "change", MessageChange(name, rng.choice(wpp_ids), "revoke"))
            elif choice == 4:
                store.remember_contact(name, lid, rng.choice(contacts))
            elif choice == 5:
                gone = wpp_ids.pop(rng.randrange(len(wpp_ids)))
                conn.execute("delete from whatsapp_messages where wpp_message_id = %s", (gone,))
            else:
                conn.execute(
                    "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone,"
                    " body, status, send_at) select user_id, id, 'outbound', %s, 'later',"
                    " 'scheduled', now() + interval '1 hour' from whatsapp_sessions"
                    " where session_id = %s",
                    (rng.choice(contacts), name),
                )
            expected = conn.execute(AGGREGATE, (user.id,)).fetchall()
            kept = conn.execute(
                "select chat_id, unread, last_message_id from whatsapp_chats where user_id = %s"
                " order by 1",
                (user.id,),
            ).fetchall()
            assert kept == expected, f"step {step}"


def phone_of(database: str, name: str) -> str | None:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select phone_number from whatsapp_sessions where session_id = %s", (name,)
        ).fetchone()
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


def test_a_relink_to_another_phone_shows_the_new_number(store: Store, database: str) -> None:
    user, name = connected(store, database)
    first, second = "5511900000001", "5511900000002"
    now = int(time.time())
    ingest(
        store,
        name,
        "inbound",
        message(name, f"a_{uuid.uuid4().hex}", account_phone=first, host_t=now),
    )
    assert phone_of(database, name) == first

    store.apply_host_state(SessionUpdate(name, "disconnected", reason="logged_out_on_phone"))
    assert phone_of(database, name) is None
    begin(store, user.id, name)
    store.apply_host_state(SessionUpdate(name, "connected"))
    # A message of the first link, delivered late, says nothing of the new one.
    ingest(
        store,
        name,
        "inbound",
        message(name, f"b_{uuid.uuid4().hex}", account_phone=first, host_t=now - 60),
    )
    assert phone_of(database, name) is None
    ingest(
        store,
        name,
        "inbound",
        message(name, f"c_{uuid.uuid4().hex}", account_phone=second, host_t=now + 5),
    )

    assert phone_of(database, name) == second


def test_react_edit_delete_and_read_take_from_the_sending_governor(
    database: str,
) -> None:
    transport = PostgresTransport(database)
    governed = Store(transport, send_burst=2, send_rate_per_s=0.01)
    try:
        _, name = connected(governed, database)
        targets = []
        for _ in range(3):
            wpp_id = f"false_{CONTACT}@c.us_{uuid.uuid4().hex}"
            ingest(governed, name, "inbound", message(name, wpp_id))
            targets.append(str(row(database, wpp_id)["id"]))
        user_id = str(row(database, wpp_id)["user_id"])
        plans = [
            governed.begin_action(
                MessageAction(user_id, "react", target, None, None, "👍", None, None, "h", None)
            )
            for target in targets
        ]
    finally:
        transport.close()

    assert [p.outcome for p in plans] == ["act", "act", "rate_limited"]
    assert plans[2].retry_after_s > 0


def test_a_chat_is_in_whatsapps_order_whatever_order_its_webhooks_came_in(
    store: Store, database: str
) -> None:
    """Two files sent one after the other whose webhooks arrive the other way round."""
    user, name = connected(store, database)
    first, second = (f"false_{CONTACT}@c.us_{uuid.uuid4().hex}" for _ in range(2))
    ingest(store, name, "inbound", message(name, second, "foto 2", host_t=1_700_000_020))
    ingest(store, name, "inbound", message(name, first, "foto 1", host_t=1_700_000_010))

    with psycopg.connect(database) as conn:
        bodies = [
            r[0]
            for r in conn.execute(
                "select body from whatsapp_messages where user_id = %s order by message_at, id",
                (user.id,),
            )
        ]
        last = conn.execute(
            "select last_body from whatsapp_chats where user_id = %s", (user.id,)
        ).fetchone()
    assert bodies == ["foto 1", "foto 2"]
    assert last == ("foto 2",)


def test_a_change_the_chat_does_not_show_leaves_the_chat_row_alone(
    store: Store, database: str
) -> None:
    """An ack or an edit of a message older than the chat's last one changes nothing the chat
    shows: the chat keeps its row version (no write, no Realtime update); a change of the last
    message still moves it."""
    _, name = connected(store, database)
    older, last = f"false_old_{uuid.uuid4().hex}", f"false_last_{uuid.uuid4().hex}"
    ingest(store, name, "inbound", message(name, older, "first", host_t=1_700_000_000))
    ingest(store, name, "inbound", message(name, last, "second", host_t=1_700_000_010))

    def chat_version(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        found = conn.execute(
            "select c.xmin::text, c.last_body, c.last_status from whatsapp_chats c"
            " join whatsapp_sessions s on s.id = c.whatsapp_session_id"
            " where s.session_id = %s",
            (name,),
        ).fetchone()
        assert found is not None
        return tuple(found)

    with psycopg.connect(database, autocommit=True) as conn:
        before = chat_version(conn)
        assert before[1:] == ("second", "received")
        conn.execute(
            "update whatsapp_messages set body = 'first, edited', status = 'read'"
            " where wpp_message_id = %s",
            (older,),
        )
        assert chat_version(conn) == before
        conn.execute(
            "update whatsapp_messages set body = 'second, edited' where wpp_message_id = %s",
            (last,),
        )
        after = chat_version(conn)
        assert after[0] != before[0] and after[1] == "second, edited"
