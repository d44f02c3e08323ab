"""The scheduled functions' shared face (``JobApp``): the time left, the report, the metrics,
the log's context, in one place; and each scheduled handler is only its name, needs and pass."""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.function_url import LambdaContext
from wa_gateway import runtime
from wa_gateway.job_app import JobApp
from wa_gateway.observability import logger

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Report:
    done: int

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done}

    def counts(self) -> dict[str, int]:
        return {"done": self.done}


class Pass:
    def __init__(self) -> None:
        self.left: list[float] = []
        self.log_keys: dict[str, Any] = {}

    def run(self, remaining_s: Callable[[], float]) -> Report:
        self.left.append(remaining_s())
        self.log_keys = dict(logger.get_current_keys())
        return Report(done=3)


@pytest.fixture()
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@127.0.0.1:9/db")
    runtime.reset()
    yield
    runtime.reset()


def test_a_job_runs_its_pass_with_the_time_left_and_answers_and_counts_its_report(
    environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    the_pass = Pass()
    job = JobApp("tidy", needs=("store",), runner=lambda: the_pass)

    answer = job.handler({"source": "schedule"}, LambdaContext("tidy", "r1", timeout_ms=90_000))

    assert answer == {"done": 3}
    assert len(the_pass.left) == 1 and 80 < the_pass.left[0] <= 90
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    emitted = [line for line in lines if "_aws" in line]
    assert emitted and emitted[-1]["tidy-done"] == [3.0]
    keys = the_pass.log_keys
    assert keys["function"] == "tidy" and keys["function_request_id"] == "r1"


def test_a_job_whose_settings_are_missing_does_not_start(environment: None) -> None:
    os.environ.pop("DATABASE_URL")
    runtime.reset()
    with pytest.raises(SystemExit):
        JobApp("tidy", needs=("store",), runner=Pass)


@pytest.mark.parametrize("job", ["purge", "scheduler", "reconcile"])
def test_each_scheduled_handler_is_a_job_app_and_nothing_more(job: str) -> None:
    tree = ast.parse((ROOT / "functions" / job / "app.py").read_text())
    statements = [node for node in tree.body if not isinstance(node, ast.Expr | ast.ImportFrom)]
    assert len(statements) <= 3, ast.dump(tree)[:500]
    assert not any(isinstance(node, ast.FunctionDef) for node in tree.body)
