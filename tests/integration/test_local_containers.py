"""The local gateway's Lambda containers (``local.containers``): a handler that raises fails
its invocation and its container serves the next one, as a Lambda environment does after an
unhandled exception; a container whose process ends is replaced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.containers import ContainerDied, FunctionContainers, HandlerFailed
from local.function_url import LambdaContext

HANDLER = """
import os


def handler(event, context):
    if event.get("do") == "raise":
        raise RuntimeError("the function's own failure")
    if event.get("do") == "exit":
        os._exit(3)
    return os.getpid()
"""


@pytest.fixture()
def containers(tmp_path: Path) -> Iterator[FunctionContainers]:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(HANDLER)
    function = FunctionContainers(str(folder), limit=1)
    yield function
    function.close()


def call(function: FunctionContainers, do: str = "") -> int:
    return int(function.invoke({"do": do}, LambdaContext(function_name="fn", aws_request_id="r")))


def test_a_handler_that_raises_keeps_its_container(containers: FunctionContainers) -> None:
    first = call(containers)
    with pytest.raises(HandlerFailed):
        call(containers, "raise")
    assert call(containers) == first


def test_a_container_whose_process_ends_is_replaced(containers: FunctionContainers) -> None:
    first = call(containers)
    with pytest.raises(ContainerDied):
        call(containers, "exit")
    assert call(containers) not in (first, 0)
