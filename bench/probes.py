"""Measuring tools the in-process phases share: the floor probe, the host-call meter,
percentiles, and keeping the functions' log lines out of the bench's output."""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_ns: list[int]) -> dict[str, float]:
    ms = [v / 1e6 for v in values_ns]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p99": round(percentile(ms, 99), 3),
        "mean": round(statistics.fmean(ms), 3),
        "min": round(min(ms), 3),
    }


@dataclass(frozen=True)
class Floor:
    """The round trips an operation cannot avoid: database calls and host calls."""

    db: int
    host: int


class FloorProbe:
    """Bare round trips to the same servers: ``select 1`` on a psycopg connection to the same
    database (no prepared statements, as the transport), ``GET /healthz`` to the simulator on
    a kept-alive requests session (as the host client)."""

    def __init__(self, dsn: str, sim_url: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
        self.http = requests.Session()
        self.url = f"{sim_url}/healthz"

    def run(self, floor: Floor) -> tuple[int, int]:
        """(ns spent on the database round trips, ns spent on the host round trips)."""
        t0 = time.perf_counter_ns()
        for _ in range(floor.db):
            self.conn.execute("select 1").fetchone()
        t1 = time.perf_counter_ns()
        for _ in range(floor.host):
            response = self.http.get(self.url, timeout=5)
            response.content  # noqa: B018 - read the body, as a client does
        t2 = time.perf_counter_ns()
        return t1 - t0, t2 - t1

    def close(self) -> None:
        self.conn.close()
        self.http.close()


class HostMeter:
    """Counts and times the requests this process makes to the host's API (``/api/...``)
    through the layer's HTTP client, by wrapping ``Pool.request``."""

    def __init__(self, host_url: str) -> None:
        self.prefix = f"{host_url.rstrip('/')}/api/"
        self.calls = 0
        self.wait_ns = 0
        self._lock = threading.Lock()
        self._original: Any = None

    def install(self) -> None:
        from wa_gateway.http_client import Pool

        original = Pool.request
        meter = self

        def request(pool: Any, method: str, url: str, **kwargs: Any) -> Any:
            if not url.startswith(meter.prefix):
                return original(pool, method, url, **kwargs)
            started = time.perf_counter_ns()
            try:
                return original(pool, method, url, **kwargs)
            finally:
                with meter._lock:
                    meter.calls += 1
                    meter.wait_ns += time.perf_counter_ns() - started

        self._original = original
        Pool.request = request  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from wa_gateway.http_client import Pool

        if self._original is not None:
            Pool.request = self._original  # type: ignore[method-assign]
            self._original = None


@contextmanager
def stdout_to(path: Path) -> Iterator[None]:
    """Send file descriptor 1 (the functions' JSON log lines) to ``path`` meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
