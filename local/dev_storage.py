"""The local stack's stand-in for Supabase Storage, for the part of its API the product uses.

Supabase Storage keeps an object's bytes in a backend and its row in ``storage.objects``, and
asks the database, as the caller, whether the caller may touch that row: the bucket's policies
decide. This stand-in does the same with the same rows: each request's token is checked
(HS256 with the stack's JWT secret, as a legacy-secret project's tokens and API keys are), then
its statements run in one transaction with ``role`` and ``request.jwt.claims`` set from the
token, as Storage sets them. A user's token runs as ``authenticated`` under RLS; the service
key runs as ``service_role``, which bypasses RLS. Bytes go to a folder on disk, one file per
upload (named by the object's ``version``, so a name never becomes a path).

Routes (under ``/storage/v1``), as Storage's:

* ``POST /object/<bucket>/<name>``: upload; the body is the bytes (``Content-Type`` their
  type, ``Cache-Control``, ``x-metadata``), or ``multipart/form-data`` with the file as its
  first file part (``cacheControl``, ``contentType`` and ``metadata`` fields before it), as
  supabase-js sends a ``Blob`` and supabase-py every upload; ``x-upsert: true`` to replace;
  answers ``{"Id", "Key"}``. ``PUT`` is the same with upsert (supabase-js's ``update``);
* ``GET /object/authenticated/<bucket>/<name>``, ``GET /object/<bucket>/<name>`` and, for a
  public bucket, ``GET /object/public/<bucket>/<name>``: download (``?download[=<file
  name>]`` adds ``Content-Disposition: attachment``); ``HEAD`` on the first two: the headers
  alone (supabase-js's ``exists``);
* ``GET /object/info/[authenticated/]<bucket>/<name>``: the object's details;
* ``POST /object/list/<bucket>`` ``{"prefix", "limit", "offset", "sortBy", "search"}``: the
  folders and files one level under the prefix, as ``storage.search`` answers;
* ``POST /object/sign/<bucket>/<name>`` ``{"expiresIn": <s>}`` (a number or, as Storage
  coerces it, a numeric string): ``{"signedURL": "/object/sign/<bucket>/<name>?token=<jwt>"}``;
  the token (HS256, ``{"url": "<bucket>/<name>", "scope": "download", "iat", "exp"}``) is the
  only credential ``GET /object/sign/<bucket>/<name>?token=...`` needs;
  ``POST /object/sign/<bucket>`` ``{"expiresIn", "paths"}`` signs several;
* ``POST /object/move`` and ``POST /object/copy`` ``{"bucketId", "sourceKey",
  "destinationKey", "destinationBucket"}``;
* ``DELETE /object/<bucket>`` ``{"prefixes": [<name>, ...]}``: answers the deleted objects.

Anything else (buckets, signed uploads, image transforms, resumable and S3 uploads) is
answered as Storage answers a route it does not have: ``404`` ``Route <METHOD>:<url> not
found``. Downloads carry ``X-Content-Type-Options: nosniff`` and ``X-Robots-Tag: none``, and
``text/html`` is served as ``text/plain``, so no object is ever a page of the stack's origin.

Errors have Storage's shape, ``{"statusCode": "<status>", "code", "error", "message"}``, and,
as Storage answers, HTTP 400 whatever the ``statusCode`` in the body (500 stays 500, and a
database timeout is 544): an object the caller may not read is ``"404"`` ``Object not found``,
as if it did not exist. The bucket's ``file_size_limit`` (``"413"``) and
``allowed_mime_types`` (``"415"``) are checked before the policies, for every caller. Database
errors are rendered as Storage renders them (its ``DBError.fromDBError``). Exists only in the
local stack.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import jwt
import psycopg
from psycopg.rows import dict_row

from local import api_caller
from local.api_caller import Caller
from local.function_url import HttpResponse

PREFIX = "/storage/v1"
# Supabase Storage's global upload limit on the free plan; a bucket's own limit may be lower.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# The characters Storage accepts in an object name (its VALID_OBJECT_KEY).
_VALID_NAME = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
_SIGNED_SCOPE = "download"
_LIST_LIMIT = 1500  # storage.search's cap
_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
# Storage's routes under /object/ that begin with a word, not a bucket.
_ROUTE_WORDS = {
    "authenticated",
    "copy",
    "info",
    "list",
    "list-v2",
    "move",
    "public",
    "sign",
    "upload",
}
_NOT_SIGNED = "Either the object does not exist or you do not have access to it"
_OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata,"
    " created_at, updated_at, last_accessed_at"
)


class StorageError(Exception):
    """An answer in Storage's error shape. ``status`` is what goes in the body's
    ``statusCode``; the HTTP status is 400 for every such error but a 500, unless Storage
    gives the error its own (``http_status``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        error: str | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error = error or code
        self.http_status = http_status or (500 if status == 500 else 400)

    def response(self) -> HttpResponse:
        body = {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }
        return _json(self.http_status, body)


def _access_denied(message: str) -> StorageError:
    return StorageError(403, "AccessDenied", message, "Unauthorized")


def _no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def _no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def too_large() -> StorageError:
    return StorageError(
        413, "EntityTooLarge", "The object exceeded the maximum allowed size", "Payload too large"
    )


def _bad_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message, "Bad Request")


