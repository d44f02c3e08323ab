"""The simulated host as the simulator's tests see it: a webhook receiver in this process, a
client of the host's API (``requests`` with ``json=``), and a simulator process of a test's
own."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from local.processes import free_port
from local.stack import SimulatorProcess
from local.threaded_server import ThreadedServer
from tests.stub_servers import StubHandler
from tests.waiting import wait_until

SECRET = "THISISMYSECURETOKEN"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DISCONNECTED = {
    "response": None,
    "status": "Disconnected",
    "message": "A sessão do WhatsApp não está ativa.",
}
CLOSED_OK = {"status": True, "message": "Session successfully closed"}


# --- the webhook receiver -----------------------------------------------------------------------


@dataclass
class Hook:
    session: str | None  # from the URL's query string, which start-session registered
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """Collects the simulator's webhook POSTs; answers ``answer_status`` to each."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.answer_status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(StubHandler):
            def do_POST(self) -> None:
                raw = self.read_body()
                query = parse_qs(urlsplit(self.path).query)
                hook = Hook(
                    session=query.get("session", [None])[0],
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw),
                )
                with receiver._lock:
                    receiver.hooks.append(hook)
                self.answer(receiver.answer_status, b'{"ok":true}')

        self.server = ThreadedServer(Handler).start()
        self.base = self.server.url

    def url_for(self, session: str) -> str:
        return f"{self.base}/hook?session={session}&verify=proof-{session}"

    def of(self, session: str) -> list[Hook]:
        with self._lock:
            return [h for h in self.hooks if h.session == session]

    def events(self, session: str) -> list[tuple[str, Any]]:
        """(event, status or ack) pairs, in arrival order."""
        return [
            (h.body["event"], h.body.get("status", h.body.get("ack"))) for h in self.of(session)
        ]

    def wait_for_exactly(self, session: str, expected: list[tuple[str, Any]]) -> None:
        """Until the (event, status or ack) pairs that arrived are ``expected``, in any order:
        a host that does not await its webhooks (the real one) delivers them so."""
        wait_until(
            lambda: Counter(self.events(session)),
            lambda arrived: arrived == Counter(expected),
            message=f"the events {expected} for {session}",
        )

    def wait_for(self, session: str, event: str, detail: Any = None, count: int = 1) -> list[Hook]:
        def found() -> list[Hook]:
            return [
                h
                for h in self.of(session)
                if h.body["event"] == event
                and (detail is None or detail in (h.body.get("status"), h.body.get("ack")))
            ]

        return wait_until(
            found,
            lambda hooks: len(hooks) >= count,
            message=f"{count} x {event} {detail or ''} for {session}",
        )

    def clear(self) -> None:
        with self._lock:
            self.hooks.clear()
        self.answer_status = 200


# --- the simulator process ----------------------------------------------------------------------


def start_host(data_dir: Path, *args: str, secret_key: str = SECRET) -> SimulatorProcess:
    """A simulator process of the calling test alone, on a free port, its sessions in
    ``data_dir``: stopped by the test (``stop()`` gives its exit code)."""
    return SimulatorProcess(free_port(), data_dir, secret_key, args=args).start()


def linked_on_own_host(
    data_dir: Path, receiver: Receiver, sessions: list[str]
) -> tuple[SimulatorProcess, Host]:
    """A simulator process of the test's own (``start_host``, no start-all at boot) as quick as
    the shared one, with ``sessions`` linked; the process and a client of it."""
    process = start_host(data_dir, "--no-start-all")
    host = Host(process.url)
    host.configure(init_delay_ms=20, connect_delay_ms=50)
    for session in sessions:
        host.connect(session, receiver)
    return process, host


class Host:
    """The simulated host as a client sees it (``requests`` with ``json=``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.tokens: dict[str, str] = {}

    def follow(self, process: SimulatorProcess) -> None:
        """Talk to ``process`` from now on: the host restarted, on another port."""
        self.url, self.http = process.url, requests.Session()

    def token(self, session: str) -> str:
        if session not in self.tokens:
            answer = self.http.post(f"{self.url}/api/{session}/{SECRET}/generate-token")
            self.tokens[session] = answer.json()["token"]
        return self.tokens[session]

    def call(
        self, method: str, session: str, route: str, body: Any = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(session)}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        url = f"{self.url}/api/{session}/{route}"
        return self.http.request(method, url, json=body, headers=headers, **kwargs)

    def status(self, session: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", session, "status-session").json()
        return result

    def sim(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, f"{self.url}/_sim/{path}", json=body, timeout=10)

    def emitted(self, session: str) -> list[tuple[str, Any]]:
        """(event, status or ack) pairs in the order the host emitted them, whatever order
        they were delivered in."""
        events = self.sim("GET", f"{session}/events").json()["events"]
        return [(e["event"], e["body"].get("status", e["body"].get("ack"))) for e in events]

    def wait_delivered(self, session: str) -> None:
        """Until every event of ``session`` emitted so far has been delivered: the real host
        does not await its webhooks, so one emitted earlier may still be on its way."""
        wait_until(
            lambda: all(
                e["results"]
                for e in self.sim("GET", f"{session}/events").json()["events"]
                if e["sent"]
            ),
            message=f"the deliveries of {session}",
        )

    def configure(self, **settings: Any) -> None:
        answer = self.sim("POST", "config", settings)
        assert answer.status_code == 200, answer.text

    def start_with_qr(
        self, session: str, receiver: Receiver | None = None, **config: Any
    ) -> dict[str, Any]:
        """Start ``session`` (its webhooks to ``receiver``) on a host configured with
        ``config`` (``/_sim/config``) first; its status once its QR code is shown."""
        if config:
            self.configure(**config)
        body = {"webhook": receiver.url_for(session)} if receiver else {}
        assert self.call("POST", session, "start-session", body).status_code == 200
        status = wait_until(lambda: (s := self.status(session))["status"] == "QRCODE" and s)
        assert status, self.status(session)
        return status

    def connect(self, session: str, receiver: Receiver | None = None, **config: Any) -> None:
        """``start_with_qr``, then the QR code scanned: ``session`` is connected."""
        self.start_with_qr(session, receiver, **config)
        answer = self.sim("POST", f"{session}/scan", {"wait": True})
        assert answer.json()["status"] == "CONNECTED", answer.text

    def unlink_on_the_phone(self, session: str, receiver: Receiver, until: str) -> None:
        """``session`` connected, then unlinked on the phone; back once the host has posted
        the status-find ``until``."""
        self.connect(session, receiver)
        assert self.sim("POST", f"{session}/unlink").json()["outcome"] == "connected"
        receiver.wait_for(session, "status-find", until)
