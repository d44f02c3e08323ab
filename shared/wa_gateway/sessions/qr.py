"""QR codes as PNG data URLs, stored with the session when the QR arrives, so a status read
or a Realtime subscriber gets an image without rendering.

The host sends its own PNG with every QR (the ``qrcode`` field of the webhook event and of a
held start, a data URL in status-session): that image is kept as it is, once it is checked to
be a PNG in base64 of a sane size. Only when the host sends none, or not a PNG, is the QR
rendered here from its raw string, with ``qrcode`` and pypng (pure Python, no Pillow),
imported on that first use.
"""

from __future__ import annotations

import base64
import io
import re
from functools import lru_cache

from wa_gateway.records import SessionUpdate

DATA_URL_PREFIX = "data:image/png;base64,"
MAX_HOST_IMAGE_CHARS = 128 * 1024  # wppconnect's are about 10 KB; a 500 px one about 20 KB
_PNG_BASE64 = re.compile(r"iVBORw0KGg[A-Za-z0-9+/]*={0,2}")  # starts with PNG's signature


def host_image(value: object) -> str | None:
    """The host's PNG of a QR as a data URL, or None when it is not a PNG in base64."""
    if not isinstance(value, str):
        return None
    data = value.removeprefix(DATA_URL_PREFIX)
    if len(data) > MAX_HOST_IMAGE_CHARS or len(data) % 4 or not _PNG_BASE64.fullmatch(data):
        return None
    return DATA_URL_PREFIX + data


@lru_cache(maxsize=32)
def png_data_url(raw: str) -> str:
    """The QR code of ``raw`` as ``data:image/png;base64,...``: 4 px per module, a quiet zone of
    2 modules (about 200 px for WhatsApp's codes; scale it up with CSS, pixelated).

    Cached: the same QR reaches a warm container more than once (the start answer and its
    webhook, duplicated deliveries), and rendering one costs tens of milliseconds."""
    import qrcode
    import qrcode.image.pure

    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_L,
        box_size=4,
        # One fixed mask instead of scoring all eight: half the rendering time, and any mask
        # is valid for scanners.
        mask_pattern=0,
        border=2,
        image_factory=qrcode.image.pure.PyPNGImage,
    )
    code.add_data(raw)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return DATA_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def with_qr_image(update: SessionUpdate) -> SessionUpdate:
    """``update`` with a PNG of its QR, rendered here when the host sent none."""
    if update.qr_code and not update.qr_image:
        return update._replace(qr_image=png_data_url(update.qr_code))
    return update
