"""The local stack's stand-in for Supabase Storage, for the part of its API the product uses.

Supabase Storage keeps an object's bytes in a backend and its row in ``storage.objects``, and
asks the database, as the caller, whether the caller may touch that row: the bucket's policies
decide. This stand-in does the same with the same rows: each request's token is checked
(HS256 with the stack's JWT secret, as a legacy-secret project's tokens and API keys are), then
its statements run in one transaction with ``role`` and ``request.jwt.claims`` set from the
token, as Storage sets them. A user's token runs as ``authenticated`` under RLS; the service
key runs as ``service_role``, which bypasses RLS. Bytes go to a folder on disk, one file per
upload (named by the object's ``version``, so a name never becomes a path).

Routes (under ``/storage/v1``):

* ``POST /object/<bucket>/<name>``: upload; body = the bytes, ``Content-Type`` their type,
  ``x-upsert: true`` to replace; answers ``{"Id", "Key"}``;
* ``GET /object/authenticated/<bucket>/<name>`` and ``GET /object/<bucket>/<name>``: download;
* ``POST /object/sign/<bucket>/<name>`` ``{"expiresIn": <s>}``: answers
  ``{"signedURL": "/object/sign/<bucket>/<name>?token=<jwt>"}``; the token (HS256,
  ``{"url": "<bucket>/<name>", "scope": "download", "iat", "exp"}``) is the only credential
  ``GET /object/sign/<bucket>/<name>?token=...`` needs;
* ``DELETE /object/<bucket>`` ``{"prefixes": [<name>, ...]}``: answers the deleted objects.

Errors have Storage's shape, ``{"statusCode": "<status>", "code", "error", "message"}``, and,
as Storage answers, HTTP 400 whatever the ``statusCode`` in the body (500 stays 500): an object
the caller may not read is ``"404"`` ``Object not found``, as if it did not exist. The bucket's
``file_size_limit`` (``"413"``) and ``allowed_mime_types`` (``"415"``) are checked before the
policies, for every caller. Exists only in the local stack.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
import psycopg
from psycopg.rows import dict_row

from local.function_url import HttpResponse

PREFIX = "/storage/v1"
# Supabase Storage's global upload limit on the free plan; a bucket's own limit may be lower.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# The characters Storage accepts in an object name (its VALID_OBJECT_KEY).
_VALID_NAME = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
_API_ROLES = ("anon", "authenticated", "service_role")
_SIGNED_SCOPE = "download"
_OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata,"
    " created_at, updated_at, last_accessed_at"
)


class StorageError(Exception):
    """An answer in Storage's error shape. ``status`` is what goes in the body's
    ``statusCode``; the HTTP status is 400 for every such error but a 500."""

    def __init__(self, status: int, code: str, message: str, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error = error or code

    def response(self) -> HttpResponse:
        body = {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }
        return _json(500 if self.status == 500 else 400, body)


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


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]
    verified: bool = True  # False: no valid token, on a route that takes anyone

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


@dataclass(frozen=True)
class Upload:
    bucket: str
    name: str
    data: bytes
    mimetype: str  # the request's Content-Type, as sent
    cache_control: str
    upsert: bool


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
        route = path.removeprefix(PREFIX)
        try:
            return self._route(method, route, query, headers, body)
        except StorageError as exc:
            return exc.response()
        except psycopg.OperationalError:
            return StorageError(
                500, "DatabaseError", "The local database is unavailable"
            ).response()
        except Exception:  # what Storage answers for anything it did not expect
            return StorageError(
                500, "InternalError", "Internal Server Error", "Internal"
            ).response()

    def _route(
        self, method: str, route: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse:
        parts = route.removeprefix("/object/").split("/", 1) if route.startswith("/object/") else []
        if method == "POST" and parts and parts[0] == "sign" and len(parts) == 2:
            bucket, name = _bucket_and_name(parts[1])
            return self.sign(self._caller(headers), bucket, name, body)
        if method == "GET" and parts and parts[0] == "sign" and len(parts) == 2:
            bucket, name = _bucket_and_name(parts[1])
            return self.download_signed(bucket, name, parse_qs(query).get("token", [""])[0])
        if method == "GET" and parts and parts[0] == "authenticated" and len(parts) == 2:
            bucket, name = _bucket_and_name(parts[1])
            return self.download(self._caller(headers), bucket, name)
        if method == "GET" and len(parts) == 2:
            bucket, name = _bucket_and_name("/".join(parts))
            return self.download(self._caller(headers, anon_if_missing=True), bucket, name)
        if method == "POST" and len(parts) == 2:
            bucket, name = _bucket_and_name("/".join(parts))
            upload = Upload(
                bucket=bucket,
                name=name,
                data=body,
                mimetype=headers.get("content-type") or "application/octet-stream",
                cache_control=headers.get("cache-control") or "no-cache",
                upsert=headers.get("x-upsert", "").lower() == "true",
            )
            return self.upload(self._caller(headers), upload)
        if method == "DELETE" and len(parts) == 1 and parts[0]:
            return self.delete(self._caller(headers), unquote(parts[0]), body)
        return _json(
            404,
            {
                "statusCode": 404,
                "error": "Not Found",
                "message": f"Route {method}:{route} not found",
            },
        )

    # --- the caller ------------------------------------------------------------------------

    def _caller(self, headers: Mapping[str, str], *, anon_if_missing: bool = False) -> Caller:
        """The token's role and claims. The token is the ``Authorization`` bearer, or else the
        ``apikey`` (a legacy API key is itself a token)."""
        scheme, _, bearer = (headers.get("authorization") or "").partition(" ")
        token = bearer.strip() if scheme.lower() == "bearer" else ""
        token = token or (headers.get("apikey") or "").strip()
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.jwt_secret, algorithms=["HS256"], options={"verify_aud": False}
            )
        except jwt.InvalidTokenError as exc:
            if anon_if_missing:
                return Caller("anon", {"role": "anon"}, verified=False)
            raise _access_denied(_token_problem(exc)) from exc
        role = claims.get("role")
        if role not in _API_ROLES:
            raise _access_denied("Access denied: Invalid role")
        return Caller(str(role), claims)

    def _as(self, conn: psycopg.Connection[Any], caller: Caller) -> None:
        """Run the rest of ``conn``'s transaction as ``caller``, as Storage does."""
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claim.role', %s, true),"
            " set_config('request.jwt.claim.sub', %s, true),"
            " set_config('request.jwt.claims', %s, true),"
            " set_config('storage.allow_delete_query', 'true', true)",
            (caller.role, caller.role, caller.user_id or "", json.dumps(caller.claims)),
        )

    def _bucket(self, conn: psycopg.Connection[Any], bucket: str) -> dict[str, Any]:
        row = conn.execute(
            "select id, public, file_size_limit, allowed_mime_types from storage.buckets"
            " where id = %s",
            (bucket,),
        ).fetchone()
        if row is None:
            raise _no_such_bucket()
        return dict(
            zip(("id", "public", "file_size_limit", "allowed_mime_types"), row, strict=True)
        )

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
            metadata = {
                "eTag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
                "size": len(data),
                "mimetype": content_type,
                "cacheControl": upload.cache_control,
                "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "contentLength": len(data),
                "httpStatusCode": 200,
            }
            self._as(conn, caller)
            statement = (
                "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata)"
                " values (%s, %s, %s, %s, %s, %s)"
            )
            if upload.upsert:
                statement += (
                    " on conflict (bucket_id, name) do update set version = excluded.version,"
                    " metadata = excluded.metadata, owner = excluded.owner,"
                    " owner_id = excluded.owner_id, last_accessed_at = now()"
                )
            params = (bucket, name, caller.user_id, caller.user_id, version, json.dumps(metadata))
            with _database_errors():
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

    # --- download --------------------------------------------------------------------------

    def download(self, caller: Caller, bucket: str, name: str) -> HttpResponse:
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            found = conn.execute(
                "select public from storage.buckets where id = %s", (bucket,)
            ).fetchone()
            if found is None or not (found[0] or caller.verified):
                raise _no_such_bucket()
            if not found[0]:  # a private bucket: the caller's policies decide
                self._as(conn, caller)
            row = self._find(conn, bucket, name)
        return self._serve(row)

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
        self, row: Mapping[str, Any], extra: list[tuple[str, str]] | None = None
    ) -> HttpResponse:
        path = self._path(row["version"]) if row.get("version") else None
        if path is None or not path.is_file():
            raise _no_such_key()
        data = path.read_bytes()
        metadata = row.get("metadata") or {}
        updated = row.get("updated_at")
        headers = [
            ("content-type", str(metadata.get("mimetype") or "application/octet-stream")),
            ("cache-control", str(metadata.get("cacheControl") or "no-cache")),
            ("etag", str(metadata.get("eTag") or "")),
            ("accept-ranges", "bytes"),
            *(
                [("last-modified", format_datetime(updated.astimezone(datetime.UTC), usegmt=True))]
                if updated
                else []
            ),
            *(extra or []),
        ]
        return HttpResponse(200, headers, data)

    # --- signed URLs -----------------------------------------------------------------------

    def sign(self, caller: Caller, bucket: str, name: str, body: bytes) -> HttpResponse:
        try:
            payload = json.loads(body or b"{}")
        except ValueError as exc:
            raise _bad_request("Body is not valid JSON") from exc
        expires_in = payload.get("expiresIn") if isinstance(payload, dict) else None
        if expires_in is None:
            raise _bad_request("body must have required property 'expiresIn'")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 1:
            raise StorageError(400, "InvalidParameter", "Invalid Parameter expiresIn")
        _check_name(name)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._as(conn, caller)
            self._find(conn, bucket, name)
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
        return _json(200, {"signedURL": f"/object/sign/{bucket}/{name}?token={token}"})

    def download_signed(self, bucket: str, name: str, token: str) -> HttpResponse:
        if not token:
            raise _bad_request("querystring must have required property 'token'")
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            raise StorageError(400, "InvalidJWT", _token_problem(exc)) from exc
        if claims.get("scope", _SIGNED_SCOPE) != _SIGNED_SCOPE or "upsert" in claims:
            raise StorageError(400, "InvalidSignature", f"Token is not scoped for {_SIGNED_SCOPE}")
        if claims.get("url") != f"{bucket}/{name}":
            raise StorageError(400, "InvalidSignature", "Invalid signature")
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            row = self._find(conn, bucket, name)
        expires = datetime.datetime.fromtimestamp(int(claims["exp"]), tz=datetime.UTC)
        return self._serve(row, [("expires", format_datetime(expires, usegmt=True))])

    # --- delete ----------------------------------------------------------------------------

    def delete(self, caller: Caller, bucket: str, body: bytes) -> HttpResponse:
        try:
            payload = json.loads(body or b"{}")
        except ValueError as exc:
            raise _bad_request("Body is not valid JSON") from exc
        prefixes = payload.get("prefixes") if isinstance(payload, dict) else None
        if (
            not isinstance(prefixes, list)
            or not prefixes
            or not all(isinstance(p, str) for p in prefixes)
        ):
            raise _bad_request("body/prefixes must be a non-empty array of strings")
        with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
            self._as(conn, caller)
            with conn.cursor(row_factory=dict_row) as cursor, _database_errors():
                deleted = cursor.execute(
                    "delete from storage.objects where bucket_id = %s and name = any(%s)"
                    f" returning {_OBJECT_COLUMNS}",
                    (bucket, prefixes),
                ).fetchall()
        for row in deleted:
            if row["version"]:
                self._path(row["version"]).unlink(missing_ok=True)
        return _json(200, [_object_json(row) for row in deleted])


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """Database refusals as Storage renders them (its DBError.fromDBError)."""
    try:
        yield
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        if exc.sqlstate == "42501":
            message = str(exc.diag.message_primary or "")
            if "row-level security" in message:
                message = "new row violates row-level security policy"
            raise _access_denied(message) from exc
        if exc.sqlstate == "23505":
            raise StorageError(
                409, "ResourceAlreadyExists", "The resource already exists", "Duplicate"
            ) from exc
        raise StorageError(500, "DatabaseError", f"database error, code: {exc.sqlstate}") from exc


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


def _token_problem(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return '"exp" claim timestamp check failed'
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature verification failed"
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
