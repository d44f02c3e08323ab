"""What a file is, by its leading bytes: the formats WhatsApp carries, nothing else.

``sniff`` names the formats the first bytes fit (a few fit two: an MPEG audio frame header
is also an ADTS one). Text has no signature: bytes that decode as UTF-8 without control
characters other than tab, newline and carriage return are ``text``.
"""

from __future__ import annotations

HEAD_BYTES = 64
"""How many leading bytes ``sniff`` looks at."""

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF-", "pdf"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"#!AMR", "amr"),
    (b"ADIF", "aac"),
    (b"PK\x03\x04", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),  # the old Word, Excel, PowerPoint files
)
_3GPP_BRANDS = (b"3gp", b"3g2")


def sniff(data: bytes) -> frozenset[str]:
    """The formats ``data``'s first bytes fit; empty when none of the known ones."""
    head = data[:HEAD_BYTES]
    found = {name for prefix, name in _PREFIXES if head.startswith(prefix)}
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found.add("webp")
    if head[4:8] == b"ftyp":
        found.add("3gpp" if head[8:11] in _3GPP_BRANDS else "mp4")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame header; layer bits 00 with sync 0xFFF is AAC's ADTS header.
        found.add("aac" if head[1] & 0xF6 == 0xF0 else "mp3")
    if not found and _is_text(data[:4096]):
        found.add("text")
    return frozenset(found)


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The sample may end inside a character.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)
