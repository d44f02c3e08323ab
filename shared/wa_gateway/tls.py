"""The layer's verifying TLS contexts, each made once per container on first use (loading a CA
bundle costs tens of milliseconds):

* ``public_context``: the store's PostgREST client and event delivery, on certifi's CA bundle
  when installed (as in the layer), else the system's;
* ``system_context``: the layer's own HTTP client (``http_connection``: the host, the JWKS,
  Storage), on the system's certificates, where ``SSL_CERT_FILE`` names others.
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


@cache
def system_context() -> ssl.SSLContext:
    return ssl.create_default_context()