def _from_database(exc: psycopg.Error) -> StorageError:
    """A database error as Storage renders it (its DBError.fromDBError)."""
    code = exc.sqlstate
    message = str(exc.diag.message_primary or "")
    if code is None:  # no answer from the database at all
        return StorageError(500, "DatabaseError", "The database is unavailable")
    if code == "42501":
        if "row-level security" in message:
            message = "new row violates row-level security policy"
        return _access_denied(message)
    if code == "23505":
        return StorageError(
            409, "ResourceAlreadyExists", "The resource already exists", "Duplicate"
        )
    if code == "57014":
        return StorageError(
            544,
            "DatabaseTimeout",
            "The connection to the database timed out",
            http_status=544,
        )
    if code in ("55P03", "resource_locked"):
        return StorageError(423, "ResourceLocked", "The resource is locked")
    if code == "25006":
        return StorageError(
            503,
            "DatabaseReadOnly",
            "The database is currently in read-only mode. Please try again later.",
        )
    if code == "22P02":
        return StorageError(400, "InvalidParameter", message or "Invalid Parameter value")
    return StorageError(500, "DatabaseError", f"database error, code: {code}")


@dataclass(frozen=True)
class Upload:
    bucket: str
    name: str
    data: bytes
    mimetype: str
    cache_control: str
    upsert: bool
    user_metadata: dict[str, Any] | None = None


