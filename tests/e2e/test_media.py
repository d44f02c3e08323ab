"""Media end to end: files sent inline or from Storage and files received, through the gateway,
the simulator (as wppconnect-server 2.10.4), the local Storage API and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user, rows_of
from tests.e2e.test_receiving import media_state
from tests.waiting import wait_until

TO = "5511987654321"
FROM = "5511955554444"
BUCKET = "whatsapp-media"
MiB = 1024 * 1024


def jpeg(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def pdf(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


def ogg(size: int) -> bytes:
    return b"OggS\x00\x02" + os.urandom(size - 6)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def send(gateway: Gateway, token: str, media: dict[str, Any], **fields: Any) -> requests.Response:
    body = {"phone": TO, "media": media, **fields}
    return gateway.call("POST", "send-message", token, json=body)


def storage_headers(gateway: Gateway, token: str, **extra: str) -> dict[str, str]:
    return {"apikey": gateway.local_secrets.anon_key, "Authorization": f"Bearer {token}", **extra}


def upload(gateway: Gateway, token: str, path: str, data: bytes, mime: str) -> None:
    answer = requests.post(
        f"{gateway.url}/storage/v1/object/{BUCKET}/{path}",
        data=data,
        headers=storage_headers(gateway, token, **{"Content-Type": mime}),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def read(gateway: Gateway, token: str, path: str) -> requests.Response:
    return requests.get(
        f"{gateway.url}/storage/v1/object/authenticated/{BUCKET}/{path}",
        headers=storage_headers(gateway, token),
        timeout=30,
    )


def read_signed(gateway: Gateway, token: str, path: str) -> requests.Response:
    """What the page does: a signed URL (createSignedUrl), then a plain GET of it."""
    signed = requests.post(
        f"{gateway.url}/storage/v1/object/sign/{BUCKET}/{path}",
        json={"expiresIn": 60},
        headers=storage_headers(gateway, token),
        timeout=10,
    )
    if signed.status_code != 200:
        return signed
    return requests.get(f"{gateway.url}/storage/v1{signed.json()['signedURL']}", timeout=30)


def objects_under(database: str, prefix: str) -> list[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select name from storage.objects where bucket_id = %s and name like %s",
            (BUCKET, prefix + "%"),
        ).fetchall()
    return [r[0] for r in rows]


def media_row(database: str, user_id: str, direction: str) -> dict[str, Any]:
    rows = [r for r in rows_of(database, user_id, direction) if r["media_state"]]
    assert len(rows) == 1, rows
    return rows[0]


# --- sending -----------------------------------------------------------------------------------


def test_a_3_mib_jpeg_sent_inline_arrives_byte_for_byte_and_is_kept_under_its_message(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "media-jpeg")
    data = jpeg(3 * MiB)

    answer = send(
        gateway,
        token,
        {"data": b64(data), "mime_type": "image/jpeg", "filename": "photo.jpg"},
        message="Our new menu",
    )

    assert answer.status_code == 200, answer.text
    message = answer.json()["message"]
    assert message["status"] == "sent"
    [sent] = simulator.outbox(name)
    assert sent["route"] == "send-file-base64" and sent["type"] == "image"
    assert (sent["mime_type"], sent["filename"], sent["size"]) == (
        "image/jpeg",
        "photo.jpg",
        len(data),
    )
    assert sent["sha256"] == sha(data) and sent["caption"] == "Our new menu"
    row = media_row(database, user.id, "outbound")
    assert str(row["id"]) == message["id"] and row["body"] == "Our new menu"
    assert (row["message_type"], row["media_state"], row["sha256"]) == (
        "image",
        "stored",
        sha(data),
    )
    assert row["media_path"] == f"{user.id}/{row['whatsapp_session_id']}/{row['id']}.jpg"
    assert message["media"]["path"] == row["media_path"]
    stored = read_signed(gateway, token, row["media_path"])
    assert stored.status_code == 200 and sha(stored.content) == sha(data)


def test_a_12_mib_pdf_uploaded_to_storage_first_is_sent_from_there(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "media-pdf")
    data = pdf(12 * MiB)
    path = f"{user.id}/outgoing/menu-2026.pdf"
    upload(gateway, token, path, data, "application/pdf")

    answer = send(gateway, token, {"path": path})

    assert answer.status_code == 200, answer.text
    [sent] = simulator.outbox(name)
    assert sent["type"] == "document" and sent["filename"] == "menu-2026.pdf"
    assert sent["sha256"] == sha(data) and sent["size"] == len(data)
    row = media_row(database, user.id, "outbound")
    assert (row["media_path"], row["media_state"], row["size"]) == (path, "stored", len(data))
    assert row["mime_type"] == "application/pdf" and row["body"] == ""


def test_an_ogg_opus_file_goes_as_a_voice_note(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "media-ptt")
    data = ogg(40 * 1024)

    answer = send(gateway, token, {"data": b64(data), "mime_type": "audio/ogg; codecs=opus"})

    assert answer.status_code == 200, answer.text
    [sent] = simulator.outbox(name)
    assert sent["route"] == "send-voice-base64" and sent["type"] == "ptt"
    assert sent["sha256"] == sha(data)
    row = media_row(database, user.id, "outbound")
    assert row["message_type"] == "ptt" and row["mime_type"] == "audio/ogg; codecs=opus"
    assert row["media_path"].endswith(".ogg") and row["media_state"] == "stored"


def test_a_retry_with_the_same_key_and_file_replays_and_another_file_conflicts(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, name = connected_user(gateway, simulator, "media-retry")
    data = jpeg(64 * 1024)
    media = {"data": b64(data), "mime_type": "image/jpeg"}
    key = {"Idempotency-Key": "photo-1"}

    def again(body_media: dict[str, Any]) -> requests.Response:
        body = {"phone": TO, "media": body_media}
        return gateway.call("POST", "send-message", token, json=body, headers=key)

    first, second = again(media), again(media)
    other = again({"data": b64(jpeg(64 * 1024)), "mime_type": "image/jpeg"})

    assert first.status_code == second.status_code == 200
    assert first.json()["message"]["id"] == second.json()["message"]["id"]
    assert_error(other, 409, "idempotency_conflict")
    assert len(simulator.outbox(name)) == 1


@pytest.mark.parametrize(
    ("media", "status", "code"),
    [
        (
            {"data": b64(b"GIF89a" + os.urandom(100)), "mime_type": "image/gif"},
            422,
            "unsupported_media",
        ),
        (
            {"data": b64(b"MZ" + os.urandom(100)), "mime_type": "application/x-msdownload"},
            422,
            "unsupported_media",
        ),
        ({"data": b64(pdf(2048)), "mime_type": "image/jpeg"}, 422, "unsupported_media"),
        ({"data": b64(jpeg(4 * MiB + 1)), "mime_type": "image/jpeg"}, 413, "payload_too_large"),
        ({"data": "not base64 at all!", "mime_type": "image/jpeg"}, 400, "invalid_request"),
        ({"data": b64(jpeg(2048))}, 400, "invalid_request"),
        ({"path": "OTHER/outgoing/menu.pdf"}, 403, "forbidden"),
        ({"path": "SELF/outgoing/../secret.pdf"}, 403, "forbidden"),
        ({"path": "SELF/SESSION/received.jpg"}, 403, "forbidden"),
        ({"path": "SELF/outgoing/nothing-here.pdf"}, 404, "not_found"),
    ],
)
def test_bad_media_is_refused_and_nothing_is_stored_or_sent(
    gateway: Gateway,
    simulator: Simulator,
    database: str,
    media: dict[str, Any],
    status: int,
    code: str,
) -> None:
    user, token, name = connected_user(gateway, simulator, "media-bad")
    other = gateway.new_user("media-other")
    upload(
        gateway,
        gateway.token_for(other),
        f"{other.id}/outgoing/menu.pdf",
        pdf(2048),
        "application/pdf",
    )
    if "path" in media:
        media = {"path": media["path"].replace("OTHER", other.id).replace("SELF", user.id)}

    answer = send(gateway, token, media)

    assert_error(answer, status, code)
    assert simulator.outbox(name) == []
    assert rows_of(database, user.id, "outbound") == []
    assert objects_under(database, f"{user.id}/") == []


# --- receiving ---------------------------------------------------------------------------------


def incoming(simulator: Simulator, name: str, data: bytes, mime: str, **extra: Any) -> str:
    media = {"data": b64(data), "mime_type": mime, **extra}
    answer = simulator.control(
        "POST", f"{name}/incoming", {"from": FROM, "media": media, "body": "see this"}
    )
    message_id: str = answer.json()["id"]
    return message_id


def stored_row(database: str, user_id: str, wpp_id: str) -> dict[str, Any]:
    def row() -> dict[str, Any] | None:
        found = [r for r in rows_of(database, user_id, "inbound") if r["wpp_message_id"] == wpp_id]
        return found[0] if found else None

    # Stored first as ciphertext (no file yet), then with its file pending, then kept.
    return wait_until(
        row, lambda r: r is not None and r["media_state"] not in (None, "pending"), 10.0
    )


@pytest.mark.parametrize(
    ("data", "mime", "filename", "kind", "ext"),
    [
        (jpeg(200 * 1024), "image/jpeg", None, "image", "jpg"),
        (pdf(300 * 1024), "application/pdf", "price list.pdf", "document", "pdf"),
        (ogg(30 * 1024), "audio/ogg; codecs=opus", None, "ptt", "ogg"),
    ],
)
def test_a_received_file_is_stored_and_readable_by_its_owner_only(
    gateway: Gateway,
    simulator: Simulator,
    database: str,
    data: bytes,
    mime: str,
    filename: str | None,
    kind: str,
    ext: str,
) -> None:
    user, token, name = connected_user(gateway, simulator, "media-in")
    bob = gateway.new_user("media-bob")
    bob_token = gateway.token_for(bob)

    wpp_id = incoming(simulator, name, data, mime, **({"filename": filename} if filename else {}))

    row = stored_row(database, user.id, wpp_id)
    assert row["media_state"] == "stored" and row["message_type"] == kind
    assert (row["mime_type"], row["filename"], row["size"]) == (mime, filename, len(data))
    assert row["sha256"] == sha(data) and row["body"] == "see this"
    assert row["media_path"] == f"{user.id}/{row['whatsapp_session_id']}/{row['id']}.{ext}"
    mine = read_signed(gateway, token, row["media_path"])
    assert mine.status_code == 200 and sha(mine.content) == sha(data)
    for attempt in (
        read(gateway, bob_token, row["media_path"]),
        read_signed(gateway, bob_token, row["media_path"]),
    ):
        assert attempt.status_code in (400, 404) and sha(attempt.content) != sha(data)
        assert attempt.json()["statusCode"] in ("404", 404)


def test_a_file_the_host_will_not_give_is_never_taken_from_the_webhook_body(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "media-nofetch")
    data = jpeg(50 * 1024)

    with (
        simulator.configured(auto_download=True),
        simulator.faulty(error_rate=1.0, routes=["download-media"]),
    ):
        wpp_id = incoming(simulator, name, data, "image/jpeg")
        wait_until(lambda: simulator.settled(name), bool, 5.0, message="the webhook answered")
        # The media function has tried the file once, and let it go.
        wait_until(
            lambda: media_state(database, wpp_id),
            lambda f: (f.get("attempts") or 0) >= 1 and f["lease_until"] is None,
            10.0,
            message="a try done",
        )
    [row] = [r for r in rows_of(database, user.id, "inbound") if r["wpp_message_id"] == wpp_id]

    assert row["media_state"] == "pending" and row["media_path"] is None
    assert row["sha256"] is None and row["message_type"] == "image"
    assert objects_under(database, f"{user.id}/") == []
