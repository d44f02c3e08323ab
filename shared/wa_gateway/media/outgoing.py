"""A file to send: the ``media`` of a send request, checked before anything is stored or sent.

Either inline, ``{"data": "<base64>", "mime_type", "filename"?}`` (decoded at most 4 MiB), or
uploaded to the bucket first, ``{"path": "<user id>/outgoing/<name>", "mime_type"?,
"filename"?}`` (at most 16 MiB, read with the service key once the path is known to be in the
caller's own outgoing folder). The declared type must be one WhatsApp takes
(``media.types``) and what the bytes are (``media.signatures``); an Ogg file declared
``audio/ogg; codecs=opus`` goes as a voice note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from wa_gateway.errors import (
    Forbidden,
    InvalidRequest,
    MessageTooLong,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
    UnsupportedMedia,
)
from wa_gateway.host.answers import SentMessage
from wa_gateway.host.chat_routes import HostChat
from wa_gateway.host.client import HostClient
from wa_gateway.media import types as media_types
from wa_gateway.media.signatures import sniff
from wa_gateway.media.storage import MediaStore, StorageRefused
from wa_gateway.records import MediaOutcome, MessageRecord
from wa_gateway.send_records import OutgoingFile
from wa_gateway.store import Store

MAX_FILENAME_CHARS = 255
MAX_PATH_CHARS = 1024
OUTGOING_FOLDER = "outgoing"


class InlineMedia(NamedTuple):
    data: bytes
    mime_type: str
    filename: str | None


class UploadedMedia(NamedTuple):
    path: str
    mime_type: str | None
    filename: str | None


MediaRequest = InlineMedia | UploadedMedia


class OutgoingMedia(NamedTuple):
    """A checked file: its bytes and what the message row keeps of it."""

    data: bytes
    mime_type: str
    filename: str
    kind: str  # the row's message_type: image, sticker, video, audio, ptt or document
    ext: str
    sha256: str
    path: str | None  # the caller's upload; None for a file sent inline

    @property
    def file(self) -> OutgoingFile:
        """What the outbox row keeps of the file."""
        return OutgoingFile(
            message_type=self.kind,
            mime_type=self.mime_type,
            filename=self.filename,
            size=len(self.data),
            sha256=self.sha256,
            path=self.path,
            ext=None if self.path else self.ext,
        )

    @property
    def data_uri(self) -> str:
        mime = self.mime_type.replace(" ", "")
        return f"data:{mime};base64,{base64.b64encode(self.data).decode()}"


def parse_caption(value: Any) -> str:
    """The ``message`` of a send with a file: its caption, optional."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("'message' must be a string: the file's caption.")
    if len(value) > media_types.MAX_CAPTION_CHARS:
        raise MessageTooLong(
            f"The caption has {len(value)} characters; at most {media_types.MAX_CAPTION_CHARS}."
        )
    return value


def parse_media(value: Any) -> MediaRequest:
    """The ``media`` field of a send; the contract's error for what is malformed or too big."""
    if not isinstance(value, Mapping):
        raise InvalidRequest("'media' must be an object with 'data' or 'path'.")
    if "data" in value and "path" in value:
        raise InvalidRequest("'media' takes 'data' or 'path', not both.")
    unknown = set(value) - {"data", "path", "mime_type", "filename"}
    if unknown:
        raise InvalidRequest(f"Unknown field 'media.{sorted(unknown)[0]}'.")
    mime_type = _optional_text(value, "mime_type", MAX_FILENAME_CHARS)
    filename = _optional_text(value, "filename", MAX_FILENAME_CHARS)
    if "path" in value:
        path = value["path"]
        if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS:
            raise InvalidRequest("'media.path' must be the name of your upload in the bucket.")
        return UploadedMedia(path, mime_type, filename)
    if mime_type is None:
        raise InvalidRequest("'media.mime_type' is required with 'media.data'.")
    return InlineMedia(_decoded(value.get("data")), mime_type, filename)


def _optional_text(value: Mapping[str, Any], name: str, limit: int) -> str | None:
    text = value.get(name)
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip() or len(text) > limit:
        raise InvalidRequest(f"'media.{name}' must be a string of 1 to {limit} characters.")
    return text.strip()


