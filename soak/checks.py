"""The invariants at the end of a soak: nothing accepted was lost or done twice, and every
stored state is one the host's events explain."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from soak.load import Accepted, Recorder
from soak.stack import Stack, User

HOST_STATUS = {"CONNECTED": "connected", "QRCODE": "pairing", "PHONECODE": "pairing"}


@dataclass
class Check:
    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(text)
        else:
            self.failures[-1] = f"... and more (last: {text})"

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "ok": self.ok, "failures": self.failures}


def run_checks(stack: Stack, users: list[User], rec: Recorder) -> list[Check]:
    with psycopg.connect(stack.dsn) as conn:
        cursor = conn.execute(
            "select m.*, s.session_id as session_name from whatsapp_messages m"
            " join whatsapp_sessions s on s.id = m.whatsapp_session_id"
        )
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        sessions: dict[str, str] = dict(
            conn.execute("select session_id, status from whatsapp_sessions").fetchall()
        )
        gaps = conn.execute(
            "select s.session_id, count(*), min(e.seq), max(e.seq) from whatsapp_events e"
            " join whatsapp_sessions s on s.id = e.whatsapp_session_id group by s.session_id"
        ).fetchall()
    outboxes = {u.session: stack.host_log(u.session, "outbox") for u in users}
    inboxes = {u.session: stack.host_log(u.session, "inbox") for u in users}
    return [
        check_sends(rows, outboxes, rec.sends, rec.refused_sends, "send"),
        check_sends(rows, outboxes, rec.scheduled, {}, "scheduled message"),
        check_inbound(rows, inboxes, rec),
        check_sessions(stack, users, sessions),
        check_acks(rows, outboxes),
        check_outbox_states(rows),
        check_event_log(gaps),
        check_answers(rec),
    ]


def check_sends(
    rows: list[dict[str, Any]],
    outboxes: dict[str, Any],
    accepted: dict[str, Accepted],
    refused: dict[str, tuple[User, str]],
    what: str,
) -> Check:
    """Each of the ``accepted`` sends (by key) is one row, sent once by the host, with the
    host's id; none of the ``refused`` ones went twice."""
    check = Check(f"every accepted {what} stored once and sent once")
    by_key = Counter(r["idempotency_key"] for r in rows if r["idempotency_key"])
    row_of = {r["idempotency_key"]: r for r in rows if r["idempotency_key"]}
    host_sent = Counter(m["body"] for box in outboxes.values() for m in box)
    host_ids = {m["body"]: m["id"] for box in outboxes.values() for m in box}
    for key, send in accepted.items():
        check.checked += 1
        if by_key[key] != 1:
            check.fail(f"{what} {key}: {by_key[key]} rows")
            continue
        if host_sent[send.text] != 1:
            check.fail(f"{what} {key}: sent {host_sent[send.text]} times by the host")
            continue
        row = row_of[key]
        if str(row["id"]) != send.message_id:
            check.fail(f"{what} {key}: answered {send.message_id}, stored {row['id']}")
        if row["wpp_message_id"] != host_ids[send.text]:
            check.fail(f"{what} {key}: stored host id {row['wpp_message_id']} is not the host's")
    for key, (_, text) in refused.items():
        if host_sent[text] > 1 or by_key[key] > 1:
            check.fail(f"refused {what} {key}: {by_key[key]} rows, sent {host_sent[text]} times")
    return check


def check_inbound(rows: list[dict[str, Any]], inboxes: dict[str, Any], rec: Recorder) -> Check:
    check = Check("every incoming message stored once")
    stored = Counter(
        (r["session_name"], r["wpp_message_id"]) for r in rows if r["direction"] == "inbound"
    )
    for session, ids in rec.incoming.items():
        delivered = {m["id"] for m in inboxes.get(session, [])}
        for message_id in ids:
            check.checked += 1
            if message_id not in delivered:
                check.fail(f"{message_id}: accepted by the host but not in its inbox")
            elif stored[(session, message_id)] != 1:
                check.fail(f"{message_id}: stored {stored[(session, message_id)]} times")
    return check


def check_sessions(stack: Stack, users: list[User], sessions: dict[str, str]) -> Check:
    check = Check("every session as the host says it is")
    for user in users:
        check.checked += 1
        host = stack.sim("GET", user.session).get("status")
        expected = HOST_STATUS.get(str(host), "disconnected")
        if sessions.get(user.session) != expected:
            check.fail(f"{user.session}: stored {sessions.get(user.session)}, host says {host}")
    return check


ACK_STATUS = {1: "sent", 2: "delivered", 3: "read", 4: "read"}


def check_acks(rows: list[dict[str, Any]], outboxes: dict[str, Any]) -> Check:
    check = Check("every sent message's status is its ack on the host")
    host_ack = {m["id"]: m["ack"] for box in outboxes.values() for m in box}
    for row in rows:
        if row["direction"] != "outbound" or row["wpp_message_id"] not in host_ack:
            continue
        check.checked += 1
        expected = ACK_STATUS.get(host_ack[row["wpp_message_id"]])
        if expected and row["status"] != expected:
            check.fail(f"{row['wpp_message_id']}: stored {row['status']}, host ack {expected}")
    return check


def check_outbox_states(rows: list[dict[str, Any]]) -> Check:
    check = Check("every outbound row in a state the send protocol allows")
    for row in rows:
        if row["direction"] != "outbound":
            continue
        check.checked += 1
        status, state, wpp_id = row["status"], row["send_state"], row["wpp_message_id"]
        if status in ("sent", "delivered", "read"):
            good = bool(wpp_id) and state in ("done", None)
        elif status == "queued":
            good = state in ("pending", "unknown") and wpp_id is None
        elif status in ("scheduled", "cancelled"):
            good = row["send_at"] is not None and wpp_id is None and state in (None, "retryable")
        else:
            good = status == "failed" and bool(row["error_code"] or wpp_id)
        if not good:
            check.fail(f"row {row['id']}: {status} / {state} / {wpp_id}")
    return check


def check_event_log(gaps: list[tuple[Any, ...]]) -> Check:
    check = Check("the event log numbered without gaps")
    for session, count, low, high in gaps:
        check.checked += 1
        if (low, high) != (1, count):
            check.fail(f"{session}: {count} events numbered {low}..{high}")
    return check


def check_answers(rec: Recorder) -> Check:
    check = Check("no 5xx, every error in the contract's shape, replays answer the first")
    for op, stat in rec.stats.items():
        for outcome, count in stat.statuses.items():
            check.checked += count
            if outcome.startswith("5") or "not the contract" in outcome or "exception" in outcome:
                check.fail(f"{op}: {count} x {outcome}")
    for text in rec.anomalies:
        check.fail(text)
    return check
