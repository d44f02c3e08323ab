"""One connection of the layer's HTTP client (``http_client``): opened within its connect
timeout, with TLS verified against the system's certificates, and checked before reuse."""

from __future__ import annotations

import http.client
import select
import socket
import ssl

from wa_gateway.tls import system_context

Origin = tuple[str, str, int]
"""Scheme, host and port."""


class HttpFailure(Exception):
    """No answer came. ``maybe_received``: the server may have had the whole request, and acted
    on it; ``timed_out``: a timeout ended the wait. ``retryable``: another try could fare
    better (not for a certificate that is not trusted, or a request that cannot be written)."""

    def __init__(self, *, maybe_received: bool, timed_out: bool, retryable: bool = True):
        when = "after the request was sent" if maybe_received else "before the request was sent"
        super().__init__(f"HTTP {'timeout' if timed_out else 'failure'} {when}")
        self.maybe_received = maybe_received
        self.timed_out = timed_out
        self.retryable = retryable and not maybe_received


def connect(origin: Origin, connect_timeout_s: float) -> http.client.HTTPConnection:
    """A new connection to ``origin``, opened (and its TLS handshake done) within the timeout."""
    scheme, host, port = origin
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=connect_timeout_s, context=system_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=connect_timeout_s)
    try:
        connection.connect()
    except TimeoutError:
        connection.close()
        raise HttpFailure(maybe_received=False, timed_out=True) from None
    except ssl.SSLCertVerificationError:  # an untrusted server stays untrusted
        connection.close()
        raise HttpFailure(maybe_received=False, timed_out=False, retryable=False) from None
    except OSError:  # refused, no route, no such name, a failed handshake
        connection.close()
        raise HttpFailure(maybe_received=False, timed_out=False) from None
    return connection


def readable(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: the server closed it (or wrote
    what nobody asked for), so it must not carry a request."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
