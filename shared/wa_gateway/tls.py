"""The TLS context of the store's PostgREST client and of event delivery: certifi's CA bundle
when installed (as in the layer), else the system's.

Loading a CA bundle costs tens of milliseconds, so the context is made once per container, on
first use, and shared by both. The layer's own HTTP client (``http_connection``: the host, the
JWKS, Storage) keeps its context on the system's certificates, where ``SSL_CERT_FILE`` names
others.
"""

from __future__ import annotations

import ssl
from functools import cache


@cache
def public_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
