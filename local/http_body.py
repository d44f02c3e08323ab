"""Reading a request's body as a front server does: by ``Content-Length`` or chunked, never
past a cap, and a malformed framing refused rather than guessed at.

A negative, non-numeric or repeated-and-different ``Content-Length``, a ``Transfer-Encoding``
other than chunked, both headers at once (the shape of request smuggling) and a bad chunk
size are ``400``; a body past the cap is ``413``, found from the declared length or from the
chunk sizes before the bytes are read. Either way the connection is not reused.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Protocol

_DIGITS = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,16}$")
_MAX_LINE = 4096  # a chunk-size line or a trailer


class _Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readline(self, size: int, /) -> bytes: ...


class BodyRefused(Exception):
    """The body cannot be read: ``status`` is 400 (malformed) or 413 (too large)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_body(headers: Message, stream: _Stream, cap: int) -> bytes:
    """The request's body from ``stream``, at most ``cap`` bytes."""
    encodings = [
        part.strip().lower()
        for value in headers.get_all("transfer-encoding") or []
        for part in value.split(",")
        if part.strip()
    ]
    lengths = headers.get_all("content-length") or []
    if encodings:
        if encodings != ["chunked"]:
            raise BodyRefused(400, "Unsupported Transfer-Encoding")
        if lengths:
            raise BodyRefused(400, "Content-Length and Transfer-Encoding together")
        return _read_chunked(stream, cap)
    values = {part.strip() for value in lengths for part in value.split(",")}
    if not values:
        return b""
    if len(values) != 1 or not _DIGITS.match(next(iter(values))):
        raise BodyRefused(400, "Invalid Content-Length")
    length = int(next(iter(values)))
    if length > cap:
        raise BodyRefused(413, "Request body too large")
    body = stream.read(length) if length else b""
    if len(body) != length:
        raise BodyRefused(400, "Request body shorter than its Content-Length")
    return body


def _read_chunked(stream: _Stream, cap: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(_MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip().decode("latin-1")
        if len(line) > _MAX_LINE or not line.endswith(b"\n") or not _HEX.match(size_text):
            raise BodyRefused(400, "Invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > cap:
            raise BodyRefused(413, "Request body too large")
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(_MAX_LINE + 1).strip():
            raise BodyRefused(400, "Invalid chunk")
        parts.append(chunk)
    while True:  # trailers, up to the blank line that ends the message
        trailer = stream.readline(_MAX_LINE + 1)
        if len(trailer) > _MAX_LINE or not trailer.endswith(b"\n"):
            raise BodyRefused(400, "Invalid chunk trailer")
        if not trailer.strip():
            return b"".join(parts)
