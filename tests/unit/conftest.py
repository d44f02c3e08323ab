"""Unit tests start no server of the local stack (``make unit`` stays a fast loop): a test
here that asks for one of its fixtures stops the run at collection, before anything starts.
In-process stand-ins (a fake host, a JWKS or PostgREST server on a thread) are fine."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STACK_FIXTURES = {"database", "make_database", "db", "simulator", "gateway", "handlers"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [
        f"{item.nodeid} uses {', '.join(sorted(used))}"
        for item in items
        if item.path.is_relative_to(HERE)
        and (used := STACK_FIXTURES & set(getattr(item, "fixturenames", ())))
    ]
    if wrong:
        raise pytest.UsageError(
            "unit tests start no server; move these to tests/integration:\n  " + "\n  ".join(wrong)
        )
