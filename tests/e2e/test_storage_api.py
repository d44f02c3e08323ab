"""The local Storage API (``/storage/v1/``) through the gateway, as supabase-js and the
functions call it: real ``storage.objects`` rows written and read as the caller, so the
bucket's policies decide; answers and errors shaped as Supabase Storage's."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from local import devdb
from tests.conftest import Gateway
from tests.waiting import wait_until

BUCKET = "whatsapp-media"
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(2048)


def storage(gateway: Gateway, path: str) -> str:
    return f"{gateway.url}/storage/v1{path}"


def headers(gateway: Gateway, token: str | None, **extra: str) -> dict[str, str]:
    """What supabase-js's storage client sends: the API key, and the bearer token."""
    sent = {"apikey": gateway.local_secrets.anon_key, **extra}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return sent


def upload(
    gateway: Gateway,
    token: str | None,
    name: str,
    data: bytes = JPEG,
    content_type: str = "image/jpeg",
    **extra: str,
) -> requests.Response:
    return requests.post(
        storage(gateway, f"/object/{BUCKET}/{name}"),
        data=data,
        headers=headers(gateway, token, **{"Content-Type": content_type, **extra}),
        timeout=30,
    )


def download(gateway: Gateway, token: str | None, name: str, route: str = "authenticated/"):
    return requests.get(
        storage(gateway, f"/object/{route}{BUCKET}/{name}"),
        headers=headers(gateway, token),
        timeout=10,
    )


