"""Which files may be sent: the declared type against the bytes' signature, and the limits."""

from __future__ import annotations

import base64

import pytest

from wa_gateway.errors import Forbidden, InvalidRequest, PayloadTooLarge, UnsupportedMedia
from wa_gateway.media.outgoing import InlineMedia, checked, own_upload, parse_media
from wa_gateway.media.signatures import sniff
from wa_gateway.media.types import MAX_INLINE_BYTES

USER = "0b7c4a52-5a0e-4c3e-9d2f-3f1f0f6c1a11"


@pytest.mark.parametrize(
    ("head", "formats"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", {"jpeg"}),
        (b"\x89PNG\r\n\x1a\n....", {"png"}),
        (b"GIF89a....", {"gif"}),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", {"webp"}),
        (b"%PDF-1.7\n", {"pdf"}),
        (b"OggS\x00\x02", {"ogg"}),
        (b"\x00\x00\x00\x18ftypmp42", {"mp4"}),
        (b"\x00\x00\x00\x14ftyp3gp4", {"3gpp"}),
        (b"ID3\x04\x00", {"mp3"}),
        (b"\xff\xfb\x90\x00", {"mp3"}),
        (b"\xff\xf1\x50\x80", {"aac"}),
        (b"#!AMR\n", {"amr"}),
        (b"PK\x03\x04\x14\x00", {"zip"}),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", {"ole"}),
        ("Preço: R$ 10\n".encode(), {"text"}),
        (b"MZ\x90\x00\x03\x00\x00\x00", set()),
    ],
)
def test_leading_bytes_name_the_format(head: bytes, formats: set[str]) -> None:
    assert sniff(head) == formats


def test_a_declared_type_must_be_what_the_bytes_are() -> None:
    assert checked(b"%PDF-1.4 x", "application/pdf", None, None).kind == "document"
    with pytest.raises(UnsupportedMedia):
        checked(b"%PDF-1.4 x", "image/jpeg", None, None)
    with pytest.raises(UnsupportedMedia):
        checked(b"GIF89a....", "image/gif", None, None)


def test_ogg_in_opus_is_a_voice_note_and_other_ogg_is_audio() -> None:
    voice = checked(b"OggS\x00\x02", "audio/ogg;codecs=opus", None, None)
    audio = checked(b"OggS\x00\x02", "audio/ogg", "song.ogg", None)
    assert (voice.kind, voice.mime_type, voice.ext) == ("ptt", "audio/ogg; codecs=opus", "ogg")
    assert (audio.kind, audio.filename) == ("audio", "song.ogg")
    assert voice.data_uri.startswith("data:audio/ogg;codecs=opus;base64,")


def test_inline_media_is_decoded_and_refused_when_broken_or_too_big() -> None:
    parsed = parse_media(
        {"data": base64.b64encode(b"\xff\xd8\xff1").decode(), "mime_type": "image/jpeg"}
    )
    assert parsed == InlineMedia(b"\xff\xd8\xff1", "image/jpeg", None)
    with pytest.raises(InvalidRequest):
        parse_media({"data": "%%%", "mime_type": "image/jpeg"})
    with pytest.raises(InvalidRequest):
        parse_media({"data": "AAAA", "path": f"{USER}/outgoing/a.pdf"})
    with pytest.raises(PayloadTooLarge):
        big = base64.b64encode(b"\xff\xd8\xff" + bytes(MAX_INLINE_BYTES)).decode()
        parse_media({"data": big, "mime_type": "image/jpeg"})


@pytest.mark.parametrize(
    "path",
    [
        "someone-else/outgoing/a.pdf",
        f"{USER}/outgoing",
        f"{USER}/outgoing/",
        f"{USER}/outgoing/../x.pdf",
        f"{USER}/session/a.pdf",
        f"/{USER}/outgoing/a.pdf",
    ],
)
def test_only_the_callers_own_outgoing_folder_may_be_sent_from(path: str) -> None:
    with pytest.raises(Forbidden):
        own_upload(USER, path)
    assert own_upload(USER, f"{USER}/outgoing/menu.pdf") == f"{USER}/outgoing/menu.pdf"