@dataclass
class _Request:
    method: str
    route: str  # the path under /storage/v1, still percent-encoded
    query: str
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.params = parse_qs(self.query, keep_blank_values=True)

    def json(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise _bad_request("Body is not valid JSON") from exc
        if not isinstance(payload, dict):
            raise _bad_request("body must be object")
        return payload

    @property
    def download(self) -> str | None:
        values = self.params.get("download")
        return values[0] if values else None


class DevStorage:
    """Answers ``/storage/v1/...`` requests; thread-safe (no state but the folder)."""

    def __init__(self, dsn: str, *, jwt_secret: str, data_dir: Path) -> None:
        self.dsn = dsn
        self.jwt_secret = jwt_secret
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse:
        request = _Request(method, path.removeprefix(PREFIX), query, headers, body)
        try:
            return self._route(request)
        except StorageError as exc:
            return exc.response()
        except psycopg.Error as exc:
            return _from_database(exc).response()
        except Exception:  # what Storage answers for anything it did not expect
            return StorageError(
                500, "InternalError", "Internal Server Error", "Internal"
            ).response()

    def _route(self, request: _Request) -> HttpResponse:
        method, route = request.method, request.route
        parts = route.removeprefix("/object/").split("/") if route.startswith("/object/") else []
        first = parts[0] if parts else ""
        rest = "/".join(parts[1:])
        if method == "POST" and first in ("move", "copy") and len(parts) == 1:
            return self.move_or_copy(self._caller(request.headers), request, copy=first == "copy")
        if method == "POST" and first == "list" and len(parts) == 2:
            return self.list(self._caller(request.headers), unquote(parts[1]), request.json())
        if method == "POST" and first == "sign" and len(parts) == 2:
            return self.sign_many(self._caller(request.headers), unquote(parts[1]), request.json())
        if method == "POST" and first == "sign" and len(parts) > 2:
            bucket, name = _bucket_and_name(rest)
            return self.sign(self._caller(request.headers), bucket, name, request.json())
        if method == "GET" and first == "sign" and len(parts) > 2:
            bucket, name = _bucket_and_name(rest)
            token = request.params.get("token", [""])[0]
            return self.download_signed(bucket, name, token, request.download)
        if method == "GET" and first == "info" and len(parts) > 2:
            if parts[1] == "authenticated" and len(parts) > 3:
                caller = self._caller(request.headers)
                rest = "/".join(parts[2:])
            else:  # Storage takes an invalid token here as no token
                caller = self._caller(request.headers, anon_if_invalid=True)
            bucket, name = _bucket_and_name(rest)
            return self.info(caller, bucket, name)
        if method == "GET" and first == "public" and len(parts) > 2:
            bucket, name = _bucket_and_name(rest)
            return self.download(api_caller.ANON, bucket, name, request.download, public=True)
        if method in ("GET", "HEAD") and first == "authenticated" and len(parts) > 2:
            bucket, name = _bucket_and_name(rest)
            caller = self._caller(request.headers)
            return self.download(caller, bucket, name, request.download, head=method == "HEAD")
        if first in _ROUTE_WORDS:
            pass  # a route of Storage's this stand-in leaves out
        elif method in ("GET", "HEAD") and len(parts) > 1:
            bucket, name = _bucket_and_name("/".join(parts))
            caller = self._caller(request.headers, anon_if_invalid=True)
            return self.download(caller, bucket, name, request.download, head=method == "HEAD")
        elif method in ("POST", "PUT") and len(parts) > 1:
            bucket, name = _bucket_and_name("/".join(parts))
            upsert = method == "PUT" or request.headers.get("x-upsert", "").lower() == "true"
            upload = _upload_of(request, bucket, name, upsert)
            return self.upload(self._caller(request.headers), upload)
        elif method == "DELETE" and len(parts) == 1 and first:
            return self.delete(self._caller(request.headers), unquote(first), request.json())
        raise StorageError(
            404,
            "InvalidRequest",
            f"Route {method}:{route}{'?' + request.query if request.query else ''} not found",
            "Not Found",
            http_status=404,
        )

    # --- the caller ------------------------------------------------------------------------

    def _caller(self, headers: Mapping[str, str], *, anon_if_invalid: bool = False) -> Caller:
        """The caller the token names (see local.api_caller)."""
        try:
            return api_caller.caller_of(headers, self.jwt_secret)
        except api_caller.TokenRefused as exc:
            if anon_if_invalid:
                return api_caller.ANON
            raise _access_denied(_token_problem(exc.reason)) from exc

    def _as(self, conn: psycopg.Connection[Any], caller: Caller) -> None:
        """Run the rest of ``conn``'s transaction as ``caller``, as Storage does (which also
        lets its own deletes past the guard on ``storage.objects``)."""
        api_caller.run_as(conn, caller)
        conn.execute("select set_config('storage.allow_delete_query', 'true', true)")

    def _bucket(self, conn: psycopg.Connection[Any], bucket: str) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(
                "select id, public, file_size_limit, allowed_mime_types from storage.buckets"
                " where id = %s",
                (bucket,),
            ).fetchone()
        if row is None:
            raise _no_such_bucket()
        return row

    # --- upload ----------------------------------------------------------------------------

    def upload(self, caller: Caller, upload: Upload) -> HttpResponse:
        version = str(uuid.uuid4())
        try:
            row, previous = self._upload_row(caller, upload, version)
        except BaseException:
            self._path(version).unlink(missing_ok=True)
            raise
        if previous:
            self._path(previous).unlink(missing_ok=True)
        return _json(200, {"Id": row, "Key": f"{upload.bucket}/{upload.name}"})

    def _upload_row(self, caller: Caller, upload: Upload, version: str) -> tuple[str, str | None]:
        """Check the bucket's limits, write the row as the caller and the bytes; (the object's
        id, the version it replaced)."""
        bucket, name, data, content_type = upload.bucket, upload.name, upload.data, upload.mimetype
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            limits = self._bucket(conn, bucket)
            if limits["allowed_mime_types"]:
                _check_mime_type(content_type, limits["allowed_mime_types"])
            size_limit = min(limits["file_size_limit"] or MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES)
            if len(data) > size_limit:
                raise too_large()
            _check_name(name)
            previous = conn.execute(
                "select version from storage.objects where bucket_id = %s and name = %s for update",
                (bucket, name),
            ).fetchone()
            self._as(conn, caller)
            statement = (
                "insert into storage.objects"
                " (bucket_id, name, owner, owner_id, version, metadata, user_metadata)"
                " values (%s, %s, %s, %s, %s, %s, %s)"
            )
            if upload.upsert:
                statement += (
                    " on conflict (bucket_id, name) do update set version = excluded.version,"
                    " metadata = excluded.metadata, user_metadata = excluded.user_metadata,"
                    " owner = excluded.owner, owner_id = excluded.owner_id,"
                    " last_accessed_at = now()"
                )
            metadata = _metadata(data, content_type, upload.cache_control)
            params = (
                bucket,
                name,
                caller.user_id,
                caller.user_id,
                version,
                json.dumps(metadata),
                json.dumps(upload.user_metadata) if upload.user_metadata is not None else None,
            )
            row = conn.execute(statement + " returning id", params).fetchone()
            assert row is not None
            self._write(version, data)
        return str(row[0]), (previous[0] if previous else None)

    def _write(self, version: str, data: bytes) -> None:
        """The bytes of one upload; written before the row commits, removed if it does not."""
        path = self._path(version)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)

    def _path(self, version: str) -> Path:
        return self.data_dir / str(uuid.UUID(version))

    # --- download, head and info -----------------------------------------------------------

    def download(
        self,
        caller: Caller,
        bucket: str,
        name: str,
        download: str | None = None,
        *,
        head: bool = False,
        public: bool = False,
    ) -> HttpResponse:
        _check_name(name)
        row = self._readable(caller, bucket, name, public=public)
        extra = _disposition(download)
        if head:
            return self._serve(row, extra, body=False)
        return self._serve(row, extra)

    def info(self, caller: Caller, bucket: str, name: str) -> HttpResponse:
        _check_name(name)
        row = self._readable(caller, bucket, name)
        metadata = row.get("metadata") or {}
        return _json(
            200,
            {
                "id": str(row["id"]),
                "name": row["name"],
                "version": row["version"],
                "bucket_id": row["bucket_id"],
                "size": metadata.get("size"),
                "content_type": metadata.get("mimetype"),
                "cache_control": metadata.get("cacheControl"),
                "etag": metadata.get("eTag"),
                "metadata": row.get("user_metadata"),
                "last_modified": _iso(row.get("updated_at")),
                "created_at": _iso(row.get("created_at")),
            },
        )

    def _readable(
        self, caller: Caller, bucket: str, name: str, *, public: bool = False
    ) -> dict[str, Any]:
        """The object's row if the caller may read it: any caller in a public bucket, else
        as the bucket's policies decide; ``Bucket not found`` for a private bucket and a
        caller with no valid token."""
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            found = conn.execute(
                "select public from storage.buckets where id = %s", (bucket,)
            ).fetchone()
            if found is None or not (found[0] or (caller.verified and not public)):
                raise _no_such_bucket()
            if not found[0]:  # a private bucket: the caller's policies decide
                self._as(conn, caller)
            return self._find(conn, bucket, name)

    def _find(self, conn: psycopg.Connection[Any], bucket: str, name: str) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(
                f"select {_OBJECT_COLUMNS} from storage.objects where bucket_id = %s and name = %s",
                (bucket, name),
            ).fetchone()
        if row is None:
            raise _no_such_key()
        return row

    def _serve(
        self, row: Mapping[str, Any], extra: list[tuple[str, str]], *, body: bool = True
    ) -> HttpResponse:
        path = self._path(row["version"]) if row.get("version") else None
        if path is None or not path.is_file():
            raise _no_such_key()
        metadata = row.get("metadata") or {}
        updated = row.get("updated_at")
        mimetype = str(metadata.get("mimetype") or "application/octet-stream")
        headers = [
            # Storage never serves a page: HTML is sent as plain text.
            ("content-type", "text/plain" if "text/html" in mimetype else mimetype),
            ("cache-control", str(metadata.get("cacheControl") or "no-cache")),
            ("etag", str(metadata.get("eTag") or "")),
            ("accept-ranges", "bytes"),
            ("x-robots-tag", "none"),
            ("x-content-type-options", "nosniff"),
            *(
                [("last-modified", format_datetime(updated.astimezone(datetime.UTC), usegmt=True))]
                if updated
                else []
            ),
            *extra,
        ]
        if not body:
            size = path.stat().st_size
            return HttpResponse(200, [*headers, ("content-length", str(size))], b"")
        return HttpResponse(200, headers, path.read_bytes())

    # --- list ------------------------------------------------------------------------------

    def list(self, caller: Caller, bucket: str, body: dict[str, Any]) -> HttpResponse:
        prefix = body.get("prefix")
        if not isinstance(prefix, str):
            raise _bad_request("body must have required property 'prefix'")
        limit = _whole(body.get("limit", 100), "limit", minimum=1)
        offset = _whole(body.get("offset", 0), "offset", minimum=0)
        search = body.get("search") or ""
        sort = body.get("sortBy") or {}
        column = sort.get("column", "name") if isinstance(sort, dict) else None
        order = sort.get("order", "asc") if isinstance(sort, dict) else None
        if column not in _SORT_COLUMNS or order not in ("asc", "desc"):
            raise _bad_request("body/sortBy must name a column and an order")
        if not isinstance(search, str):
            raise _bad_request("body/search must be string")
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # a prefix is a folder
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._bucket(conn, bucket)
            self._as(conn, caller)
            with conn.cursor(row_factory=dict_row) as cursor:
                rows = cursor.execute(
                    "select name, id, updated_at, created_at, last_accessed_at, metadata"
                    " from storage.objects where bucket_id = %s"
                    " and starts_with(lower(name), lower(%s))",
                    (bucket, prefix + search),
                ).fetchall()
        folders: dict[str, None] = {}
        files: list[dict[str, Any]] = []
        for row in rows:
            relative = row["name"][len(prefix) :]
            if "/" in relative:
                folders[relative.split("/", 1)[0]] = None
            else:
                files.append({**row, "name": relative})
        entries = [_folder(name) for name in folders] + [_listed(row) for row in files]
        descending = order == "desc"
        if column == "name":
            entries.sort(key=lambda e: e["name"].lower(), reverse=descending)
        else:  # folders first, by name; then the files by the column
            entries.sort(key=lambda e: (e["id"] is not None, e["name"].lower()))
            some = [e for e in entries if e["id"] is not None]
            some.sort(key=lambda e: e[column] or "", reverse=descending)
            entries = [e for e in entries if e["id"] is None] + some
        return _json(200, entries[offset : offset + min(limit, _LIST_LIMIT)])

    # --- signed URLs -----------------------------------------------------------------------

    def sign(self, caller: Caller, bucket: str, name: str, body: dict[str, Any]) -> HttpResponse:
        expires_in = _expires_in(body)
        _check_name(name)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._as(conn, caller)
            self._find(conn, bucket, name)
        return _json(200, {"signedURL": self._signed_url(bucket, name, expires_in)})

    def sign_many(self, caller: Caller, bucket: str, body: dict[str, Any]) -> HttpResponse:
        expires_in = _expires_in(body)
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise _bad_request("body/paths must be a non-empty array of strings")
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._as(conn, caller)
            found = {
                r[0]
                for r in conn.execute(
                    "select name from storage.objects where bucket_id = %s and name = any(%s)",
                    (bucket, [p for p in paths if _VALID_NAME.match(p)]),
                ).fetchall()
            }
        return _json(
            200,
            [
                {
                    "error": None if path in found else _NOT_SIGNED,
                    "path": path,
                    "signedURL": self._signed_url(bucket, path, expires_in)
                    if path in found
                    else None,
                }
                for path in paths
            ],
        )

    def _signed_url(self, bucket: str, name: str, expires_in: int) -> str:
        now = int(time.time())
        token = jwt.encode(
            {
                "url": f"{bucket}/{name}",
                "scope": _SIGNED_SCOPE,
                "iat": now,
                "exp": now + expires_in,
            },
            self.jwt_secret,
            algorithm="HS256",
        )
        return f"/object/sign/{bucket}/{name}?token={token}"

    def download_signed(
        self, bucket: str, name: str, token: str, download: str | None
    ) -> HttpResponse:
        if not token:
            raise _bad_request("querystring must have required property 'token'")
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError as exc:
            raise StorageError(400, "InvalidJWT", _token_problem("expired")) from exc
        except jwt.InvalidSignatureError as exc:
            raise StorageError(400, "InvalidJWT", _token_problem("invalid_signature")) from exc
        except jwt.InvalidTokenError as exc:
            raise StorageError(400, "InvalidJWT", _token_problem("invalid")) from exc
        if claims.get("scope", _SIGNED_SCOPE) != _SIGNED_SCOPE or "upsert" in claims:
            raise StorageError(400, "InvalidSignature", f"Token is not scoped for {_SIGNED_SCOPE}")
        if claims.get("url") != f"{bucket}/{name}":
            raise StorageError(400, "InvalidSignature", "Invalid signature")
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            row = self._find(conn, bucket, name)
        expires = datetime.datetime.fromtimestamp(int(claims["exp"]), tz=datetime.UTC)
        return self._serve(
            row, [("expires", format_datetime(expires, usegmt=True)), *_disposition(download)]
        )

    # --- move, copy, delete ----------------------------------------------------------------

    def move_or_copy(self, caller: Caller, request: _Request, *, copy: bool) -> HttpResponse:
        body = request.json()
        for key in ("bucketId", "sourceKey", "destinationKey"):
            if not isinstance(body.get(key), str):
                raise _bad_request(f"body must have required property '{key}'")
        bucket, source, destination = body["bucketId"], body["sourceKey"], body["destinationKey"]
        target_bucket = body.get("destinationBucket") or bucket
        if not isinstance(target_bucket, str):
            raise _bad_request("body/destinationBucket must be string")
        _check_name(source)
        _check_name(destination)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._bucket(conn, target_bucket)
            self._as(conn, caller)
            found = self._find(conn, bucket, source)
            if copy:
                return self._copy(conn, caller, found, target_bucket, destination, request)
            with conn.cursor(row_factory=dict_row) as cursor:
                moved = cursor.execute(
                    "update storage.objects set bucket_id = %s, name = %s, owner = %s,"
                    " owner_id = %s where bucket_id = %s and name = %s returning id",
                    (
                        target_bucket,
                        destination,
                        caller.user_id,
                        caller.user_id,
                        bucket,
                        source,
                    ),
                ).fetchone()
            if moved is None:  # visible, but not the caller's to change
                raise _no_such_key()
        return _json(
            200, {"message": "Successfully moved", "Id": str(moved["id"]), "Key": destination}
        )

    def _copy(
        self,
        conn: psycopg.Connection[Any],
        caller: Caller,
        source: dict[str, Any],
        bucket: str,
        name: str,
        request: _Request,
    ) -> HttpResponse:
        version = str(uuid.uuid4())
        statement = (
            "insert into storage.objects"
            " (bucket_id, name, owner, owner_id, version, metadata, user_metadata)"
            " values (%s, %s, %s, %s, %s, %s, %s)"
        )
        if request.headers.get("x-upsert", "").lower() == "true":
            statement += (
                " on conflict (bucket_id, name) do update set version = excluded.version,"
                " metadata = excluded.metadata, user_metadata = excluded.user_metadata"
            )
        metadata = source.get("metadata")
        user_metadata = source.get("user_metadata")
        with conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(
                statement + f" returning {_OBJECT_COLUMNS}",
                (
                    bucket,
                    name,
                    caller.user_id,
                    caller.user_id,
                    version,
                    json.dumps(metadata) if metadata is not None else None,
                    json.dumps(user_metadata) if user_metadata is not None else None,
                ),
            ).fetchone()
        assert row is not None
        original = self._path(source["version"])
        if not original.is_file():
            raise _no_such_key()
        try:
            shutil.copyfile(original, self._path(version))
        except BaseException:
            self._path(version).unlink(missing_ok=True)
            raise
        return _json(200, {"Id": str(row["id"]), "Key": f"{bucket}/{name}", **_object_json(row)})

    def delete(self, caller: Caller, bucket: str, body: dict[str, Any]) -> HttpResponse:
        prefixes = body.get("prefixes")
        if (
            not isinstance(prefixes, list)
            or not prefixes
            or not all(isinstance(p, str) for p in prefixes)
        ):
            raise _bad_request("body/prefixes must be a non-empty array of strings")
        names = [p for p in prefixes if _VALID_NAME.match(p)]
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._as(conn, caller)
            with conn.cursor(row_factory=dict_row) as cursor:
                deleted = cursor.execute(
                    "delete from storage.objects where bucket_id = %s and name = any(%s)"
                    f" returning {_OBJECT_COLUMNS}",
                    (bucket, names),
                ).fetchall()
        for row in deleted:
            if row["version"]:
                self._path(row["version"]).unlink(missing_ok=True)
        return _json(200, [_object_json(row) for row in deleted])


