"""A test endpoint for event delivery: an HTTP server on 127.0.0.1 that keeps every request it
gets and answers as it is told.

Tests start one in-process (``EndpointReceiver``, on a free port) and register its URL as an
endpoint, with ``ALLOW_LOCAL_ENDPOINTS`` set on the gateway (events go only to https URLs of
public addresses otherwise). ``make dev`` starts one too and prints its URL; ``python -m
local.endpoint_receiver --port 3100`` runs one that prints what it gets.

Each path (``/a``, ``/b``, ...) is an endpoint of its own: ``script(path, [500, 500, 500])``
makes its next answers those statuses (then 200 again), ``delay(path, 3.0)`` makes it wait before
answering, ``received(path)`` lists what it got, in order, answered or not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    status: int  # what it was answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class EndpointReceiver:
    def __init__(self, port: int = 0, *, echo: bool = False) -> None:
        self._lock = threading.Lock()
        self._received: dict[str, list[Received]] = defaultdict(list)
        self._scripts: dict[str, deque[int]] = defaultdict(deque)
        self._delays: dict[str, float] = {}
        self._echo = echo
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> EndpointReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> EndpointReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, path: str, statuses: list[int]) -> None:
        with self._lock:
            self._scripts[path].extend(statuses)

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self._delays[path] = seconds

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._received[path])

    def _answer(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, float]:
        with self._lock:
            script = self._scripts[path]
            status = script.popleft() if script else 200
            delay = self._delays.get(path, 0.0)
            self._received[path].append(Received(path, headers, body, time.time(), status))
        if self._echo:
            print(f"{path} {status} {body.decode('utf-8', 'replace')}", flush=True)
        return status, delay

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, delay = receiver._answer(self.path, headers, body)
                if delay:
                    time.sleep(delay)
                answer = b'{"ok":true}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3100)
    args = parser.parse_args()
    receiver = EndpointReceiver(args.port, echo=True)
    print(f"endpoint receiver on {receiver.url}/<any path>", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        receiver.server.serve_forever()


if __name__ == "__main__":
    main()
