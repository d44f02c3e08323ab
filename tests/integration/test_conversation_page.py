"""A page of conversations for a user with 10,000 messages in 500 chats is one index range of
the chats, whatever the number of messages: the plan of the query supabase-js sends reads no
message at all. (Its time is measured by ``make bench``: ``bench/conversations.py``.)"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from bench.conversations import CHAT_PAGE, FIRST_PAGE, NEXT_PAGE, PAGE, explain, seed


def test_a_page_of_conversations_reads_the_chats_index_and_no_message(
    make_database: Callable[[], str],
) -> None:
    # A database of its own, as the bench's: in the suite's shared one, the plan of a chat's
    # page hung on how ANALYZE's sample of every other test's messages fell (the planner
    # cannot know the user's id, which RLS reads at run time, so it estimates their rows from
    # the number of users).
    database = make_database()
    user_id, session_id = seed(database)
    with psycopg.connect(database) as conn:
        _, first, rows = explain(conn, user_id, FIRST_PAGE, {"page": PAGE})
        with conn.transaction(force_rollback=True):
            conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true)",
                (f'{{"sub": "{user_id}", "role": "authenticated"}}',),
            )
            page = conn.execute(FIRST_PAGE, {"page": PAGE}).fetchall()
        _, following, next_rows = explain(
            conn, user_id, NEXT_PAGE, {"page": PAGE, "at": page[-1][9], "id": page[-1][7]}
        )
        _, chat, _ = explain(
            conn, user_id, CHAT_PAGE, {"page": PAGE, "session": session_id, "chat": page[0][2]}
        )
        unread = conn.execute(
            "select sum(unread), count(*) from whatsapp_chats where user_id = %s", (user_id,)
        ).fetchone()
        counted = conn.execute(
            "select count(*) filter (where direction = 'inbound' and read_at is null),"
            " count(distinct chat_id) from whatsapp_messages where user_id = %s",
            (user_id,),
        ).fetchone()

    assert rows == PAGE and next_rows == PAGE
    for plan in (first, following):
        assert "whatsapp_chats_page_idx" in plan, plan
        assert "whatsapp_messages" not in plan, plan
    assert "whatsapp_messages_chat_idx" in chat, chat
    assert unread == counted
