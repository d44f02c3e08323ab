"""The host calls of one session's reconcile, counted for its report."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wa_gateway.host.session import HostSession


class CountingHost:
    """Counts the host calls of one session's reconcile."""

    def __init__(self, host: HostSession) -> None:
        self.host = host
        self.calls = 0

    def call[T](self, operation: Callable[[str], T]) -> T:
        self.calls += 1
        return self.host.call(operation)

    def call_if_connected[T](self, operation: Callable[[str], T]) -> T | None:
        self.calls += 1
        answer = self.host.call_if_connected(operation)
        self.calls += answer is not None
        return answer