def assert_storage_error(response: requests.Response, status: str, message: str) -> None:
    """Storage's error: HTTP 400 whatever the status it names (500 stays 500)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"}
    assert (body["statusCode"], body["message"]) == (status, message)


def row(gateway: Gateway, name: str) -> dict[str, Any] | None:
    with psycopg.connect(gateway.dsn) as conn:
        found = conn.execute(
            "select owner_id, version, metadata from storage.objects"
            " where bucket_id = %s and name = %s",
            (BUCKET, name),
        ).fetchone()
    if found is None:
        return None
    return {"owner_id": found[0], "version": found[1], "metadata": found[2]}


@pytest.fixture()
def stored_bytes(gateway: Gateway) -> Path:
    """Where the gateway's Storage keeps the objects' bytes."""
    assert gateway.storage_dir is not None
    return gateway.storage_dir


@pytest.fixture()
def bob(gateway: Gateway) -> devdb.DevUser:
    return gateway.new_user("bob")


def outgoing(user: devdb.DevUser, suffix: str = ".jpg") -> str:
    return f"{user.id}/outgoing/{uuid.uuid4().hex}{suffix}"


@pytest.fixture()
def alices_jpeg(gateway: Gateway, alice: devdb.DevUser) -> tuple[str, str]:
    """``JPEG``, uploaded by alice to her outgoing folder: (its name, alice's access token)."""
    name = outgoing(alice)
    token = gateway.token_for(alice)
    upload(gateway, token, name).raise_for_status()
    return name, token


def test_a_user_uploads_to_their_outgoing_folder_and_gets_the_same_bytes_back(
    gateway: Gateway, alice: devdb.DevUser
) -> None:
    name = outgoing(alice)
    token = gateway.token_for(alice)

    uploaded = upload(gateway, token, name, cache_control="max-age=3600")
    got = download(gateway, token, name)

    assert uploaded.status_code == 200, uploaded.text
    assert set(uploaded.json()) == {"Id", "Key"}
    assert uploaded.json()["Key"] == f"{BUCKET}/{name}"
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(JPEG).hexdigest()
    assert got.headers["content-type"] == "image/jpeg"
    stored = row(gateway, name)
    assert stored is not None and stored["owner_id"] == alice.id
    assert stored["metadata"]["size"] == len(JPEG)
    assert stored["metadata"]["mimetype"] == "image/jpeg"
    assert stored["metadata"]["eTag"] == f'"{hashlib.md5(JPEG).hexdigest()}"'  # noqa: S324
    assert got.headers["etag"] == stored["metadata"]["eTag"]


def test_the_plain_download_route_decides_as_the_authenticated_one(
    gateway: Gateway, alices_jpeg: tuple[str, str]
) -> None:
    name, token = alices_jpeg

    got = download(gateway, token, name, route="")

    assert got.status_code == 200 and got.content == JPEG


@pytest.mark.parametrize(
    "where", ["{alice}/{session}/x.jpg", "{alice}/x.jpg", "{bob}/outgoing/x.jpg"]
)
def test_a_user_cannot_upload_outside_their_outgoing_folder(
    gateway: Gateway, stored_bytes: Path, alice: devdb.DevUser, bob: devdb.DevUser, where: str
) -> None:
    files_before = set(stored_bytes.iterdir())
    name = where.format(alice=alice.id, bob=bob.id, session=uuid.uuid4())

    refused = upload(gateway, gateway.token_for(alice), name)

    assert_storage_error(refused, "403", "new row violates row-level security policy")
    assert row(gateway, name) is None
    assert set(stored_bytes.iterdir()) == files_before


def test_another_user_is_told_the_object_does_not_exist(
    gateway: Gateway, alices_jpeg: tuple[str, str], bob: devdb.DevUser
) -> None:
    name, _ = alices_jpeg
    bobs = gateway.token_for(bob)

    for route in ("authenticated/", ""):
        assert_storage_error(download(gateway, bobs, name, route), "404", "Object not found")
    signed = requests.post(
        storage(gateway, f"/object/sign/{BUCKET}/{name}"),
        json={"expiresIn": 60},
        headers=headers(gateway, bobs),
        timeout=10,
    )
    assert_storage_error(signed, "404", "Object not found")


def test_signed_out_callers_get_nothing(
    gateway: Gateway, alice: devdb.DevUser, alices_jpeg: tuple[str, str]
) -> None:
    name, _ = alices_jpeg

    with_anon_key = download(gateway, None, name, route="")
    with_nothing = requests.get(storage(gateway, f"/object/{BUCKET}/{name}"), timeout=10)
    authenticated_route = requests.get(
        storage(gateway, f"/object/authenticated/{BUCKET}/{name}"), timeout=10
    )
    anon_upload = upload(gateway, None, outgoing(alice))

    assert_storage_error(with_anon_key, "404", "Object not found")
    assert_storage_error(with_nothing, "404", "Bucket not found")
    assert authenticated_route.status_code == 400
    assert authenticated_route.json()["statusCode"] == "403"
    assert_storage_error(anon_upload, "403", "new row violates row-level security policy")


def test_the_service_key_writes_received_media_the_user_reads_but_cannot_change(
    gateway: Gateway, alice: devdb.DevUser
) -> None:
    name = f"{alice.id}/{uuid.uuid4()}/voice.ogg"
    service_key = gateway.local_secrets.service_role_key
    token = gateway.token_for(alice)

    stored = requests.post(
        storage(gateway, f"/object/{BUCKET}/{name}"),
        data=b"OggS voice",
        headers={
            "apikey": service_key,
            "Authorization": f"Bearer {service_key}",
            "Content-Type": "audio/ogg",
        },
        timeout=10,
    )
    read = download(gateway, token, name)
    replaced = upload(gateway, token, name, b"OggS other", "audio/ogg", **{"x-upsert": "true"})
    deleted = requests.delete(
        storage(gateway, f"/object/{BUCKET}"),
        json={"prefixes": [name]},
        headers=headers(gateway, token),
        timeout=10,
    )

    assert stored.status_code == 200, stored.text
    assert (row(gateway, name) or {}).get("owner_id") is None
    assert read.status_code == 200 and read.content == b"OggS voice"
    assert_storage_error(replaced, "403", "new row violates row-level security policy")
    assert deleted.status_code == 200 and deleted.json() == []
    assert download(gateway, token, name).content == b"OggS voice"


def test_a_signed_url_serves_the_object_to_anyone_until_it_expires(
    gateway: Gateway, alice: devdb.DevUser, alices_jpeg: tuple[str, str]
) -> None:
    name, token = alices_jpeg

    def sign(expires_in: int) -> str:
        answer = requests.post(
            storage(gateway, f"/object/sign/{BUCKET}/{name}"),
            json={"expiresIn": expires_in},
            headers=headers(gateway, token),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        signed: str = answer.json()["signedURL"]
        assert signed.startswith(f"/object/sign/{BUCKET}/{name}?token=")
        return signed

    lasting, brief = sign(600), sign(1)
    fetched = requests.get(storage(gateway, lasting), timeout=10)
    expired = wait_until(
        lambda: requests.get(storage(gateway, brief), timeout=10),
        lambda r: r.status_code != 200,
        within_s=5,
    )
    other_path = requests.get(storage(gateway, lasting.replace(name, outgoing(alice))), timeout=10)

    assert fetched.status_code == 200 and fetched.content == JPEG
    assert_storage_error(expired, "400", '"exp" claim timestamp check failed')
    assert expired.json()["code"] == "InvalidJWT"
    assert_storage_error(other_path, "400", "Invalid signature")


def test_the_bucket_refuses_what_is_too_large_or_of_another_type(
    gateway: Gateway, alice: devdb.DevUser
) -> None:
    token = gateway.token_for(alice)
    limit = 16 * 1024 * 1024

    at_limit = upload(gateway, token, outgoing(alice, ".mp4"), b"\0" * limit, "video/mp4")
    too_large = upload(gateway, token, outgoing(alice, ".mp4"), b"\0" * (limit + 1), "video/mp4")
    html = upload(gateway, token, outgoing(alice, ".html"), b"<p>hi</p>", "text/html")
    with_charset = upload(
        gateway, token, outgoing(alice, ".txt"), b"hi", "text/plain;charset=UTF-8"
    )
    plain = upload(gateway, token, outgoing(alice, ".txt"), b"hi", "text/plain")

    assert at_limit.status_code == 200, at_limit.text
    assert_storage_error(too_large, "413", "The object exceeded the maximum allowed size")
    assert_storage_error(html, "415", "mime type text/html is not supported")
    assert_storage_error(with_charset, "415", "mime type text/plain;charset=UTF-8 is not supported")
    assert plain.status_code == 200, plain.text


def test_an_existing_name_is_refused_unless_upserted_and_then_replaced(
    gateway: Gateway, stored_bytes: Path, alices_jpeg: tuple[str, str]
) -> None:
    name, token = alices_jpeg
    first = row(gateway, name)

    again = upload(gateway, token, name, b"\xff\xd8 second")
    upserted = upload(gateway, token, name, b"\xff\xd8 second", **{"x-upsert": "true"})
    second = row(gateway, name)

    assert_storage_error(again, "409", "The resource already exists")
    assert upserted.status_code == 200, upserted.text
    assert download(gateway, token, name).content == b"\xff\xd8 second"
    assert first is not None and second is not None
    assert not (stored_bytes / first["version"]).exists()
    assert (stored_bytes / second["version"]).exists()


def test_a_user_deletes_their_upload_and_its_bytes(
    gateway: Gateway, stored_bytes: Path, alices_jpeg: tuple[str, str]
) -> None:
    name, token = alices_jpeg
    stored = row(gateway, name)
    assert stored is not None

    deleted = requests.delete(
        storage(gateway, f"/object/{BUCKET}"),
        json={"prefixes": [name]},
        headers=headers(gateway, token),
        timeout=10,
    )

    assert deleted.status_code == 200
    assert [o["name"] for o in deleted.json()] == [name]
    assert row(gateway, name) is None
    assert not (stored_bytes / stored["version"]).exists()
    assert_storage_error(download(gateway, token, name), "404", "Object not found")


def test_the_page_may_call_storage_from_its_origin(gateway: Gateway) -> None:
    origin = gateway.url
    preflight = requests.options(
        storage(gateway, f"/object/{BUCKET}/x/outgoing/a.jpg"),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,apikey,content-type,x-upsert",
        },
        timeout=10,
    )

    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == origin
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "x-upsert" in allowed and "apikey" in allowed
