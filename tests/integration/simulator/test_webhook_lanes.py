"""The simulator's ordered delivery (``normal``, ``duplicate``, ``shuffle``): one session's
events are posted one after another, and the sessions share the webhook workers fairly. A
session whose events never stop (the acks of a steady stream of sends) must not hold a worker
until its queue runs dry, or a quiet session's events (a re-link's QR and login) wait behind
it for as long as the load lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.simulator.config import Settings, SimConfig
from local.simulator.scheduler import Scheduler
from local.simulator.webhooks import Webhooks

WORKERS = 16  # the simulator's webhook pool
BUSY_EVENTS = 150  # per busy session, each answered after ANSWER_S
ANSWER_S = 0.005


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                time.sleep(ANSWER_S)
                with receiver.lock:
                    receiver.arrived.setdefault(self.path, time.monotonic())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        receiver = self
        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture()
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


def test_a_quiet_session_is_not_held_behind_sessions_whose_events_never_stop(
    receiver: _Receiver,
) -> None:
    scheduler = Scheduler()
    webhooks = Webhooks(Settings(SimConfig(delivery_mode="normal")), scheduler)
    url = f"http://127.0.0.1:{receiver.server_port}"
    try:
        for lane in range(WORKERS):
            for n in range(BUSY_EVENTS):
                webhooks.emit(
                    lane=f"busy{lane}",
                    session_attr=f"busy{lane}",
                    session_webhook=f"{url}/busy{lane}/{n}",
                    event="onack",
                    payload={"ack": 2},
                )
        time.sleep(0.1)  # every worker is draining a busy session now
        emitted = time.monotonic()
        webhooks.emit(
            lane="quiet",
            session_attr="quiet",
            session_webhook=f"{url}/quiet",
            event="qrcode",
            payload={},
        )
        deadline = emitted + 30
        while "/quiet" not in receiver.arrived and time.monotonic() < deadline:
            time.sleep(0.01)
        waited = receiver.arrived["/quiet"] - emitted
        # Behind one event of each busy session at most (about 16 x 5 ms), not behind their
        # whole queues (150 x 5 ms each, with every worker taken).
        assert waited < 0.4, waited
    finally:
        webhooks.shutdown()
        scheduler.stop()
