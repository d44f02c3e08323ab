"""Files that arrive with messages: fetched from the host, kept in Storage.

An incoming media message (``image``, ``video``, ``audio``, ``ptt``, ``document``,
``sticker``) is stored at once with its type, name and size and ``media_state`` pending (or
too_large, over the bucket's 16 MiB: then nothing is fetched). The webhook then asks the
session's host for the file by the real server's ``download-media`` route, only while
``check-connection-session`` says the session is connected (the route sits behind the status
middleware), never trusting a file in the webhook's body (the host's autoDownload); it stores
the bytes at ``<user id>/<session id>/<message id>.<ext>`` and records their size and sha256.
Nothing here raises: a host that cannot give the file leaves the message ``unavailable``, one
that cannot be reached now, or a Storage failure (or no Storage configured), leaves it
``pending``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wa_gateway.crypto import Keyring
from wa_gateway.errors import HostError, HostTimeout, SettingsError, StoreUnavailable
from wa_gateway.host.answers import HostMedia, HostSessionClosed
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.media import types as media_types
from wa_gateway.media.storage import MediaStore, StorageRefused
from wa_gateway.observability import logger
from wa_gateway.records import IncomingFile, MediaFetch
from wa_gateway.store import Store


def metadata(event: Mapping[str, Any]) -> IncomingFile:
    """What the message row keeps of a media message's file, from the host's Message."""
    mime_type = _text(event.get("mimetype"))
    size = event.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    too_large = size is not None and size > media_types.MAX_MEDIA_BYTES
    return IncomingFile(
        mime_type=mime_type,
        filename=_text(event.get("filename")),
        size=size,
        ext=media_types.extension_for(mime_type),
        state="too_large" if too_large else "pending",
    )


def _text(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


@dataclass
class IncomingMedia:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    media_store: Callable[[], MediaStore]  # StoreUnavailable when Storage is not configured

    def fetch(self, job: MediaFetch) -> str:
        """Fetch the file of ``job`` from the host and store it; the state it left the
        message in (stored, pending, too_large or unavailable). Never raises."""
        try:
            storage = self.media_store()  # before the host is asked: nowhere to keep it
            media = self._download(job)
            state = "pending" if media is None else self._keep(job, media, storage)
        except (HostError, HostTimeout, HostSessionClosed, StoreUnavailable, SettingsError) as exc:
            logger.info("media not fetched", extra={"reason": type(exc).__name__})
            state = "pending"
        return state

    def _download(self, job: MediaFetch) -> HostMedia | None:
        if self.keyring is None or job.host_token is None:
            return None  # without the session's token the host cannot be asked
        host = HostSession(
            self.hosts.client_for(job.host), self.keyring, job.session_name, job.host_token
        )
        # In a tuple, so "not connected" (None) differs from "no file" ((None,)).
        answer = host.call_if_connected(
            lambda token: (host.host.download_media(job.session_name, token, job.wpp_message_id),)
        )
        if answer is None:
            return None
        if answer[0] is None:
            self.store.record_media(job.message_id, "unavailable")
            return None
        return answer[0]

    def _keep(self, job: MediaFetch, media: HostMedia, storage: MediaStore) -> str:
        try:
            data = base64.b64decode(media.base64, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        mime_type = media.mime_type or "application/octet-stream"
        if len(data) > media_types.MAX_MEDIA_BYTES:
            state = "too_large"
            self.store.record_media(job.message_id, state, size=len(data))
            return state
        if not data or media_types.accepted(mime_type) is None:
            self.store.record_media(job.message_id, "unavailable", mime_type=media.mime_type)
            return "unavailable"
        try:
            storage.upload(job.path, data, media_types.base_type(mime_type), upsert=True)
        except StorageRefused as refusal:
            logger.info("media refused by storage", extra={"status": refusal.status})
            self.store.record_media(job.message_id, "unavailable", mime_type=mime_type)
            return "unavailable"
        self.store.record_media(
            job.message_id,
            "stored",
            path=job.path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            mime_type=mime_type,
        )
        return "stored"
