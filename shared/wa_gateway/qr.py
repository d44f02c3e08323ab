"""QR codes as PNG data URLs, rendered from the host's raw QR string.

Rendered once, when the QR arrives, and stored, so a status read or a Realtime subscriber gets
an image without rendering. ``qrcode`` with pypng (pure Python, no Pillow) is imported only
here, on first use.
"""

from __future__ import annotations

import base64
import io


def png_data_url(raw: str) -> str:
    """The QR code of ``raw`` as ``data:image/png;base64,...``."""
    import qrcode
    import qrcode.image.pure

    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_L,
        box_size=6,
        border=2,
        image_factory=qrcode.image.pure.PyPNGImage,
    )
    code.add_data(raw)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
