"""Storage's stand-in (``local/dev_storage.py``) as supabase-js and supabase-py use it: uploads
of bytes, a Blob, a stream and multipart from Python; download, list, info, exists, signed
URLs (with ``download``), move, copy, update, remove; and what it leaves out, answered as
Storage answers a route it does not have."""

from __future__ import annotations

import base64
import os

import pytest
import requests
from storage3.exceptions import StorageApiError
from supabase import Client

from local import devdb
from tests.conftest import Gateway
from tests.contract.conftest import BUCKET, cancelled_while_locked, run_js

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(4096)


def test_supabase_js_uploads_lists_signs_moves_and_removes(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    folder = f"{user.id}/outgoing"
    out = run_js(
        gateway,
        "storage",
        email=user.email,
        password="password",
        userId=user.id,
        jpeg=base64.b64encode(JPEG).decode(),
    )

    for kind in ("Bytes", "Blob", "Stream"):
        uploaded = out[f"upload{kind}"]
        assert uploaded["error"] is None, uploaded
        assert uploaded["data"]["fullPath"] == f"{BUCKET}/{folder}/{kind.lower()}.jpg"
        downloaded = out[f"download_{kind.lower()}"]
        assert base64.b64decode(downloaded["bytes"]) == JPEG, kind

    listed = out["list"]["data"]
    assert [entry["name"] for entry in listed] == ["stream.jpg", "bytes.jpg", "blob.jpg"]
    assert all(entry["id"] and entry["metadata"]["size"] == len(JPEG) for entry in listed)
    assert all(entry["metadata"]["mimetype"] == "image/jpeg" for entry in listed)
    assert out["listRoot"]["data"] == [
        {
            "name": "outgoing",
            "id": None,
            "updated_at": None,
            "created_at": None,
            "last_accessed_at": None,
            "metadata": None,
        }
    ]
    assert [entry["name"] for entry in out["listSearch"]["data"]] == ["blob.jpg", "bytes.jpg"]

    info = out["info"]["data"]
    assert info["name"] == f"{folder}/bytes.jpg" and info["bucketId"] == BUCKET
    assert (info["size"], info["contentType"]) == (len(JPEG), "image/jpeg")
    assert (out["exists"]["data"], out["exists"]["error"]) == (True, None)
    assert out["existsNot"]["data"] is False

    assert "download=photo.jpg" in out["signed"]["data"]["signedUrl"]
    assert out["signedFetch"] == {
        "status": 200,
        "disposition": "attachment; filename=photo.jpg; filename*=UTF-8''photo.jpg",
        "nosniff": "nosniff",
        "size": len(JPEG),
    }
    found, missing = out["signedMany"]["data"]
    assert found["error"] is None and found["signedURL"].startswith(
        f"/object/sign/{BUCKET}/{folder}/blob.jpg?token="
    )
    assert (missing["signedURL"], missing["error"]) == (
        None,
        "Either the object does not exist or you do not have access to it",
    )

    assert out["move"]["data"]["message"] == "Successfully moved"
    # Out of the user's folder: the bucket's policy refuses the moved row.
    assert out["moveOut"]["error"]["statusCode"] == "403"
    assert out["copy"]["data"]["path"] == f"{BUCKET}/{folder}/copied.jpg"
    assert out["update"]["error"] is None
    assert base64.b64decode(out["download_copied"]["bytes"]) == b"\xff\xd8 updated"
    assert sorted(o["name"] for o in out["remove"]["data"]) == sorted(
        f"{folder}/{n}.jpg" for n in ("bytes", "blob", "moved", "copied")
    )
    assert out["listAfter"]["data"] == []
    # Signed upload URLs are left out: Storage's answer for a route it does not have.
    refused = out["signedUpload"]["error"]
    assert (refused["status"], refused["statusCode"]) == (404, "404")
    assert refused["message"].startswith("Route POST:/object/upload/sign/")


def test_supabase_py_uploads_multipart_and_signs_a_download(
    gateway: Gateway, user: devdb.DevUser, signed_in: Client
) -> None:
    files = signed_in.storage.from_(BUCKET)
    name = f"{user.id}/outgoing/report.pdf"

    uploaded = files.upload(name, b"%PDF-1.4 report", {"content-type": "application/pdf"})
    assert uploaded.full_path == f"{BUCKET}/{name}"
    assert files.download(name) == b"%PDF-1.4 report"
    assert files.exists(name) is True and files.exists(f"{name}.missing") is False
    assert files.info(name)["content_type"] == "application/pdf"
    assert [e["name"] for e in files.list(f"{user.id}/outgoing")] == ["report.pdf"]

    signed = files.create_signed_url(name, 60, {"download": "Report.pdf"})
    fetched = requests.get(signed["signedURL"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == b"%PDF-1.4 report"
    assert fetched.headers["content-disposition"].startswith("attachment; filename=Report.pdf")
    many = files.create_signed_urls([name], 60)
    assert requests.get(many[0]["signedURL"], timeout=10).content == b"%PDF-1.4 report"

    files.move(name, f"{user.id}/outgoing/moved.pdf")
    with pytest.raises(StorageApiError) as gone:
        files.download(name)
    assert (gone.value.status, gone.value.code) == ("404", "not_found")
    removed = files.remove([f"{user.id}/outgoing/moved.pdf"])
    assert [o["name"] for o in removed] == [f"{user.id}/outgoing/moved.pdf"]


def test_a_cancelled_storage_statement_is_storages_database_timeout(
    gateway: Gateway, user: devdb.DevUser, signed_in: Client, database: str
) -> None:
    """57014 is Storage's DatabaseTimeout (544), not the database being unreachable."""
    files = signed_in.storage.from_(BUCKET)
    error = cancelled_while_locked(
        database,
        "storage.objects",
        lambda: files.upload(f"{user.id}/outgoing/x.jpg", JPEG, {"content-type": "image/jpeg"}),
    )

    assert isinstance(error, StorageApiError), error
    assert (error.status, error.code) == ("544", "DatabaseTimeout")
