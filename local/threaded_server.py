"""An HTTP server served on a thread of this process, which stops at once.

The stand-ins the tests and the bench run in-process (a fake host, a JWKS endpoint, PostgREST,
the Secrets extension, a webhook receiver) and the simulator's own server use it.
``ThreadingHTTPServer.serve_forever`` notices ``shutdown()`` only at its next poll, half a
second by default: every fixture that stopped one waited for it. Here the serving loop also
listens to a wake-up socket, so ``stop()`` returns as soon as the loop has ended.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ThreadedServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port unless given one), each request on a
    daemon thread; ``start()`` serves it on a thread of its own, ``stop()`` ends that at once
    and closes the socket."""

    daemon_threads = True
    block_on_close = False
    timeout = 0.0  # handle_request() never waits: it runs only once the socket is ready

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        address: tuple[str, int] = ("127.0.0.1", 0),
        **kwargs: Any,
    ) -> None:
        super().__init__(address, handler, **kwargs)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, name: str = "http") -> ThreadedServer:
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self._stopping.is_set():
                    break
                if self in ready:
                    self.handle_request()
                self.service_actions()

    def stop(self) -> None:
        """Stop serving (requests being answered finish on their own threads) and close."""
        self._stopping.set()
        self._wake_writer.send(b"x")
        if self._thread is not None:
            self._thread.join()
        self.server_close()
        self._wake_reader.close()
        self._wake_writer.close()


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadedServer]:
    """``handler`` served on 127.0.0.1 on a free port while the block runs."""
    server = ThreadedServer(handler).start()
    try:
        yield server
    finally:
        server.stop()
