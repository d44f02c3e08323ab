"""One page of conversations for a user with 10,000 messages in 500 chats.

The messages are written through the real write path's trigger (``gateway_track_chat`` keeps
``whatsapp_chats`` as they are inserted), then the page the inbox asks for is read as the user
(role ``authenticated`` and their claims, as PostgREST runs a supabase-js request): the 50
newest conversations, then the next 50 by keyset on ``(last_at, last_message_id)``, then the
50 newest messages of one chat. Each is timed ``n`` times (median and p90, in ms, on the
server: ``EXPLAIN ANALYZE``'s execution time) and its plan kept as text.

``python -m bench.conversations`` runs it alone, on a database of its own.
"""

from __future__ import annotations

import json
import statistics
import uuid
from typing import Any

import psycopg

MESSAGES = 10_000
CHATS = 500
PAGE = 50

FIRST_PAGE = (
    "select id, account, chat_id, phone, contact_lid, group_id, contact_name, last_message_id,"
    " last_body, last_at, last_direction, unread from public.whatsapp_conversations"
    " order by last_at desc, last_message_id desc limit %(page)s"
)
# supabase-js: .lte('last_at', t).or(`last_at.lt.${t},last_message_id.lt.${id}`)
NEXT_PAGE = (
    "select id, account, chat_id, phone, contact_lid, group_id, contact_name, last_message_id,"
    " last_body, last_at, last_direction, unread from public.whatsapp_conversations"
    " where last_at <= %(at)s and (last_at < %(at)s or last_message_id < %(id)s)"
    " order by last_at desc, last_message_id desc limit %(page)s"
)
CHAT_PAGE = (
    "select id, direction, body, status, message_at, reply_to, edited_at, deleted_at"
    " from public.whatsapp_messages where whatsapp_session_id = %(session)s"
    " and chat_id = %(chat)s order by message_at desc, id desc limit %(page)s"
)


def seed(dsn: str) -> tuple[str, str]:
    """A user with one session and ``MESSAGES`` messages over ``CHATS`` chats (two thirds
    incoming, a tenth of those unread); (user id, session id)."""
    user_id = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)",
            (user_id, f"bench-inbox-{user_id[:8]}@example.com"),
        )
        row = conn.execute(
            "insert into whatsapp_sessions (user_id, session_id, status) values (%s, %s,"
            " 'connected') returning id",
            (user_id, f"b{uuid.uuid4().hex[:20]}"),
        ).fetchone()
        assert row is not None
        session_id = str(row[0])
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, host_at, read_at)"
            " select %(u)s, %(s)s,"
            "   case when g %% 3 = 0 then 'outbound' else 'inbound' end,"
            "   (5511900000000 + g %% %(chats)s)::text, 'message ' || g,"
            "   case when g %% 3 = 0 then 'read' else 'received' end,"
            "   now() - make_interval(secs => %(n)s - g),"
            "   case when g %% 3 <> 0 and g < %(n)s * 0.9 then now() end"
            " from generate_series(1, %(n)s) g",
            {"u": user_id, "s": session_id, "chats": CHATS, "n": MESSAGES},
        )
        # One statement rewrote each chat row 20 times; the webhook's one transaction per
        # message leaves autovacuum the same dead rows to clear over time.
        conn.execute("vacuum analyze whatsapp_chats")
        conn.execute("analyze whatsapp_messages")
    return user_id, session_id


def _as_user(conn: psycopg.Connection[Any], user_id: str) -> None:
    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
    conn.execute(
        "select set_config('role', 'authenticated', true),"
        " set_config('request.jwt.claims', %s, true)",
        (claims,),
    )


def explain(
    conn: psycopg.Connection[Any], user_id: str, query: str, params: dict[str, Any]
) -> tuple[float, str, int]:
    """(execution ms, the plan as text, rows) of ``query`` run once as the user."""
    with conn.transaction(force_rollback=True):
        _as_user(conn, user_id)
        lines = [
            r[0] for r in conn.execute("explain (analyze, buffers) " + query, params).fetchall()
        ]
        rows = len(conn.execute(query, params).fetchall())
    ms = next(
        float(line.split(":")[1].split()[0]) for line in lines if line.startswith("Execution Time")
    )
    return ms, "\n".join(lines), rows


def measure(dsn: str, n: int = 200) -> dict[str, Any]:
    user_id, session_id = seed(dsn)
    with psycopg.connect(dsn) as conn:
        with conn.transaction(force_rollback=True):
            _as_user(conn, user_id)
            page = conn.execute(FIRST_PAGE, {"page": PAGE}).fetchall()
        last = page[-1]
        cases = {
            "first_page": (FIRST_PAGE, {"page": PAGE}),
            "next_page": (NEXT_PAGE, {"page": PAGE, "at": last[9], "id": last[7]}),
            "chat_page": (CHAT_PAGE, {"page": PAGE, "session": session_id, "chat": page[0][2]}),
        }
        out: dict[str, Any] = {"messages": MESSAGES, "chats": CHATS, "page": PAGE}
        for name, (query, params) in cases.items():
            times = []
            plan, rows = "", 0
            for _ in range(n):
                ms, plan, rows = explain(conn, user_id, query, params)
                times.append(ms)
            times.sort()
            out[name] = {
                "rows": rows,
                "median_ms": round(statistics.median(times), 3),
                "p90_ms": round(times[int(len(times) * 0.9) - 1], 3),
                "plan": plan,
            }
    return out


if __name__ == "__main__":
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(root), str(root / "shared")]
    import os

    from local.stack import local_database

    with local_database(database_server=os.environ.get("TEST_DATABASE_URL")) as database:
        result = measure(database, n=int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    for case in ("first_page", "next_page", "chat_page"):
        print(f"{case}: median {result[case]['median_ms']} ms, p90 {result[case]['p90_ms']} ms")
        print(result[case]["plan"], end="\n\n")
