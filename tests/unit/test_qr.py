"""QR images: the host's PNG kept when it is one, rendered here otherwise."""

from __future__ import annotations

import base64

import pytest

from wa_gateway.records import SessionUpdate
from wa_gateway.sessions import qr

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(200))).decode()


@pytest.mark.parametrize("value", [PNG, "data:image/png;base64," + PNG])
def test_the_host_png_is_kept_as_a_data_url(value: str) -> None:
    assert qr.host_image(value) == "data:image/png;base64," + PNG


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        base64.b64encode(b"<svg onload=alert(1)>").decode(),  # not a PNG
        "data:image/svg+xml;base64," + PNG,  # another type named
        PNG[:-1],  # not whole base64
        PNG[:40] + "*" + PNG[41:],  # outside the alphabet
        PNG + "=",  # padding in the wrong place
        "iVBORw0KGg" + "A" * (qr.MAX_HOST_IMAGE_CHARS + 2),  # too big (and whole base64)
    ],
)
def test_anything_but_a_png_in_base64_is_refused(value: object) -> None:
    assert qr.host_image(value) is None


def test_a_qr_without_the_host_png_is_rendered_here() -> None:
    update = qr.with_qr_image(SessionUpdate("user_x", "pairing", qr_code="2@abc,def"))
    assert update.qr_image is not None
    data = base64.b64decode(update.qr_image.removeprefix("data:image/png;base64,"))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_host_png_is_not_rendered_again() -> None:
    kept = SessionUpdate("user_x", "pairing", qr_code="2@abc", qr_image="data:image/png;base64,x")
    assert qr.with_qr_image(kept) is kept
