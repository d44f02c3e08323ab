"""Webhook delivery, like ``callWebHook`` in wppconnect-server.

Each event is one JSON ``POST`` of ``{"event", "session", ...payload}`` to the session's own
``webhook`` (from its start-session body) or else the global URL. No signature, no retry,
and the caller never waits: deliveries run on a thread pool and a failure is only logged.
Events whose name, ``from`` or ``type`` is in the ignore list are dropped.

Delivery modes let tests face what a real network does:

- ``normal``: the events of one session are posted one after another, in order (the sessions
  take turns at the 16 workers, an event each);
- ``duplicate``: every event is posted twice;
- ``shuffle``: events are held for ``shuffle_window_ms`` from the first of a burst, then
  posted in random order (a burst is whatever one action produced within that window);
- ``shuffle+duplicate``: both;
- ``concurrent``: what the real server does (``callWebHook`` fires ``axios.post`` without
  awaiting it): every POST starts at once on its own after a random delay of up to
  ``concurrent_jitter_ms``, so events of one session can arrive in any order.

With ``x_verify_token`` set, each POST also carries ``x-verify: <token>``, as a patched
server or a forwarding proxy would; a stock server sends no such header.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from local.simulator.config import Settings
from local.simulator.forms import js_truthy
from local.simulator.scheduler import Scheduler

log = logging.getLogger(__name__)

USER_AGENT = "axios/1.7.7"
_EVENT_LOG_LIMIT = 1000


_LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEFAULT_OPENER = urllib.request.build_opener()


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _redacted(url: str) -> str:
    """The URL without its query string, which may carry a verify token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass
class EventRecord:
    """One emitted event, kept for ``GET /_sim/<session>/events``."""

    seq: int
    event: str
    body: dict[str, Any]
    target: bool
    ignored: bool
    results: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event": self.event,
            "body": self.body,
            "sent": self.target and not self.ignored,
            "ignored": self.ignored,
            "results": list(self.results),
        }


@dataclass
class _Delivery:
    url: str
    payload: bytes
    record: EventRecord
    on_success: Callable[[], None] | None
    done: list[bool] = field(default_factory=lambda: [False])


