"""The report views, read as each user: a seeded data set with known answers, and bob's report
never counts alice's messages. Also the times they rest on, stamped as a message moves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from local import devdb
from tests.conftest import as_role

DAY = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
TO = "5511987654321"


@dataclass(frozen=True)
class Seeded:
    alice: str
    bob: str


def read_as(dsn: str, user_id: str, statement: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.transaction(force_rollback=True):
        as_role(conn, "authenticated", user_id)
        cursor = conn.execute(statement)
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


@pytest.fixture(scope="module")
def seeded(database: str) -> Iterator[Seeded]:
    """alice: on "default", 5 sent messages delivered after 1, 2, 3, 4 and 10 s, three of them
    read after 2, 4 and 6 s (one from the template "promo", one scheduled); 2 failures; 2
    received. On "work": 1 sent, never delivered. bob: 1 sent, delivered after 100 s."""
    alice = devdb.create_user(database, f"rep-a-{uuid.uuid4().hex[:8]}@example.com", "pw").id
    bob = devdb.create_user(database, f"rep-b-{uuid.uuid4().hex[:8]}@example.com", "pw").id
    with psycopg.connect(database, autocommit=True) as conn:

        def session(user: str, account: str) -> str:
            row = conn.execute(
                "insert into whatsapp_sessions (user_id, account, session_id, status)"
                " values (%s, %s, %s, 'connected') returning id",
                (user, account, f"rep_{uuid.uuid4().hex}"),
            ).fetchone()
            assert row is not None
            return str(row[0])

        def message(user: str, sid: str, status: str, **extra: Any) -> None:
            values = {
                "user_id": user,
                "whatsapp_session_id": sid,
                "direction": "outbound",
                "phone": TO,
                "status": status,
                "created_at": DAY,
                "updated_at": DAY,
                **extra,
            }
            conn.execute(
                f"insert into whatsapp_messages ({', '.join(values)})"
                f" values ({', '.join(['%s'] * len(values))})",
                list(values.values()),
            )

        alice_default, alice_work, bob_default = (
            session(alice, "default"),
            session(alice, "work"),
            session(bob, "default"),
        )
        reads = {0: 2, 1: 4, 2: 6}
        for i, delivered_after in enumerate((1, 2, 3, 4, 10)):
            read_after = reads.get(i)
            message(
                alice,
                alice_default,
                "read" if read_after else "delivered",
                sent_at=DAY,
                delivered_at=DAY + timedelta(seconds=delivered_after),
                read_at=DAY + timedelta(seconds=read_after) if read_after else None,
                template_name="promo" if i == 0 else None,
                send_at=DAY if i == 1 else None,
            )
        message(alice, alice_default, "failed", error_code="unknown_recipient")
        message(alice, alice_default, "failed", error_code="host_error")
        for i in range(2):  # the first one read in the page (send-message/read): not "read"
            read_at = {"read_at": DAY} if i == 0 else {}
            message(alice, alice_default, "received", direction="inbound", **read_at)
        message(alice, alice_work, "sent", sent_at=DAY)
        message(
            bob,
            bob_default,
            "delivered",
            sent_at=DAY,
            delivered_at=DAY + timedelta(seconds=100),
            template_name="promo",
        )
    yield Seeded(alice, bob)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = any(%s::uuid[])", ([alice, bob],))


def test_messages_per_day_and_account_by_direction_and_status(
    database: str, seeded: Seeded
) -> None:
    rows = read_as(
        database,
        seeded.alice,
        "select day, account, direction, status, messages, scheduled, from_template"
        " from whatsapp_report_daily order by account, direction, status",
    )

    day = DAY.date()
    assert rows == [
        row(day, "default", "inbound", "received", 2),
        row(day, "default", "outbound", "delivered", 2),
        row(day, "default", "outbound", "failed", 2),
        row(day, "default", "outbound", "read", 3, scheduled=1, from_template=1),
        row(day, "work", "outbound", "sent", 1),
    ]


def row(
    day: date,
    account: str,
    direction: str,
    status: str,
    messages: int,
    scheduled: int = 0,
    from_template: int = 0,
) -> dict[str, Any]:
    return {
        "day": day,
        "account": account,
        "direction": direction,
        "status": status,
        "messages": messages,
        "scheduled": scheduled,
        "from_template": from_template,
    }


def test_delivery_and_read_rates_and_times(database: str, seeded: Seeded) -> None:
    rows = read_as(
        database,
        seeded.alice,
        "select account, sent, received, delivered, read, delivery_rate, read_rate,"
        " delivered_p50_s, delivered_p90_s, read_p50_s, read_p90_s from whatsapp_report_delivery"
        " order by 1",
    )

    default, work = rows
    assert (default["sent"], default["delivered"], default["read"]) == (5, 5, 3)
    assert (default["received"], work["received"]) == (2, 0)
    assert (float(default["delivery_rate"]), float(default["read_rate"])) == (1.0, 0.6)
    assert default["delivered_p50_s"] == pytest.approx(3.0)
    assert default["delivered_p90_s"] == pytest.approx(7.6)  # 4 + 0.6 * (10 - 4)
    assert default["read_p50_s"] == pytest.approx(4.0)
    assert default["read_p90_s"] == pytest.approx(5.6)  # 4 + 0.8 * (6 - 4)
    assert (work["account"], work["sent"], work["delivered"], float(work["delivery_rate"])) == (
        "work",
        1,
        0,
        0.0,
    )
    assert work["delivered_p50_s"] is None


def test_failures_by_code_and_template_use(database: str, seeded: Seeded) -> None:
    failures = read_as(
        database,
        seeded.alice,
        "select account, error_code, messages from whatsapp_report_failures order by 2",
    )
    templates = read_as(
        database,
        seeded.alice,
        "select template_name, messages, sent, scheduled from whatsapp_report_templates",
    )

    assert failures == [
        {"account": "default", "error_code": "host_error", "messages": 1},
        {"account": "default", "error_code": "unknown_recipient", "messages": 1},
    ]
    assert templates == [{"template_name": "promo", "messages": 1, "sent": 1, "scheduled": 0}]


@pytest.mark.parametrize(
    "view",
    [
        "whatsapp_report_daily",
        "whatsapp_report_delivery",
        "whatsapp_report_failures",
        "whatsapp_report_templates",
    ],
)
def test_bobs_report_never_counts_alices_messages(database: str, seeded: Seeded, view: str) -> None:
    bobs = read_as(database, seeded.bob, f"select * from {view}")
    alices = read_as(database, seeded.alice, f"select * from {view}")

    assert {str(r["user_id"]) for r in bobs} <= {seeded.bob}
    assert {str(r["user_id"]) for r in alices} == {seeded.alice}
    if view == "whatsapp_report_delivery":
        assert [(r["sent"], r["delivered_p50_s"]) for r in bobs] == [(1, 100.0)]


def test_anon_reads_no_report(database: str, seeded: Seeded) -> None:
    with (
        psycopg.connect(database) as conn,
        conn.transaction(force_rollback=True),
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        as_role(conn, "anon")
        conn.execute("select * from whatsapp_report_daily")


def test_a_message_is_stamped_when_it_is_sent_delivered_and_read(database: str) -> None:
    user = devdb.create_user(database, f"rep-s-{uuid.uuid4().hex[:8]}@example.com", "pw").id
    sent, read = DAY, DAY + timedelta(seconds=7)
    with psycopg.connect(database, autocommit=True) as conn:
        row_id = conn.execute(
            "insert into whatsapp_messages (user_id, direction, phone, status)"
            " values (%s, 'outbound', %s, 'queued') returning id",
            (user, TO),
        ).fetchone()
        assert row_id is not None
        conn.execute(
            "update whatsapp_messages set status = 'sent', updated_at = %s where id = %s",
            (sent, row_id[0]),
        )
        conn.execute(  # an ack 3 alone: read implies delivered
            "update whatsapp_messages set status = 'read', updated_at = %s where id = %s",
            (read, row_id[0]),
        )
        stamped = conn.execute(
            "select sent_at, delivered_at, read_at from whatsapp_messages where id = %s",
            (row_id[0],),
        ).fetchone()

    assert stamped == (sent, read, read)