def _upload_of(request: _Request, bucket: str, name: str, upsert: bool) -> Upload:
    """What an upload request carries: the raw bytes, or the first file of a multipart form
    with the fields before it, as Storage reads them."""
    content_type = request.headers.get("content-type") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        return Upload(
            bucket=bucket,
            name=name,
            data=request.body,
            mimetype=content_type or "application/octet-stream",
            cache_control=request.headers.get("cache-control") or "no-cache",
            upsert=upsert,
            user_metadata=_user_metadata(request.headers.get("x-metadata")),
        )
    form = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body
    )
    fields: dict[str, str] = {}
    parts = form.iter_parts() if isinstance(form, EmailMessage) and form.is_multipart() else []
    for part in parts:
        if part.get_param("filename", header="content-disposition") is None:
            field_name = str(part.get_param("name", "", header="content-disposition"))
            fields.setdefault(field_name, str(part.get_content()).strip())
            continue
        data = part.get_payload(decode=True)
        cache_time = fields.get("cacheControl")
        return Upload(
            bucket=bucket,
            name=name,
            data=data if isinstance(data, bytes) else b"",
            mimetype=fields.get("contentType") or part.get_content_type(),
            cache_control=f"max-age={cache_time}" if cache_time else "no-cache",
            upsert=upsert,
            user_metadata=_json_object(fields.get("metadata") or fields.get("userMetadata")),
        )
    raise _bad_request("No content provided")


