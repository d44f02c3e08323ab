"""Nothing lost on the way in: webhooks lost for three sessions while they receive text,
images, documents and voice notes, some of them reported first as ciphertext (one session's
ciphertext reports even arrive, and only the decrypted ones are lost), with the notices the
host keeps among each chat's messages. One reconcile pass later every message is stored once
with its text, and its file is readable by its owner with the bytes that were sent.

The simulator runs as the real host does by default: a first message from a new sender comes
as ciphertext first, get-messages lists each chat's notices, and a file's first download
answers "Decrypt file error".
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest

from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user, rows_of
from tests.e2e.test_media import read
from tests.faults.test_reconcile import all_delivered_or_lost, run_pass
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

NOTICES = {"e2e_notification", "gp2", "notification_template", "protocol", "call_log"}


def files() -> list[tuple[str, bytes, str, str | None]]:
    """(kind, bytes, type, name) of the files each session receives."""
    return [
        ("image", b"\xff\xd8\xff\xe0" + os.urandom(30_000), "image/jpeg", None),
        ("document", b"%PDF-1.7\n" + os.urandom(50_000), "application/pdf", "contrato.pdf"),
        ("ptt", b"OggS\x00\x02" + os.urandom(12_000), "audio/ogg; codecs=opus", None),
    ]


def receive(simulator: Simulator, name: str, tag: str) -> dict[str, dict[str, Any]]:
    """Texts and files from four senders (each one's first message comes as ciphertext
    first); what was sent, by host message id."""
    sent: dict[str, dict[str, Any]] = {}
    texts = [("5511922220001", f"{tag} olá"), ("5511922220001", f"{tag} tudo bem?")]
    for sender, text in texts:
        answer = simulator.control("POST", f"{name}/incoming", {"from": sender, "body": text})
        sent[answer.json()["id"]] = {"kind": "chat", "body": text}
    for i, (kind, data, mime, filename) in enumerate(files()):
        media: dict[str, Any] = {"data": base64.b64encode(data).decode(), "mime_type": mime}
        if filename:
            media["filename"] = filename
        caption = f"{tag} {kind}" if kind != "ptt" else ""
        answer = simulator.control(
            "POST",
            f"{name}/incoming",
            {"from": f"551192222001{i}", "media": media, "body": caption},
        )
        sent[answer.json()["id"]] = {"kind": kind, "body": caption, "data": data, "mime": mime}
    return sent


def decrypted(simulator: Simulator, name: str, ids: set[str]) -> bool:
    inbox = simulator.control("GET", f"{name}/inbox").json()["inbox"]
    return all(m["type"] != "ciphertext" for m in inbox if m["id"] in ids)


def test_one_pass_after_lost_webhooks_stores_every_text_and_file_once_and_no_notice(
    gateway: Gateway, simulator: Simulator, handlers: dict[str, Handler], database: str
) -> None:
    users = [connected_user(gateway, simulator, f"outage{i}") for i in range(3)]
    names = [name for _, _, name in users]
    sent: dict[str, dict[str, dict[str, Any]]] = {}

    # The first session: its ciphertext reports reach the gateway, the decrypted ones are lost.
    first_user, _, first = users[0]
    with simulator.configured(ciphertext_first=True, ciphertext_ms=2000):
        sent[first] = receive(simulator, first, "s0")
        wait_until(
            lambda: rows_of(database, first_user.id, "inbound"),
            lambda rows: len([r for r in rows if r["message_type"] == "ciphertext"]) == 4,
            10.0,
            message="the ciphertext reports stored",
        )
        with simulator.configured(webhook_drop_rate=1.0):
            wait_until(lambda: decrypted(simulator, first, set(sent[first])), within_s=10.0)
            # The other two: every webhook lost.
            for name in names[1:]:
                sent[name] = receive(simulator, name, name[:6])
            wait_until(
                lambda: all(decrypted(simulator, n, set(sent[n])) for n in names), within_s=10.0
            )
            wait_until(lambda: all_delivered_or_lost(simulator, names), within_s=10.0)

    run_pass(handlers["reconcile"])

    for user, token, name in users:
        rows = wait_until(
            lambda user=user: rows_of(database, user.id, "inbound"),
            lambda rows: all(r["media_state"] in (None, "stored") for r in rows),
            30.0,
            message=f"the files of {name} stored",
        )
        assert sorted(r["wpp_message_id"] for r in rows) == sorted(sent[name])
        assert not {r["message_type"] for r in rows} & NOTICES
        for row in rows:
            wanted = sent[name][row["wpp_message_id"]]
            assert (row["message_type"], row["body"]) == (wanted["kind"], wanted["body"])
            if "data" not in wanted:
                assert row["media_state"] is None
                continue
            assert row["mime_type"] == wanted["mime"] and row["size"] == len(wanted["data"])
            assert row["sha256"] == hashlib.sha256(wanted["data"]).hexdigest()
            kept = read(gateway, token, row["media_path"])
            assert kept.status_code == 200
            assert hashlib.sha256(kept.content).digest() == hashlib.sha256(wanted["data"]).digest()
