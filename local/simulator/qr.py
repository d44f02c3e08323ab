"""QR material: WhatsApp-like ``urlcode`` refs, their PNG renderings, and pairing codes."""

from __future__ import annotations

import base64
import functools
import io
import secrets

import qrcode
import qrcode.image.pure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
# qrcode-session renders at about 500 px, like the server's `width: 500`.
_SESSION_PNG_PX = 500


def new_urlcode() -> str:
    """A fresh login ref shaped like WhatsApp's: ``2@<ref>,<noise key>,<identity key>,<adv>``."""

    def b64(n: int) -> str:
        return base64.b64encode(secrets.token_bytes(n)).decode()

    return f"2@{b64(66)},{b64(32)},{b64(32)},{b64(16)}"


def new_pairing_code() -> str:
    code = "".join(secrets.choice(_PAIRING_ALPHABET) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


@functools.lru_cache(maxsize=64)
def _render(data: str, target_px: int | None) -> bytes:
    qr = qrcode.QRCode(border=4, image_factory=qrcode.image.pure.PyPNGImage)
    qr.add_data(data)
    qr.make(fit=True)
    if target_px is not None:
        qr.box_size = max(1, round(target_px / (qr.modules_count + 2 * qr.border)))
    else:
        qr.box_size = 4
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def qr_base64(urlcode: str) -> str:
    """The raw base64 PNG the library hands to ``catchQR`` (no ``data:`` prefix)."""
    return base64.b64encode(_render(urlcode, None)).decode()


def qr_data_url(urlcode: str) -> str:
    """What ``QRCode.toDataURL(urlcode)`` gives: status-session's ``qrcode`` field."""
    return "data:image/png;base64," + qr_base64(urlcode)


def qr_session_png(urlcode: str) -> bytes:
    """The raw image ``qrcode-session`` answers with."""
    return _render(urlcode, _SESSION_PNG_PX)
