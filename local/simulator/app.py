"""The simulator as one object: its parts wired together, and the top-level dispatch.

``/healthz`` and ``/_sim/...`` are always answered; ``/api/...`` goes through the injected
faults first, then the wppconnect routes, then the server's ``session`` quirk: when the
request's ``Content-Type`` is exactly ``application/json``, a JSON object answer gets
``session`` added if it has no truthy one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

from local.simulator.api import OPEN_LIST_FAILED, WppApi
from local.simulator.auth import TokenAuthority
from local.simulator.config import DEFAULT_FIDELITY, Settings, SimConfig, with_fidelity
from local.simulator.controls import Controls
from local.simulator.host import HostLog
from local.simulator.messaging import Messenger
from local.simulator.protocol import (
    NO_ANSWER,
    Request,
    Response,
    cannot,
    html_response,
    json_response,
)
from local.simulator.scheduler import Scheduler
from local.simulator.state import SessionManager
from local.simulator.store import SessionStore
from local.simulator.webhooks import Webhooks

log = logging.getLogger(__name__)

_GARBAGE = b'{"status":"success","response":[{"id":"true_\x00\xff<html><body>502 Bad Gateway'


class Simulator:
    def __init__(self, secret_key: str, data_dir: Path, config: SimConfig | None = None) -> None:
        self.started = time.monotonic()
        self.settings = Settings(config or with_fidelity(SimConfig(), DEFAULT_FIDELITY))
        self.scheduler = Scheduler()
        self.store = SessionStore(data_dir)
        self.auth = TokenAuthority(secret_key)
        self.webhooks = Webhooks(self.settings, self.scheduler)
        self.manager = SessionManager(self.settings, self.store, self.webhooks, self.scheduler)
        self.messenger = Messenger(self.manager)
        self.host = HostLog(data_dir)
        self.api = WppApi(self.settings, self.auth, self.manager, self.messenger, self.host)
        self._api_in_flight = 0  # /api requests received and not yet answered
        self._api_lock = threading.Lock()
        self.controls = Controls(
            self.settings,
            self.manager,
            self.messenger,
            self.webhooks,
            self.reset,
            self.host,
            in_flight=lambda: self._api_in_flight,
        )

    def handle(self, req: Request) -> Response:
        first = req.segments[0] if req.segments else ""
        if first == "healthz" and len(req.segments) == 1 and req.method in ("GET", "HEAD"):
            return Response(
                200,
                {
                    "uptime": time.monotonic() - self.started,
                    "message": "OK",
                    "timestamp": int(time.time() * 1000),
                },
            )
        if first == "_sim":
            return self.controls.handle(req)
        if first == "api":
            with self._api_lock:
                self._api_in_flight += 1
            try:
                return self._handle_api(req)
            finally:
                with self._api_lock:
                    self._api_in_flight -= 1
        return cannot(req.method, req.path)

    def _handle_api(self, req: Request) -> Response:
        faulty = self._inject_faults(req)
        if faulty is not None:
            return faulty
        response = self.api.handle(req)
        self._add_session_key(req, response)
        return response

    def _inject_faults(self, req: Request) -> Response | None:
        faults = self.settings.faults
        if not faults.applies_to(req.segments[1:]):
            return None
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.down:
            return NO_ANSWER
        if faults.error_rate and random.random() < faults.error_rate:
            garbage = faults.error_mode == "garbage" or (
                faults.error_mode == "mixed" and random.random() < 0.5
            )
            if garbage:
                return Response(200, _GARBAGE)
            if faults.error_mode == "throw":
                return _thrown(req)
            return html_response(500, "Internal Server Error")
        return None

    @staticmethod
    def _add_session_key(req: Request, response: Response) -> None:
        if req.content_type != "application/json" or not isinstance(response.body, dict):
            return
        if response.body.get("session"):
            return
        if req.client_session is None:
            response.body.pop("session", None)
        else:
            response.body["session"] = req.client_session

    def start_all_on_boot(self) -> None:
        """What ``startAllSession: true`` does when the server boots."""
        names = self.manager.start_all({})
        if names:
            log.info("starting stored sessions: %s", ", ".join(names))

    def reset(self) -> None:
        """Forget every session, stored file, message, event, setting and fault."""
        self.scheduler.cancel_all()
        self.webhooks.reset()
        self.manager.reset()
        self.messenger.reset()
        self.store.wipe()
        self.host.wipe()
        self.settings.reset()

    def close(self) -> None:
        self.scheduler.stop()
        self.webhooks.shutdown()


def _thrown(req: Request) -> Response:
    """What a route answers when the library throws under its controller: get-messages'
    catch answers 401 (DeviceController.getMessages), the others 500."""
    route = req.segments[2].lower() if len(req.segments) > 2 else ""
    if route == "get-messages":
        return json_response(401, OPEN_LIST_FAILED)
    return json_response(500, {"status": "error", "message": "Error", "error": {}})
