"""The TLS context for public servers (Supabase's API, users' event endpoints): certifi's CA
bundle when installed (as in the layer), else the system's.

Loading a CA bundle costs tens of milliseconds, so the context is made once per container, on
first use, and shared by every client that talks to a public server. The session host's
connections keep their own (``http_connection``), on the system's certificates.
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
