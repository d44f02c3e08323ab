"""One delivery attempt on the wire: a POST to one address that was checked, nothing more.

* It connects to the address given (resolved and checked by ``addresses``), sending the URL's
  host name as TLS SNI and ``Host`` and verifying the certificate for it: nothing resolves the
  name again, so the answer of a second lookup cannot send it elsewhere.
* No redirect is followed (a 3xx is an answer like any other non-2xx: a failure).
* A hard deadline over the whole attempt (connect, TLS, request, answer): a watchdog shuts the
  socket when it passes, so an endpoint that trickles its answer a byte at a time is cut off
  like one that says nothing.
* At most 1 KiB of the answer's body is read; the connection is then closed, not drained.

The standard library only (``http.client`` over a socket made here), on the TLS context it
shares with the store's PostgREST client (``wa_gateway.tls``).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import NamedTuple

from wa_gateway.delivery.addresses import EndpointUrl
from wa_gateway.tls import public_context

MAX_ANSWER_BYTES = 1024


class Outcome(NamedTuple):
    """What an attempt got: the endpoint's HTTP status (None when it gave none) and, for a
    failure, its error code (``http_status``, ``timeout``, ``connection``, ``tls``)."""

    ok: bool
    status: int | None = None
    error: str | None = None


def post(
    endpoint: EndpointUrl,
    address: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    timeout_s: float,
) -> Outcome:
    """POST ``body`` to ``endpoint`` at ``address``, within ``timeout_s`` in all."""
    deadline = time.monotonic() + timeout_s
    held: list[socket.socket] = []
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        for sock in held:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout_s, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        sock = socket.create_connection((address, endpoint.port), timeout=timeout_s)
        held.append(sock)
        if expired.is_set():
            cut()
        connection: http.client.HTTPConnection
        if endpoint.scheme == "https":
            sock = public_context().wrap_socket(sock, server_hostname=endpoint.host)
            held.append(sock)
            connection = http.client.HTTPSConnection(endpoint.host, endpoint.port)
        else:
            connection = http.client.HTTPConnection(endpoint.host, endpoint.port)
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        connection.sock = sock  # already connected: http.client never resolves the name
        connection.request("POST", endpoint.target, body=body, headers=dict(headers))
        answer = connection.getresponse()
        answer.read(MAX_ANSWER_BYTES)
        status = answer.status
        if 200 <= status < 300:
            return Outcome(True, status)
        return Outcome(False, status, "http_status")
    except TimeoutError:
        return Outcome(False, None, "timeout")
    except ssl.SSLError:
        return Outcome(False, None, "timeout" if expired.is_set() else "tls")
    except (OSError, http.client.HTTPException, ValueError):
        return Outcome(False, None, "timeout" if expired.is_set() else "connection")
    finally:
        watchdog.cancel()
        for sock in reversed(held):
            with contextlib.suppress(OSError):
                sock.close()
