"""The functions' own calls to Supabase Storage: media in the private bucket ``whatsapp-media``.

Every call carries the service key (``apikey`` and ``Authorization: Bearer``), so Storage runs
it as ``service_role`` and the bucket's policies do not apply; its size and type limits do.
Paths are object names inside the bucket: ``<user id>/outgoing/<name>`` for what users upload,
``<user id>/<session id>/<name>`` for what their WhatsApp receives. Checking that a user may
use a path is the caller's job, before calling here.

Storage answers errors with HTTP 400 and the status it means in the body's ``statusCode``;
``StorageRefused`` carries that status (404 for a missing object, 413 too large, 415 a type
the bucket refuses, 409 an existing name). A network failure or a 5xx is
``StoreUnavailable``. One connection pool of the layer's HTTP client (imported with the first
call) is kept for the container's life.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wa_gateway.errors import StoreUnavailable

if TYPE_CHECKING:
    from wa_gateway.http_client import Answer, Pool

BUCKET = "whatsapp-media"
TIMEOUT_S = (3.05, 20.0)
"""Connect and read timeouts: a read moves up to the bucket's 16 MiB."""

# Characters Storage allows in an object name that still need no escaping in a URL path.
_PATH_SAFE = "/!*'()$=@;:+,-._~"


class StorageRefused(Exception):
    """Storage refused the call; ``status`` is the one it names (``statusCode``), ``code`` its
    error code. The message is Storage's and holds no secret."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class StoredMedia:
    data: bytes
    mime_type: str


class MediaStore:
    def __init__(self, storage_url: str, service_key: str, *, bucket: str = BUCKET) -> None:
        """``storage_url``: the Storage API, ``https://<project>.supabase.co/storage/v1``."""
        self._url = storage_url.rstrip("/")
        self._service_key = service_key
        self._bucket = bucket
        self._http: Pool | None = None

    def __repr__(self) -> str:
        return f"MediaStore({self._url!r}, bucket={self._bucket!r})"

    def upload(self, path: str, data: bytes, mime_type: str, *, upsert: bool = False) -> str:
        """Store ``data`` at ``path``; return the object's key (``<bucket>/<path>``). An
        existing path is refused (409) unless ``upsert``."""
        answer = self._call(
            "POST",
            f"/object/{self._bucket}/{_quoted(path)}",
            body=data,
            headers={"Content-Type": mime_type, "x-upsert": "true" if upsert else "false"},
        )
        key: str = answer.json()["Key"]
        return key

    def download(self, path: str) -> StoredMedia:
        """The object's bytes and type; ``StorageRefused`` with status 404 if there is none."""
        answer = self._call("GET", f"/object/authenticated/{self._bucket}/{_quoted(path)}")
        mime_type = answer.headers.get("content-type") or "application/octet-stream"
        return StoredMedia(answer.body, mime_type)

    def delete(self, paths: Sequence[str]) -> list[str]:
        """Remove these objects; return the paths that existed and are now gone."""
        answer = self._call("DELETE", f"/object/{self._bucket}", json={"prefixes": list(paths)})
        return [str(item["name"]) for item in answer.json()]

    def _call(
        self,
        method: str,
        route: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
    ) -> Answer:
        from wa_gateway.http_client import Pool
        from wa_gateway.http_connection import HttpFailure

        if self._http is None:
            self._http = Pool()
        try:
            answer = self._http.request(
                method,
                self._url + route,
                headers={
                    "apikey": self._service_key,
                    "Authorization": f"Bearer {self._service_key}",
                    **(headers or {}),
                },
                body=body,
                json=json,
                timeout=TIMEOUT_S,
            )
        except HttpFailure as exc:
            raise StoreUnavailable() from exc
        if answer.status >= 500:
            raise StoreUnavailable()
        if answer.status >= 300:
            raise _refusal(answer)
        return answer


def _refusal(answer: Answer) -> StorageRefused:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return StorageRefused(answer.status, "unknown", "Storage refused the call")
    try:
        status = int(body.get("statusCode") or answer.status)
    except (TypeError, ValueError):
        status = answer.status
    code = str(body.get("code") or body.get("error") or "unknown")
    return StorageRefused(status, code, str(body.get("message") or "Storage refused the call"))


def _quoted(path: str) -> str:
    return quote(path, safe=_PATH_SAFE)