class Webhooks:
    def __init__(self, settings: Settings, scheduler: Scheduler) -> None:
        self._settings = settings
        self._scheduler = scheduler
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sim-webhook")
        self._lock = threading.Lock()
        self._lanes: dict[str, deque[_Delivery]] = {}
        self._draining: set[str] = set()
        self._held: dict[str, list[_Delivery]] = {}
        self._generation = 0
        self._seq = itertools.count(1)
        self._records: dict[str, deque[EventRecord]] = {}

    def emit(
        self,
        *,
        lane: str,
        session_attr: str | None,
        session_webhook: Any,
        event: str,
        payload: dict[str, Any],
        on_success: Callable[[], None] | None = None,
    ) -> None:
        """Send one event for session ``lane`` (its name) without waiting.

        ``session_attr`` is the client's ``session`` property; None leaves the key out of
        the body, as the server does when that property is missing.
        """
        config = self._settings.config
        url = session_webhook if js_truthy(session_webhook) else config.webhook_url
        body: dict[str, Any] = {"event": event}
        if session_attr is not None:
            body["session"] = session_attr
        body.update(payload)
        ignore = config.webhook_ignore
        ignored = (
            event in ignore
            or payload.get("from") in ignore
            or (isinstance(payload.get("type"), str) and payload.get("type") in ignore)
        )
        record = EventRecord(next(self._seq), event, body, bool(url), ignored)
        with self._lock:
            records = self._records.setdefault(lane, deque(maxlen=_EVENT_LOG_LIMIT))
            records.append(record)
        if not url or ignored:
            return
        if not isinstance(url, str):
            log.warning("webhook %s for %s not sent: the webhook URL is not a string", event, lane)
            record.results.append("error: invalid url")
            return
        if random.random() < config.webhook_drop_rate:
            record.results.append("dropped")
            return
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        copies = 2 if "duplicate" in config.delivery_mode else 1
        deliveries = [_Delivery(url, data, record, on_success) for _ in range(copies)]
        # Copies share one flag so that readMessage runs once per event.
        for d in deliveries[1:]:
            d.done = deliveries[0].done
        if config.delivery_mode == "concurrent":
            for delivery in deliveries:
                self._fire(delivery, random.uniform(0, config.concurrent_jitter_ms) / 1000)
        elif "shuffle" in config.delivery_mode:
            self._hold(lane, deliveries, config.shuffle_window_ms / 1000)
        else:
            self._enqueue(lane, deliveries)

    def events(self, lane: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._records.get(lane, ())]

    def reset(self) -> None:
        """Drop queued and held deliveries and the event log (in-flight POSTs finish)."""
        with self._lock:
            self._generation += 1
            self._lanes.clear()
            self._held.clear()
            self._records.clear()

    def shutdown(self) -> None:
        self.reset()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fire(self, delivery: _Delivery, delay_s: float) -> None:
        """Post on its own after ``delay_s``, racing every other POST."""
        with self._lock:
            generation = self._generation

        def submit() -> None:
            with self._lock:
                if generation != self._generation:
                    return
            with contextlib.suppress(RuntimeError):  # the pool is shut down
                self._pool.submit(self._post, delivery)

        self._scheduler.call_later(delay_s, submit)

    def _hold(self, lane: str, deliveries: list[_Delivery], window_s: float) -> None:
        with self._lock:
            held = self._held.get(lane)
            if held is not None:
                held.extend(deliveries)
                return
            self._held[lane] = list(deliveries)
            generation = self._generation
        self._scheduler.call_later(window_s, lambda: self._release(lane, generation))

    def _release(self, lane: str, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            held = self._held.pop(lane, [])
        random.shuffle(held)
        self._enqueue(lane, held)

    def _enqueue(self, lane: str, deliveries: list[_Delivery]) -> None:
        with self._lock:
            self._lanes.setdefault(lane, deque()).extend(deliveries)
            if lane in self._draining:
                return
            self._draining.add(lane)
            generation = self._generation
        self._drain_later(lane, generation)

    def _drain_later(self, lane: str, generation: int) -> None:
        """Queue the lane's next delivery at the back of the pool's line."""
        try:
            self._pool.submit(self._drain, lane, generation)
        except RuntimeError:  # pool shut down
            with self._lock:
                self._draining.discard(lane)

    def _drain(self, lane: str, generation: int) -> None:
        """Post the lane's next event, then go to the back of the pool's line for the one
        after: a session whose events never stop (acks of a steady stream of sends) takes its
        turn with the others instead of holding a worker for good."""
        with self._lock:
            queue = self._lanes.get(lane)
            if generation != self._generation or not queue:
                self._draining.discard(lane)
                if generation == self._generation:
                    self._lanes.pop(lane, None)
                return
            delivery = queue.popleft()
        self._post(delivery)
        self._drain_later(lane, generation)

    def _post(self, delivery: _Delivery) -> None:
        config = self._settings.config
        headers = {
            "Accept": "application/json, text/plain, */*",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if config.x_verify_token:
            headers["x-verify"] = config.x_verify_token
        if urlsplit(delivery.url).scheme not in ("http", "https"):
            log.warning("webhook %s not sent: not an http(s) URL", delivery.record.event)
            delivery.record.results.append("error: invalid url")
            return
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
            delivery.url, data=delivery.payload, headers=headers, method="POST"
        )
        opener = _LOOPBACK_OPENER if _is_loopback(delivery.url) else _DEFAULT_OPENER
        started = time.monotonic()
        try:
            with opener.open(request, timeout=config.webhook_timeout_ms / 1000) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (OSError, ValueError) as exc:
            log.warning(
                "Error calling Webhook. event=%s url=%s error=%s",
                delivery.record.event,
                _redacted(delivery.url),
                exc,
            )
            delivery.record.results.append(f"error: {type(exc).__name__}")
            return
        delivery.record.results.append(str(status))
        log.debug(
            "webhook %s -> %s in %.0f ms",
            delivery.record.event,
            status,
            (time.monotonic() - started) * 1000,
        )
        if 200 <= status < 300:
            if delivery.on_success is not None and not delivery.done[0]:
                delivery.done[0] = True
                try:
                    delivery.on_success()
                except Exception:
                    log.exception("after-delivery callback failed")
        else:
            log.warning(
                "Error calling Webhook. event=%s url=%s status=%s",
                delivery.record.event,
                _redacted(delivery.url),
                status,
            )
