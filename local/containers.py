"""A function's Lambda containers, locally: child processes of the gateway, each of which
imported one function's handler and runs one invocation at a time, as a Lambda container does.

Each function has containers of its own, so one function's invocation never waits for
another's: a start that waits for the old browser to close (a webhook) gets that webhook while
it waits, as it does in AWS. Powertools' resolver, logger and metrics keep their state per
process, which is why one process cannot serve two invocations at once, and why a container is
a process. The gateway starts one container per function as it starts (so the first request
is warm, as before), and more on demand, up to ``LOCAL_CONTAINERS`` per function (default 1),
as Lambda adds containers when a function's invocations overlap. A container that dies under an
invocation answers it as Lambda does (502) and is replaced by the next request; a handler
that raises answers 502 too, and its container goes on serving, as a Lambda environment does.

A container reads invocations from a socket it shares with the gateway and exits when the
gateway closes it, or dies: no container outlives its gateway.

Run by the gateway: ``python -m local.containers <folder> <socket fd>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from local.function_url import LambdaContext

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
READY = "ready"

Handler = Callable[[dict[str, Any], Any], Any]


class ContainerDied(Exception):
    """The container's process ended under an invocation (or before it was ready)."""


class HandlerFailed(Exception):
    """The handler raised: the invocation failed, and the container lives on."""


def load_handler(folder: str) -> Handler | None:
    """Import ``functions/<folder>/app.py`` under a name of its own; None if absent."""
    path = FUNCTIONS_DIR / folder / "app.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"functions.{folder}.app", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


class Container:
    """One child process serving one function, one invocation at a time."""

    def __init__(self, folder: str) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.containers", folder, str(theirs.fileno())],
                cwd=ROOT,
                pass_fds=(theirs.fileno(),),
            )
            self.conn = Connection(os.dup(ours.fileno()))
        try:
            answer = self.conn.recv()
        except (EOFError, OSError):
            answer = None
        if answer != READY:
            self.close()
            raise ContainerDied(f"{folder} did not start")

    def invoke(self, event: dict[str, Any], context: LambdaContext) -> Any:
        """The handler's result; ``HandlerFailed`` when the handler raised,
        ``ContainerDied`` when the process ended under it."""
        try:
            self.conn.send((event, dataclasses.asdict(context)))
            crashed, result = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise ContainerDied() from exc
        if crashed:
            raise HandlerFailed()
        return result

    def close(self) -> None:
        self.conn.close()
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class FunctionContainers:
    """A function's containers: an idle one serves the next invocation; when none is idle, a
    new one starts, up to ``limit``; past that the invocation waits its turn (first come,
    first served: under a flood of one function's requests none waits for ever)."""

    def __init__(self, folder: str, limit: int) -> None:
        self.folder = folder
        self.limit = max(1, limit)
        self._idle: list[Container] = []
        self._waiting: deque[_Turn] = deque()
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False

    def warm(self) -> None:
        """Start the first container now, as the function's first request would (one that
        does not start has said why on its stderr; a request tries again)."""
        with contextlib.suppress(ContainerDied):
            self._release(self._acquire())

    def invoke(self, event: dict[str, Any], context: LambdaContext) -> Any:
        container = self._acquire()
        try:
            result = container.invoke(event, context)
        except ContainerDied:
            self._discard(container)
            raise
        except HandlerFailed:
            self._release(container)
            raise
        self._release(container)
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for container in idle:
            container.close()

    def _acquire(self) -> Container:
        with self._lock:
            if self._idle and not self._waiting:
                return self._idle.pop()
            if self._count < self.limit and not self._waiting:
                self._count += 1
                turn = None
            else:
                turn = _Turn()
                self._waiting.append(turn)
        if turn is not None:
            turn.given.wait()
            if turn.container is not None:
                return turn.container
        try:  # a new container, or one in place of a container that died
            return Container(self.folder)
        except BaseException:
            self._discard(None)
            raise

    def _release(self, container: Container) -> None:
        with self._lock:
            if self._waiting:
                turn = self._waiting.popleft()
                turn.container = container
                turn.given.set()
                return
            if not self._closed:
                self._idle.append(container)
                return
        container.close()

    def _discard(self, container: Container | None) -> None:
        """A container gone (or never started): its place goes to the next in line."""
        if container is not None:
            container.close()
        with self._lock:
            if self._waiting:
                self._waiting.popleft().given.set()  # it starts a container of its own
                return
            self._count -= 1


@dataclasses.dataclass
class _Turn:
    """An invocation waiting for a container: given one, or the place of one that died."""

    given: threading.Event = dataclasses.field(default_factory=threading.Event)
    container: Container | None = None


def serve(folder: str, fd: int) -> None:
    """The container's side: import the handler, say ready, run what comes until the socket
    closes. A handler that raises is an invocation Lambda answers with 502."""
    conn = Connection(fd)
    handler = load_handler(folder)
    if handler is None:
        return
    conn.send(READY)
    while True:
        try:
            event, context = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = (False, handler(event, LambdaContext(**context)))
        except BaseException:  # what Lambda answers when the function itself crashes
            answer = (True, None)
        try:
            conn.send(answer)
        except OSError:  # the gateway is gone
            return


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
