"""The media types the gateway sends and keeps: those WhatsApp accepts and the bucket
``whatsapp-media`` allows, each with the kind of WhatsApp message it makes, the extension of
its stored file, and the file formats (``media.signatures``) its bytes may have.

A type is compared without its parameters (``audio/ogg; codecs=opus`` is ``audio/ogg``), and
Storage keeps it so; ``codecs=opus`` makes an Ogg file a voice note (``ptt``).
"""

from __future__ import annotations

from typing import NamedTuple

MAX_INLINE_BYTES = 4 * 1024 * 1024
"""A file sent inside the request: what fits a Lambda request (6 MB) as base64."""
MAX_MEDIA_BYTES = 16 * 1024 * 1024
"""The bucket's limit: a file uploaded first, or received."""
MAX_CAPTION_CHARS = 1024
VOICE_NOTE_TYPE = "audio/ogg; codecs=opus"


class MediaType(NamedTuple):
    kind: str  # WhatsApp's message type: image, sticker, video, audio or document
    ext: str
    formats: frozenset[str]


def _type(kind: str, ext: str, *formats: str) -> MediaType:
    return MediaType(kind, ext, frozenset(formats))


ACCEPTED: dict[str, MediaType] = {
    "image/jpeg": _type("image", "jpg", "jpeg"),
    "image/png": _type("image", "png", "png"),
    "image/webp": _type("sticker", "webp", "webp"),
    "video/mp4": _type("video", "mp4", "mp4"),
    "video/3gpp": _type("video", "3gp", "3gpp", "mp4"),
    "audio/ogg": _type("audio", "ogg", "ogg"),
    "audio/mpeg": _type("audio", "mp3", "mp3"),
    "audio/mp4": _type("audio", "m4a", "mp4"),
    "audio/aac": _type("audio", "aac", "aac"),
    "audio/amr": _type("audio", "amr", "amr"),
    "application/pdf": _type("document", "pdf", "pdf"),
    "text/plain": _type("document", "txt", "text"),
    "application/msword": _type("document", "doc", "ole"),
    "application/vnd.ms-excel": _type("document", "xls", "ole"),
    "application/vnd.ms-powerpoint": _type("document", "ppt", "ole"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _type(
        "document", "docx", "zip"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _type(
        "document", "xlsx", "zip"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _type(
        "document", "pptx", "zip"
    ),
}


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` → ``audio/ogg``, lowercase."""
    return mime_type.split(";", 1)[0].strip().lower()


def is_voice_note(mime_type: str) -> bool:
    """An Ogg file in Opus, which WhatsApp plays as a voice note."""
    params = [part.strip().lower().replace('"', "") for part in mime_type.split(";")[1:]]
    return base_type(mime_type) == "audio/ogg" and "codecs=opus" in params


def accepted(mime_type: str) -> MediaType | None:
    return ACCEPTED.get(base_type(mime_type))


def extension_for(mime_type: str | None) -> str:
    """The stored file's extension (``bin`` for a type the gateway does not know)."""
    known = accepted(mime_type or "")
    return known.ext if known else "bin"


def fits(mime_type: str, formats: frozenset[str]) -> bool:
    """Whether bytes of ``formats`` (``file_signatures.sniff``) can be of ``mime_type``."""
    known = accepted(mime_type)
    return known is not None and bool(known.formats & formats)
