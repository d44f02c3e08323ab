"""Waiting for something the test can observe, instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.02
PATIENCE_S = 10.0
"""The default deadline: long enough for a machine busy with other work. A wait ends as soon as
its condition holds, so only a failing test waits this long; a test that means "within so
long" (a promise of the product) says so."""


def _truthy(value: Any) -> bool:
    return bool(value)


def wait_until[T](
    probe: Callable[[], T],
    done: Callable[[T], bool] = _truthy,
    within_s: float = PATIENCE_S,
    *,
    message: str = "",
) -> T:
    """Call ``probe`` until ``done`` accepts its value (by default: until it is truthy), and
    return that value; fail the test, with ``message`` and the last value, if ``within_s``
    seconds go by first. ``probe`` runs at least once, and once more after the deadline, so
    a slow first call cannot leave the condition unchecked."""
    deadline = time.monotonic() + within_s
    while True:
        past_deadline = time.monotonic() > deadline
        value = probe()
        if done(value):
            return value
        if past_deadline:
            what = message or "the condition"
            raise AssertionError(f"{what} not reached within {within_s} s; last: {value!r}")
        time.sleep(POLL_S)
