"""The functions' Storage client (``wa_gateway.media.storage``) against the local Storage API:
the service key writes anywhere in the bucket, within the bucket's limits."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
import requests

from local import devdb
from tests.conftest import Gateway
from wa_gateway.errors import StoreUnavailable
from wa_gateway.media.storage import MediaStore, StorageRefused


@pytest.fixture()
def media(gateway: Gateway) -> MediaStore:
    return MediaStore(f"{gateway.url}/storage/v1", gateway.local_secrets.service_role_key)


def received(user: devdb.DevUser, name: str = "photo one.jpg") -> str:
    return f"{user.id}/{uuid.uuid4()}/{name}"


def test_bytes_stored_with_the_service_key_come_back_the_same(
    media: MediaStore, alice: devdb.DevUser
) -> None:
    path = received(alice)
    data = os.urandom(64 * 1024)

    key = media.upload(path, data, "image/jpeg")
    stored = media.download(path)

    assert key == f"whatsapp-media/{path}"
    assert hashlib.sha256(stored.data).digest() == hashlib.sha256(data).digest()
    assert stored.mime_type == "image/jpeg"


def test_the_user_reads_what_the_service_stored_under_their_id(
    gateway: Gateway, media: MediaStore, alice: devdb.DevUser
) -> None:
    path = received(alice, "voice.ogg")
    media.upload(path, b"OggS", "audio/ogg")

    read = requests.get(
        f"{gateway.url}/storage/v1/object/authenticated/whatsapp-media/{path}",
        headers={"Authorization": f"Bearer {gateway.token_for(alice)}"},
        timeout=10,
    )

    assert read.status_code == 200 and read.content == b"OggS"


def test_refusals_carry_the_status_storage_names(media: MediaStore, alice: devdb.DevUser) -> None:
    path = received(alice)
    media.upload(path, b"\xff\xd8", "image/jpeg")

    with pytest.raises(StorageRefused) as missing:
        media.download(received(alice))
    with pytest.raises(StorageRefused) as existing:
        media.upload(path, b"\xff\xd8 again", "image/jpeg")
    with pytest.raises(StorageRefused) as wrong_type:
        media.upload(received(alice, "page.html"), b"<p>", "text/html")

    assert (missing.value.status, str(missing.value)) == (404, "Object not found")
    assert existing.value.status == 409
    assert wrong_type.value.status == 415
    media.upload(path, b"\xff\xd8 again", "image/jpeg", upsert=True)
    assert media.download(path).data == b"\xff\xd8 again"


def test_delete_answers_what_existed(media: MediaStore, alice: devdb.DevUser) -> None:
    path = received(alice)
    media.upload(path, b"\xff\xd8", "image/jpeg")

    deleted = media.delete([path, received(alice)])

    assert deleted == [path]
    with pytest.raises(StorageRefused):
        media.download(path)


def test_an_unreachable_storage_is_unavailable_and_the_key_stays_out_of_the_error() -> None:
    key = "sentinel-service-key-" + uuid.uuid4().hex
    media = MediaStore("http://127.0.0.1:9/storage/v1", key)

    with pytest.raises(StoreUnavailable) as failed:
        media.download("x/outgoing/a.jpg")

    assert key not in str(failed.value) and key not in repr(media)
