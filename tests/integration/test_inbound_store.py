"""Inbound messages and reconcile's bookkeeping on real PostgreSQL: the fuller report of a
message wins and an older one never takes it back; a reconcile pass whose lease ran out writes
nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.integration.store_helpers import connected
from tests.rows import every, one
from wa_gateway.event_records import IngestResult
from wa_gateway.events.service import to_record
from wa_gateway.store import PostgresTransport, Store
from wa_gateway.store.sql_records import sql_record

FROM = "5511987650001"


def report(name: str, wpp_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """An onmessage event as the host posts it."""
    return {
        "event": "onmessage",
        "session": name,
        "id": wpp_id,
        "type": kind,
        "from": f"{FROM}@c.us",
        "to": "5511912345678@c.us",
        "fromMe": False,
        "t": 1_800_000_000,
        **fields,
    }


def a_wpp_id() -> str:
    """A new incoming message's id, as the host makes them."""
    return f"false_{FROM}@c.us_3A{uuid.uuid4().hex[:16].upper()}"


def ingest(store: Store, name: str, wpp_id: str, kind: str, **fields: Any) -> IngestResult:
    """The webhook's work on an onmessage report of ``kind``."""
    return store.ingest_event(to_record(name, report(name, wpp_id, kind, **fields)))


def the_row(database: str, wpp_id: str) -> dict[str, Any]:
    rows = every(
        database,
        "select body, message_type, mime_type, media_state, contact_name"
        " from whatsapp_messages where wpp_message_id = %s",
        (wpp_id,),
    )
    assert len(rows) == 1, rows
    body, kind, mime, state, contact = rows[0]
    return {"body": body, "type": kind, "mime": mime, "state": state, "contact": contact}


@pytest.fixture()
def name(store: Store, database: str) -> str:
    """The session of a new user, linked."""
    return connected(store, database)[1]


def test_the_decrypted_report_replaces_the_ciphertext_and_a_late_ciphertext_changes_nothing(
    store: Store, database: str, name: str
) -> None:
    wpp_id = a_wpp_id()
    first = ingest(store, name, wpp_id, "ciphertext")
    assert first.stored and the_row(database, wpp_id)["type"] == "ciphertext"

    assert ingest(store, name, wpp_id, "chat", body="a mensagem", notifyName="Ana").changed
    assert the_row(database, wpp_id) == {
        "body": "a mensagem",
        "type": "chat",
        "mime": None,
        "state": None,
        "contact": "Ana",
    }

    # a late ciphertext, with another body: not the log's duplicate
    assert not ingest(store, name, wpp_id, "ciphertext", late=True).changed
    assert the_row(database, wpp_id)["body"] == "a mensagem"


def test_a_decrypted_file_gets_its_metadata_and_a_file_to_fetch(
    store: Store, database: str, name: str
) -> None:
    wpp_id = a_wpp_id()
    ingest(store, name, wpp_id, "ciphertext")
    result = ingest(store, name, wpp_id, "image", mimetype="image/jpeg", size=1234, caption="olha")
    assert result.changed and result.media_message_id is not None
    row = the_row(database, wpp_id)
    assert (row["body"], row["type"], row["mime"], row["state"]) == (
        "olha",
        "image",
        "image/jpeg",
        "pending",
    )


def test_a_revoked_or_edited_message_is_not_brought_back_by_an_older_report(
    store: Store, database: str, name: str
) -> None:
    revoked = a_wpp_id()
    ingest(store, name, revoked, "revoked")
    ingest(store, name, revoked, "chat", body="o que era")
    assert the_row(database, revoked)["type"] == "revoked"

    edited = a_wpp_id()
    ingest(store, name, edited, "chat", body="primeira versão")
    with psycopg.connect(database) as conn:  # as an edit leaves it
        conn.execute(
            "update whatsapp_messages set body = 'versão editada' where wpp_message_id = %s",
            (edited,),
        )
    for old in ("ciphertext", "chat"):
        ingest(store, name, edited, old, body="primeira versão")
    assert the_row(database, edited)["body"] == "versão editada"


def claim(transport: PostgresTransport, name: str, at: datetime) -> dict[str, Any]:
    result = transport.rpc(
        "gateway_claim_reconcile",
        {
            "p_claim": {
                "batch_size": 1,
                "lease_s": 60,
                "ack_window_s": 3600,
                "ack_limit": 10,
                "session_name": name,
                "pass_started": None,
            },
            "p_now": at,
        },
    )
    [target] = result["sessions"]
    assert isinstance(target, dict)
    return target


def test_a_pass_whose_lease_ran_out_writes_nothing(
    transport: PostgresTransport, database: str, name: str
) -> None:
    now = datetime.now(UTC)
    first = claim(transport, name, now)
    # The first pass overran its lease; a second one took the session and put it right.
    second = claim(transport, name, now + timedelta(seconds=90))

    late = transport.rpc(
        "gateway_reconcile_session",
        {
            "p_findings": {
                "session_name": name,
                "lease": first.get("lease"),
                "seen_updated_at": first["session"]["updated_at"],
                "update": None,
                "host_status": "CONNECTED",
                "acks": [],
                "mark": 1_900_000_000,
                "host_token": None,
            },
            "p_now": now + timedelta(seconds=100),
        },
    )

    assert late is not None and late.get("lease_lost") is True
    host_t, lease_until = one(
        database,
        "select m.host_t, m.lease_until from whatsapp_reconcile_marks m"
        " join whatsapp_sessions s on s.id = m.whatsapp_session_id where s.session_id = %s",
        (name,),
    )
    assert host_t != 1_900_000_000  # the late pass's mark is not kept
    assert lease_until == now + timedelta(seconds=150)  # the second pass still holds it
    assert second["lease"] != first["lease"]


def test_an_incoming_message_reads_its_session_once(store: Store, database: str, name: str) -> None:
    """The webhook's event locks its session, and the message is stored under that lock: the
    row is not looked up and locked a second time (each read of it is a statement more on
    every incoming message). Counted in one transaction, the message's second in its chat."""
    ingest(store, name, a_wpp_id(), "chat", body="primeira")
    record = sql_record(to_record(name, report(name, a_wpp_id(), "chat", body="segunda")))
    with psycopg.connect(database) as conn:
        [(result,)] = conn.execute(
            "select public.gateway_ingest_event(%s::jsonb)", (json.dumps(record),)
        ).fetchall()
        [(scans,)] = conn.execute(
            "select idx_scan from pg_stat_xact_user_tables"
            " where relid = 'public.whatsapp_sessions'::regclass"
        ).fetchall()
        conn.rollback()

    assert result["stored"] and result["changed"]
    # The event's lock, and the foreign keys of the message and of its line in the event log.
    assert scans == 3
