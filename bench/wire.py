"""An independent check of the database round trips, at the server's door.

:class:`PgProxy` sits between the functions and PostgreSQL (127.0.0.1 in front of the real
socket) and reads the frontend protocol: every statement (simple ``Query`` or extended
``Parse``/``Execute``), every ``Sync``, every ``BEGIN``. It can also hold each of the
server's answers for a fixed delay: a call then takes ``delay x (the times it waited for the
server)`` longer, which counts network round trips without trusting anyone's counter (the
psycopg transport claims one per call by pipelining ``BEGIN; set_config; select; COMMIT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

PROTOCOL_3 = 196608


@dataclass
class WireCounts:
    messages: Counter[str] = field(default_factory=Counter)
    statements: list[str] = field(default_factory=list)
    connections: int = 0

    def copy(self) -> WireCounts:
        return WireCounts(Counter(self.messages), list(self.statements), self.connections)

    def minus(self, before: WireCounts) -> dict[str, Any]:
        texts = self.statements[len(before.statements) :]
        return {
            "statements": len(texts),
            "transactions": self.messages["transactions"] - before.messages["transactions"],
            "syncs": self.messages["S"] - before.messages["S"],
            "connections": self.connections - before.connections,
            "texts": texts,
        }


class _ClientStream:
    """Splits the client's byte stream into protocol messages."""

    def __init__(self, counts: WireCounts, lock: threading.Lock) -> None:
        self.buffer = bytearray()
        self.started = False
        self.counts = counts
        self.lock = lock

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:  # SSLRequest, GSSENCRequest, then the StartupMessage
                if len(self.buffer) < 8:
                    return
                size = int.from_bytes(self.buffer[0:4], "big")
                if len(self.buffer) < size:
                    return
                code = int.from_bytes(self.buffer[4:8], "big")
                del self.buffer[:size]
                self.started = code == PROTOCOL_3
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            size = int.from_bytes(self.buffer[1:5], "big")
            if len(self.buffer) < 1 + size:
                return
            payload = bytes(self.buffer[5 : 1 + size])
            del self.buffer[: 1 + size]
            with self.lock:
                self.counts.messages[kind] += 1
                if kind in ("Q", "P"):
                    text = payload.split(b"\0", 2)[0 if kind == "Q" else 1].decode()
                    self.counts.statements.append(text)
                    # A transaction starts at an explicit BEGIN, and with each query message
                    # that does not open one (PostgreSQL's implicit transaction).
                    if kind == "Q" or text.strip().upper().startswith("BEGIN"):
                        self.counts.messages["transactions"] += 1


class PgProxy:
    def __init__(self, dsn: str) -> None:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        host = str(info.get("host") or "/tmp")  # noqa: S108 - libpq's default socket folder
        port = int(info.get("port") or 5432)
        self.unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self.target = (host, port)
        self.dsn = dsn
        self.delay_s = 0.0
        self.counts = WireCounts()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> str:
        """Start listening on 127.0.0.1; return the DSN that goes through the proxy."""
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        self.port = future.result(10)
        return psycopg.conninfo.make_conninfo(
            self.dsn,
            host="127.0.0.1",
            port=str(self.port),
            sslmode="disable",
            gssencmode="disable",
        )

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
            for writer in list(self.writers):  # both ends see EOF, so each relay ends
                writer.close()
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=2)
            for task in list(self.tasks):
                task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()

    def snapshot(self) -> WireCounts:
        with self.lock:
            return self.counts.copy()

    async def _listen(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        with self.lock:
            self.counts.connections += 1
        if self.unix_path:
            up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.update((writer, up_writer))
        stream = _ClientStream(self.counts, self.lock)

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                stream.feed(data)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

            async def deliver() -> None:
                while True:
                    due, data = await queue.get()
                    if data is None:
                        break
                    wait = due - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()
                writer.close()

            delivering = asyncio.ensure_future(deliver())
            try:
                while data := await up_reader.read(65536):
                    queue.put_nowait((self.loop.time() + self.delay_s, data))
                queue.put_nowait((0.0, None))
                await delivering
            finally:
                delivering.cancel()

        try:
            with contextlib.suppress(ConnectionError, OSError):
                await asyncio.gather(client_to_server(), server_to_client())
        finally:
            writer.close()
            up_writer.close()
            self.writers.difference_update((writer, up_writer))


@dataclass(frozen=True)
class WireCheck:
    label: str
    make: Callable[[], tuple[str, dict[str, Any]]]  # -> (function, event)


def verify(
    proxy: PgProxy,
    invoke: Callable[[str, dict[str, Any]], tuple[Any, Any]],
    checks: list[WireCheck],
    *,
    delay_s: float = 0.02,
    repeats: int = 5,
) -> dict[str, Any]:
    """Per operation: the statements and transactions on the wire, and the round trips the
    injected delay reveals: how much longer the calls' time inside the store's transport gets
    (median over ``repeats`` calls with the delay and without), over the delay."""
    out: dict[str, Any] = {}
    for check in checks:
        function, event = check.make()
        invoke(function, event)  # a warm connection through the proxy
        plain: list[float] = []
        delayed: list[float] = []
        wire: dict[str, Any] = {}
        counted: list[int] = []
        for delay, times in ((0.0, plain), (delay_s, delayed)):
            proxy.delay_s = delay
            for _ in range(repeats):
                # Let an answer the client did not wait for (a last Sync's) land first, so
                # only the waits inside the call count.
                time.sleep(2 * delay_s)
                function, event = check.make()
                before = proxy.snapshot()
                _, call = invoke(function, event)
                times.append(call.db_wait_ns / 1e9)
                counted.append(call.db)
                wire = proxy.snapshot().minus(before)
        proxy.delay_s = 0.0
        network = (statistics.median(delayed) - statistics.median(plain)) / delay_s
        out[check.label] = {
            "counted_by_transport": sorted(set(counted)),
            "network_round_trips": round(network),
            "network_round_trips_raw": round(network, 2),
            "transactions": wire["transactions"],
            "statements": wire["statements"],
            "syncs": wire["syncs"],
            "statement_texts": [t[:120] for t in wire["texts"]],
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.wire --target DSN --rtt-ms 1``: a proxy that adds a network round
    trip time to every answer, in its own process; prints its DSN, runs until stdin closes."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.wire")
    parser.add_argument("--target", required=True)
    parser.add_argument("--rtt-ms", type=float, default=1.0)
    args = parser.parse_args(argv)
    proxy = PgProxy(args.target)
    dsn = proxy.start()
    proxy.delay_s = args.rtt_ms / 1000
    print(dsn, flush=True)
    try:
        sys.stdin.read()
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
