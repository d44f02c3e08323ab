"""HTTP plumbing: a threading HTTP/1.1 server that turns sockets into Request/Response.

Answers look like Express's (``X-Powered-By``, JSON with ``charset=utf-8``, open CORS).
Bodies over 50 MB get 413; a body Express cannot parse gets 400.
"""

from __future__ import annotations

import logging
import os
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

from local.simulator.app import Simulator
from local.simulator.forms import BodyError, parse_body
from local.simulator.protocol import Request, Response, html_response
from local.threaded_server import ThreadedServer

log = logging.getLogger(__name__)

BODY_LIMIT = 50 * 1024 * 1024


class SimulatorHTTPServer(ThreadedServer):
    def __init__(self, address: tuple[str, int], app: Simulator) -> None:
        self.app = app
        super().__init__(SimulatorHandler, address)


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Keep-alive answers go out at once (Nagle would hold them ~40 ms waiting for an ACK).
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def version_string(self) -> str:
        return "wppconnect-server-simulator"

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._read_body()
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
        requested = self.headers.get("Access-Control-Request-Headers")
        if requested:
            self.send_header("Access-Control-Allow-Headers", requested)
        self.send_header("Vary", "Access-Control-Request-Headers")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is over the limit."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > BODY_LIMIT:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_LIMIT:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            response = self._respond()
        except Exception:
            log.exception("request failed: %s %s", self.command, self.path)
            response = html_response(500, "Internal Server Error")
        if response.no_answer:
            self.close_connection = True
            return
        self._write(response)
        if response.exit_after is not None:
            self.wfile.flush()
            log.critical("host process exits with status %d", response.exit_after)
            sys.stderr.flush()
            os._exit(response.exit_after)

    def _respond(self) -> Response:
        raw = self._read_body()
        if raw is None:
            self.close_connection = True
            return html_response(413, "PayloadTooLargeError: request entity too large")
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        request = Request(
            method=self.command,
            path=parts.path,
            segments=segments,
            query=dict(parse_qsl(parts.query)),
            headers=self.headers,
            raw_body=raw,
        )
        try:
            request.body, request.files = parse_body(request.content_type, raw)
        except BodyError as exc:
            return html_response(400, f"SyntaxError: {exc}")
        return self.server.app.handle(request)

    def _write(self, response: Response) -> None:
        payload = response.payload()
        self.send_response(response.status)
        self.send_header("X-Powered-By", "Express")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
