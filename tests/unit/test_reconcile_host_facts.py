"""Reconcile asks each host for its facts (uptime, sessions) once per pass, and a host that is
slow to answer holds up the sessions of that host only."""

from __future__ import annotations

import threading
from typing import Any

from wa_gateway.jobs.reconcile_session import HostFacts


class SlowHost:
    """A host whose answers wait for ``release``."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.release = release
        self.calls = 0

    def uptime_s(self) -> float:
        self.calls += 1
        if self.release is not None:
            assert self.release.wait(10)
        return 100.0

    def list_sessions(self) -> list[str]:
        return ["a"]


class Session:
    def __init__(self, host: Any) -> None:
        self.host = host


def test_a_slow_host_holds_up_its_own_sessions_only() -> None:
    facts = HostFacts()
    release = threading.Event()
    slow, fast = SlowHost(release), SlowHost()
    waiting = threading.Thread(target=facts.of, args=("slow", Session(slow)))
    waiting.start()
    try:
        done = threading.Event()

        def other_host() -> None:
            facts.of("fast", Session(fast))
            done.set()

        threading.Thread(target=other_host, daemon=True).start()
        assert done.wait(5), "the other host's facts waited for the slow host"
    finally:
        release.set()
        waiting.join(10)
    assert facts.of("slow", Session(slow)) == (100.0, frozenset({"a"}))
    assert slow.calls == 1  # asked once per pass