def _user_metadata(header: str | None) -> dict[str, Any] | None:
    """``x-metadata``: base64 of a JSON object, as supabase-js sends it; else none."""
    if not header:
        return None
    try:
        return _json_object(base64.b64decode(header).decode("utf-8"))
    except ValueError:
        return None


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _metadata(data: bytes, content_type: str, cache_control: str) -> dict[str, Any]:
    return {
        "eTag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
        "size": len(data),
        "mimetype": content_type,
        "cacheControl": cache_control,
        "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "contentLength": len(data),
        "httpStatusCode": 200,
    }


def _expires_in(body: dict[str, Any]) -> int:
    """``expiresIn``: a whole number of seconds, 1 or more; a numeric string is taken as its
    number, as Storage's request validation coerces it."""
    value = body.get("expiresIn")
    if value is None:
        raise _bad_request("body must have required property 'expiresIn'")
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad_request("body/expiresIn must be integer")
    if value < 1:
        raise StorageError(400, "InvalidParameter", "Invalid Parameter expiresIn")
    return value


def _whole(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad_request(f"body/{name} must be >= {minimum}")
    return value


def _disposition(download: str | None) -> list[tuple[str, str]]:
    """``?download``: ``attachment``, with the file name when one is given."""
    if download is None:
        return []
    if not download:
        return [("content-disposition", "attachment;")]
    encoded = quote(download, safe="-_.!~*'()")
    return [("content-disposition", f"attachment; filename={encoded}; filename*=UTF-8''{encoded}")]


def _folder(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": None,
        "updated_at": None,
        "created_at": None,
        "last_accessed_at": None,
        "metadata": None,
    }


def _listed(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "id": str(row["id"]),
        "updated_at": _iso(row["updated_at"]),
        "created_at": _iso(row["created_at"]),
        "last_accessed_at": _iso(row["last_accessed_at"]),
        "metadata": row["metadata"],
    }


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _bucket_and_name(rest: str) -> tuple[str, str]:
    bucket, _, name = rest.partition("/")
    return unquote(bucket), unquote(name)


def _check_name(name: str) -> None:
    if not _VALID_NAME.match(name):
        raise StorageError(400, "InvalidKey", f"Invalid key: {name}")


def _check_mime_type(content_type: str, allowed: list[str]) -> None:
    """Storage's rule: ``type/subtype`` exactly as listed, or ``type/*``; parameters such as
    ``; charset=`` are part of the subtype, so they do not match."""
    kind, _, subtype = content_type.partition("/")
    for entry in allowed:
        allowed_kind, _, allowed_subtype = entry.partition("/")
        if subtype and allowed_kind == kind and allowed_subtype in ("*", subtype):
            return
    raise StorageError(
        415, "InvalidMimeType", f"mime type {content_type} is not supported", "invalid_mime_type"
    )


def _token_problem(reason: str) -> str:
    if reason == "expired":
        return '"exp" claim timestamp check failed'
    if reason == "invalid_signature":
        return "signature verification failed"
    if reason == "role":
        return "Access denied: Invalid role"
    return "Invalid Compact JWS"


def _object_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: (str(value) if key in ("id", "owner") and value is not None else value)
        for key, value in row.items()
    } | {
        key: row[key].isoformat()
        for key in ("created_at", "updated_at", "last_accessed_at")
        if row.get(key) is not None
    }


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps(body).encode("utf-8")
    )
