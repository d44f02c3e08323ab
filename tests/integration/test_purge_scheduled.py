"""The purge and scheduled messages: a session purged after a week disconnected takes its
scheduled messages with it (send_at may be 30 days ahead), failed with a reason the user can
read, so none waits forever for a session that is gone or counts as scheduled in the reports."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import as_role
from tests.integration.test_purge import (  # noqa: F401 - fixtures used by name
    DAY,
    clean,
    make_session,
    purger,
)
from wa_gateway.store import Store


def add_messages(database: str, name: str) -> None:
    """Two waiting for their time (one claimed by a pass that never finished), one sent."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone, body,"
            " status, send_state, send_at, wpp_message_id)"
            " select s.user_id, s.id, 'outbound', '5511987654321', m.body, m.status, m.state,"
            "   now() + m.ahead, m.wpp_id"
            " from whatsapp_sessions s, (values"
            "   ('in a month', 'scheduled', null, interval '29 days', null),"
            "   ('claimed', 'queued', 'pending', interval '-8 days', null),"
            "   ('went out', 'sent', 'done', interval '-9 days', 'true_' || gen_random_uuid())"
            " ) as m(body, status, state, ahead, wpp_id)"
            " where s.session_id = %s",
            (name,),
        )


def rows(database: str, user_id: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select body, status, error_code, whatsapp_session_id from whatsapp_messages"
            " where user_id = %s",
            (user_id,),
        ).fetchall()
    return {body: {"status": s, "error_code": e, "session": sid} for body, s, e, sid in found}


def report_rows(database: str, user_id: str, view: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        as_role(conn, "authenticated", user_id)
        columns = "status, scheduled" if view == "whatsapp_report_daily" else "error_code, messages"
        return conn.execute(f"select {columns} from public.{view}").fetchall()


@pytest.mark.usefixtures("clean")
def test_a_purged_sessions_scheduled_messages_fail_as_account_removed(
    store: Store, database: str
) -> None:
    user_id, stale = make_session(store, database, "disconnected", disconnected_at=8 * DAY)
    add_messages(database, stale)

    report = purger(store).run()

    after = rows(database, user_id)
    assert {body: (r["status"], r["error_code"]) for body, r in after.items()} == {
        "in a month": ("failed", "account_removed"),
        "claimed": ("failed", "account_removed"),
        "went out": ("sent", None),
    }
    assert all(r["session"] is None for r in after.values())
    assert report.as_dict()["scheduled_failed"] == 2 and report.sessions_deleted == 1
    # What the user reads: nothing scheduled any more, two failures and why.
    daily = report_rows(database, user_id, "whatsapp_report_daily")
    assert "scheduled" not in {status for status, _ in daily}
    assert report_rows(database, user_id, "whatsapp_report_failures") == [("account_removed", 2)]
