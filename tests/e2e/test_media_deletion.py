"""A message's files go with it: the purge deletes messages older than the retention
(MESSAGE_RETENTION) with their files, and removes the files of messages deleted any other way
(a user's account deleted, and with it their messages). A session purged keeps its messages,
so their files stay. Through the gateway, the simulator, the local Storage API and PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import psycopg
import pytest

from local.function_url import LambdaContext
from local.gateway import handlers_in_process
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user, rows_of
from tests.e2e.test_media import objects_under, read
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def received_file(
    gateway: Gateway, simulator: Simulator, database: str, label: str
) -> tuple[Any, str, dict[str, Any]]:
    """A user whose WhatsApp received a PDF, kept in Storage: (user, token, its row)."""
    user, token, name = connected_user(gateway, simulator, label)
    data = b"%PDF-1.7\n" + os.urandom(4000)
    media = {"data": base64.b64encode(data).decode(), "mime_type": "application/pdf"}
    with simulator.configured(ciphertext_first=False, decrypt_error_tries=0):
        simulator.control("POST", f"{name}/incoming", {"from": "5511933330001", "media": media})
        [row] = wait_until(
            lambda: rows_of(database, user.id, "inbound"),
            lambda rows: len(rows) == 1 and rows[0]["media_state"] == "stored",
            20.0,
        )
    assert objects_under(database, row["media_path"]) == [row["media_path"]]
    return user, token, row


def received_days_ago(database: str, message_id: str, days: int) -> None:
    with psycopg.connect(database) as conn:
        conn.execute(
            "update whatsapp_messages set created_at = now() - make_interval(days => %s)"
            " where id = %s",
            (days, message_id),
        )


def purge(env: dict[str, str], **settings: str) -> dict[str, Any]:
    with handlers_in_process({**env, **settings}) as loaded:
        handler: Handler = loaded["purge"]
        return handler(
            {"source": "schedule", "job": "purge"},
            LambdaContext("purge", str(uuid.uuid4()), timeout_ms=120_000),
        )


def test_messages_older_than_the_retention_go_with_their_files(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, old = received_file(gateway, simulator, database, "retention")
    received_days_ago(database, old["id"], 31)

    report = purge(gateway.env, MESSAGE_RETENTION="30d")

    assert report["messages_deleted"] >= 1 and report["files_deleted"] >= 1
    assert rows_of(database, user.id, "inbound") == []
    assert objects_under(database, old["media_path"]) == []
    gone = read(gateway, token, old["media_path"])
    assert gone.status_code in (400, 404)


def test_the_files_of_a_deleted_users_messages_are_removed(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, row = received_file(gateway, simulator, database, "leaving")
    with psycopg.connect(database) as conn:
        conn.execute("delete from auth.users where id = %s", (user.id,))

    purge(gateway.env)

    assert objects_under(database, row["media_path"]) == []


def test_without_a_retention_messages_and_their_files_stay(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, row = received_file(gateway, simulator, database, "keeping")
    received_days_ago(database, row["id"], 400)

    purge(gateway.env)

    assert [r["id"] for r in rows_of(database, user.id, "inbound")] == [row["id"]]
    assert objects_under(database, row["media_path"]) == [row["media_path"]]