def _decoded(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise InvalidRequest("'media.data' must be the file in base64.")
    if len(data) > (media_types.MAX_INLINE_BYTES + 2) // 3 * 4 + 4:
        raise _too_large(media_types.MAX_INLINE_BYTES, "inline")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'media.data' is not valid base64.") from None
    if not decoded:
        raise InvalidRequest("'media.data' is empty.")
    if len(decoded) > media_types.MAX_INLINE_BYTES:
        raise _too_large(media_types.MAX_INLINE_BYTES, "inline")
    return decoded


def _too_large(limit: int, how: str) -> PayloadTooLarge:
    hint = " Upload a larger file to Storage first and send its path." if how == "inline" else ""
    return PayloadTooLarge(f"The file is larger than {limit // (1024 * 1024)} MiB.{hint}")


def resolve(user_id: str, request: MediaRequest, media_store: MediaStore) -> OutgoingMedia:
    """The file a send carries, read and checked; nothing is written."""
    if isinstance(request, InlineMedia):
        return checked(request.data, request.mime_type, request.filename, None)
    path = own_upload(user_id, request.path)
    try:
        stored = media_store.download(path)
    except StorageRefused as refusal:
        if refusal.status in (400, 404):
            raise NotFound("You have no upload at this path.") from None
        raise
    if len(stored.data) > media_types.MAX_MEDIA_BYTES:
        raise _too_large(media_types.MAX_MEDIA_BYTES, "uploaded")
    filename = request.filename or path.rsplit("/", 1)[-1]
    return checked(stored.data, request.mime_type or stored.mime_type, filename, path)


def own_upload(user_id: str, path: str) -> str:
    """``path`` if it names an object in the caller's own outgoing folder; Forbidden for any
    other (whether or not it exists)."""
    parts = path.split("/")
    if (
        len(parts) < 3
        or parts[0] != user_id
        or parts[1] != OUTGOING_FOLDER
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise Forbidden(f"'media.path' must be in your own folder: {user_id}/outgoing/<name>.")
    return path


def checked(data: bytes, mime_type: str, filename: str | None, path: str | None) -> OutgoingMedia:
    accepted = media_types.accepted(mime_type)
    if accepted is None:
        raise UnsupportedMedia(f"WhatsApp does not take '{mime_type}' here.")
    if not media_types.fits(mime_type, sniff(data)):
        raise UnsupportedMedia(f"The file's content is not '{media_types.base_type(mime_type)}'.")
    voice = media_types.is_voice_note(mime_type)
    return OutgoingMedia(
        data=data,
        mime_type=media_types.VOICE_NOTE_TYPE if voice else media_types.base_type(mime_type),
        filename=filename or f"{accepted.kind}.{accepted.ext}",
        kind="ptt" if voice else accepted.kind,
        ext=accepted.ext,
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
    )


def send(
    client: HostClient,
    session: str,
    token: str,
    chat: HostChat,
    media: OutgoingMedia,
    caption: str,
    quoted: str | None = None,
) -> SentMessage:
    """Send the file through the host: a voice note by ``send-voice-base64`` (which takes no
    caption), anything else by ``send-file-base64``."""
    if media.kind == "ptt":
        return client.send_voice(session, token, chat, data_uri=media.data_uri, quoted=quoted)
    return client.send_file(
        session,
        token,
        chat,
        data_uri=media.data_uri,
        filename=media.filename,
        caption=caption,
        quoted=quoted,
    )


def store_inline(
    store: Store,
    media_store: Callable[[], MediaStore],
    message: MessageRecord,
    media: OutgoingMedia,
) -> None:
    """Put a file sent inline at its outbox row's path (again, on a retry) before the host
    call; if Storage fails, the send is retryable and nothing went to the host."""
    if message.media_state == "stored" or message.media_path is None:
        return
    try:
        media_store().upload(
            message.media_path, media.data, media_types.base_type(media.mime_type), upsert=True
        )
    except (StorageRefused, StoreUnavailable):
        store.finish_send(message, "retryable", error_code=StoreUnavailable.code)
        raise StoreUnavailable("The file could not be stored. Try again shortly.") from None
    store.record_media(MediaOutcome(message.id, "stored", path=message.media_path))
