"""Files that arrive with messages: fetched from the host, kept in Storage.

An incoming media message (``image``, ``video``, ``audio``, ``ptt``, ``document``,
``sticker``) is stored at once with its type, name and size and ``media_state`` pending (or
too_large, over the bucket's 16 MiB: then nothing is fetched), its file due to fetch. The media
function (``jobs.media``) then asks the session's host for the file by the real server's
``download-media`` route, only while ``check-connection-session`` says the session is
connected (the route sits behind the status middleware), never trusting a file in the
webhook's body (the host's autoDownload); it stores the bytes at
``<user id>/<session id>/<message id>.<ext>`` and records their size and sha256.

The host answers 400 "Decrypt file error" when the CDN or the decryption fails for a moment
(and when it cannot find the message): that file is asked again at once a few times, then
left for a later pass; another 400 (the message has no file) is final. A host that cannot be
reached, or a Storage failure (or no Storage configured), leaves the file for a later pass
too; a session the host does not have connected waits, without counting the try. Nothing
here raises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wa_gateway.crypto import Keyring
from wa_gateway.errors import HostError, HostTimeout, SettingsError, StoreUnavailable
from wa_gateway.event_records import IncomingFile
from wa_gateway.host.answers import HostMedia, HostRefusedMedia, HostSessionClosed
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.media import types as media_types
from wa_gateway.media.storage import MediaStore, StorageRefused
from wa_gateway.observability import logger
from wa_gateway.pass_records import MediaFetch
from wa_gateway.records import MediaOutcome
from wa_gateway.store import Store

DECRYPT_TRIES = 3
"""Tries of one file within a pass while the host answers "Decrypt file error"."""
DECRYPT_PAUSE_S = 1.0
"""The pause before the next of those tries; it doubles each time."""


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
    decrypt_tries: int = DECRYPT_TRIES
    decrypt_pause_s: float = DECRYPT_PAUSE_S
    sleep: Callable[[float], None] = time.sleep

    def fetch(self, job: MediaFetch) -> MediaOutcome:
        """Fetch the file of ``job`` from the host, store it, and record what became of it
        (the outcome it returns). Never raises."""
        try:
            outcome = self._fetch(job)
        except (HostError, HostTimeout, StoreUnavailable, SettingsError) as exc:
            outcome = MediaOutcome(job.message_id, "retry", error=_word(type(exc).__name__))
        try:
            answer = self.store.record_media(outcome)
        except StoreUnavailable:
            logger.info("media outcome not recorded; the file is tried again later")
            return outcome._replace(state="retry", error="store_unavailable")
        if answer == "gone" and outcome.state == "stored" and outcome.path:
            self._forget(outcome.path)  # the message went while its file was on its way
        if outcome.state != "stored":
            logger.info(
                "media not kept",
                extra={"state": outcome.state, "error": outcome.error, "try": job.attempts},
            )
        return outcome

    def _fetch(self, job: MediaFetch) -> MediaOutcome:
        if self.keyring is None:
            raise SettingsError("ENCRYPTION_KEY must be set")  # the token cannot be read
        storage = self.media_store()  # before the host is asked: nowhere to keep it
        host = HostSession(
            self.hosts.client_for(job.host), self.keyring, job.session_name, job.host_token
        )
        pause = self.decrypt_pause_s
        for tried in range(1, self.decrypt_tries + 1):
            try:
                media = host.call_if_connected(
                    lambda token: host.host.download_media(
                        job.session_name, token, job.wpp_message_id
                    )
                )
            except HostSessionClosed:
                media = None
            except HostRefusedMedia as refusal:
                if not refusal.transient:
                    return MediaOutcome(job.message_id, "unavailable", error="no_file")
                if tried < self.decrypt_tries:
                    self.sleep(pause)
                    pause *= 2
                continue
            if media is None:
                return MediaOutcome(job.message_id, "wait", error="not_connected")
            return self._keep(job, media, storage)
        return MediaOutcome(job.message_id, "retry", error="decrypt_failed")

    def _keep(self, job: MediaFetch, media: HostMedia, storage: MediaStore) -> MediaOutcome:
        try:
            data = base64.b64decode(media.base64, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        mime_type = media.mime_type or "application/octet-stream"
        if len(data) > media_types.MAX_MEDIA_BYTES:
            return MediaOutcome(job.message_id, "too_large", size=len(data))
        if not data or media_types.accepted(mime_type) is None:
            return MediaOutcome(
                job.message_id, "unavailable", mime_type=media.mime_type, error="unusable_file"
            )
        try:
            storage.upload(job.path, data, media_types.base_type(mime_type), upsert=True)
        except StorageRefused as refusal:
            logger.info("media refused by storage", extra={"status": refusal.status})
            return MediaOutcome(
                job.message_id, "unavailable", mime_type=mime_type, error="storage_refused"
            )
        return MediaOutcome(
            job.message_id,
            "stored",
            path=job.path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            mime_type=mime_type,
        )

    def _forget(self, path: str) -> None:
        try:
            self.media_store().delete([path])
        except (StoreUnavailable, StorageRefused):
            logger.warning("a file of a deleted message could not be deleted")


def _word(name: str) -> str:
    """``HostTimeout`` → ``host_timeout``: the error as the outcome's word."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
