"""QR codes as PNG data URLs, rendered from the host's raw QR string.

Rendered once, when the QR arrives, and stored, so a status read or a Realtime subscriber gets
an image without rendering. ``qrcode`` with pypng (pure Python, no Pillow) is imported only
here, on first use.
"""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from functools import lru_cache

from wa_gateway.store.facade import SessionUpdate


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
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def with_qr_image(update: SessionUpdate) -> SessionUpdate:
    """``update`` with the PNG of its QR, when it carries a QR without one."""
    if update.qr_code and not update.qr_image:
        return replace(update, qr_image=png_data_url(update.qr_code))
    return update
