"""What happens to the host process itself: unhandled rejections, and exits.

``statusConnection`` answers 404 (or 400) and then calls ``next()``; the controller runs on,
fails on the missing client (or finishes) and answers a second time, which throws
ERR_HTTP_HEADERS_SENT inside an async handler. Nothing awaits that promise, so Node reports
an unhandled rejection. The wppconnect library installs a process-wide ``unhandledRejection``
handler that only logs it, so the real host stays up; ``exit_on_unhandled_rejection`` makes
the simulator exit instead, as a host without that handler (or run with
``--unhandled-rejections=strict``) would.

Every such event is counted (``GET /_sim/host``) and appended as a JSON line to
``<data dir>/host-events.log``, which outlives the process, so a test can see that a host
exited and why.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The exit status of a simulator that died of an unhandled rejection (EX_SOFTWARE).
UNHANDLED_REJECTION_EXIT = 70
HEADERS_SENT = (
    "Unhandled Rejection: Error [ERR_HTTP_HEADERS_SENT]: "
    "Cannot set headers after they are sent to the client"
)


class HostLog:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "host-events.log"
        self._lock = threading.Lock()
        self.unhandled_rejections = 0

    def record(self, event: str, **detail: Any) -> None:
        line = json.dumps({"event": event, "t": time.time(), **detail}, ensure_ascii=False)
        with self._lock:
            if event == "unhandledRejection":
                self.unhandled_rejections += 1
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

    def unhandled_rejection(self, route: str, session: str) -> None:
        log.error("%s (route %s, session %s)", HEADERS_SENT, route, session)
        self.record("unhandledRejection", route=route, session=session, error=HEADERS_SENT)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines()
            except OSError:
                return []
        return [json.loads(line) for line in lines if line.strip()]

    def describe(self) -> dict[str, Any]:
        return {"unhandledRejections": self.unhandled_rejections, "events": self.events()}

    def wipe(self) -> None:
        with self._lock:
            self.unhandled_rejections = 0
            self.path.unlink(missing_ok=True)
