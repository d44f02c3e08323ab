"""The simulator's ordered delivery (``normal``, ``duplicate``, ``shuffle``): one session's
events are posted one after another, and the sessions share the webhook workers fairly. A
session whose events never stop (the acks of a steady stream of sends) must not hold a worker
until its queue runs dry, or a quiet session's events (a re-link's QR and login) wait behind
it for as long as the load lasts."""

from __future__ import annotations

import threading
import time

from local.simulator.config import Settings, SimConfig
from local.simulator.scheduler import Scheduler
from local.simulator.webhooks import Webhooks
from local.threaded_server import serving
from tests.stub_servers import StubHandler

WORKERS = 16  # the simulator's webhook pool
BUSY_EVENTS = 150  # per busy session, each answered after ANSWER_S
ANSWER_S = 0.005


def test_a_quiet_session_is_not_held_behind_sessions_whose_events_never_stop() -> None:
    arrived: dict[str, float] = {}  # path -> when its first POST was answered
    lock = threading.Lock()

    class Slow(StubHandler):
        def do_POST(self) -> None:
            self.read_body()
            time.sleep(ANSWER_S)
            with lock:
                arrived.setdefault(self.path, time.monotonic())
            self.answer(200, b"")

    scheduler = Scheduler()
    webhooks = Webhooks(Settings(SimConfig(delivery_mode="normal")), scheduler)
    with serving(Slow) as server:
        url = server.url
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
            while "/quiet" not in arrived and time.monotonic() < deadline:
                time.sleep(0.01)
            waited = arrived["/quiet"] - emitted
            # Behind one event of each busy session at most (about 16 x 5 ms), not behind their
            # whole queues (150 x 5 ms each, with every worker taken).
            assert waited < 0.4, waited
        finally:
            webhooks.shutdown()
            scheduler.stop()
