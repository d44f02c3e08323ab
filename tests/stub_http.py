"""The request handler of the small HTTP servers tests stand in another service with."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


class StubHandler(BaseHTTPRequestHandler):
    """Reads a request's body and writes an answer in one call each, and logs nothing (a test's
    output is its own)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """The request's body, empty without a ``content-length``."""
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send ``status`` with ``body``, its length and type, and any other ``headers``."""
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
