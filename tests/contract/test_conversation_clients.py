"""The conversations as supabase-js and supabase-py read them: a page of the view newest first
and the next one by keyset on (last_at, last_message_id), and message search with
``.textSearch`` through the stand-in's full-text operators, each under RLS."""

from __future__ import annotations

import psycopg
from supabase import Client

from local import devdb
from tests.conftest import Gateway
from tests.contract.conftest import run_js
from tests.rows import add_session


def seed(database: str, user_id: str, chats: list[tuple[str, str]]) -> str:
    """One session for the user, and one message per ``(phone, body)``, newest last; the
    session's id."""
    with psycopg.connect(database, autocommit=True) as conn:
        session = add_session(conn, user_id)
        for minute, (phone, body) in enumerate(chats):
            conn.execute(
                "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone,"
                " body, status, host_at) values (%s, %s, 'inbound', %s, %s, 'received',"
                " now() - make_interval(mins => %s))",
                (user_id, session, phone, body, 10 - minute),
            )
    return session


CHATS = [
    ("5511900000101", "bom dia"),
    ("5511900000102", "pizza calabresa"),
    ("5511900000103", "pizza quatro queijos"),
]


def test_supabase_js_pages_conversations_and_searches_messages(
    gateway: Gateway, user: devdb.DevUser, database: str
) -> None:
    seed(database, user.id, CHATS)
    stranger = gateway.new_user("stranger")
    seed(database, stranger.id, [("5511900000104", "segredo pizza")])

    out = run_js(gateway, "conversations", email=user.email, password="password")

    assert [c["last_body"] for c in out["first"]["data"]] == [
        "pizza quatro queijos",
        "pizza calabresa",
    ]
    assert [c["last_body"] for c in out["next"]["data"]] == ["bom dia"]
    assert all(c["unread"] == 1 for c in out["first"]["data"])
    bodies = {key: [r["body"] for r in out[key]["data"]] for key in ("fts", "plain", "phrase")}
    assert bodies == {
        "fts": ["pizza quatro queijos"],
        "plain": ["pizza quatro queijos"],
        "phrase": ["pizza quatro queijos"],
    }
    assert [r["body"] for r in out["websearch"]["data"]] == ["pizza quatro queijos"]
    assert [r["body"] for r in out["noConfig"]["data"]] == [
        "pizza calabresa",
        "pizza quatro queijos",
    ]
    assert out["other"]["data"] == []


def test_supabase_py_searches_messages_with_text_search(
    signed_in: Client, user: devdb.DevUser, database: str
) -> None:
    seed(database, user.id, CHATS)

    found = (
        signed_in.table("whatsapp_messages")
        .select("body")
        .text_search("search", "calabresa", {"config": "simple"})
        .execute()
    )
    web = (
        signed_in.table("whatsapp_messages")
        .select("body")
        .text_search("search", "pizza -calabresa", {"type": "web_search", "config": "simple"})
        .execute()
    )

    assert found.data == [{"body": "pizza calabresa"}]
    assert web.data == [{"body": "pizza quatro queijos"}]


def test_supabase_js_reads_one_conversation_page_by_page_with_its_reactions(
    gateway: Gateway, user: devdb.DevUser, database: str
) -> None:
    phone = "5511900000105"
    session = seed(database, user.id, [(phone, "um"), (phone, "dois"), (phone, "três")])
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_reactions (user_id, message_id, reactor, emoji, from_me,"
            " reacted_at) select user_id, id, 'me', '👍', true, now() from whatsapp_messages"
            " where whatsapp_session_id = %s and body = 'dois'",
            (session,),
        )

    out = run_js(
        gateway,
        "chatMessages",
        email=user.email,
        password="password",
        chat=f"{phone}@c.us",
        session=session,
    )

    assert [m["body"] for m in out["first"]["data"]] == ["três", "dois"]
    assert [m["body"] for m in out["older"]["data"]] == ["um"]
    [reaction] = out["reactions"]["data"]
    assert (reaction["emoji"], reaction["from_me"]) == ("👍", True)
