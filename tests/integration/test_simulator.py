"""The WPPConnect simulator behaves like wppconnect-server: tested over real HTTP against the
simulator running as its own process, with a webhook receiver in this process."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import pytest
import requests

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
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

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = parse_qs(urlsplit(self.path).query)
                hook = Hook(
                    session=query.get("session", [None])[0],
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw),
                )
                with receiver._lock:
                    receiver.hooks.append(hook)
                payload = b'{"ok":true}'
                self.send_response(receiver.answer_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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


class SimProcess:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "local.simulator", "--port", "0", "--secret-key", SECRET]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(data_dir), *extra],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"unexpected first line: {line!r}"
        self.url = match.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(10)
        self.log.close()
        return code


class Host:
    """The simulated host as a client sees it (``requests`` with ``json=``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.tokens: dict[str, str] = {}

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

    def start_with_qr(self, session: str, receiver: Receiver | None = None) -> dict[str, Any]:
        body = {"webhook": receiver.url_for(session)} if receiver else {}
        assert self.call("POST", session, "start-session", body).status_code == 200
        status = wait_until(lambda: (s := self.status(session))["status"] == "QRCODE" and s)
        assert status, self.status(session)
        return status

    def connect(self, session: str, receiver: Receiver | None = None) -> None:
        self.start_with_qr(session, receiver)
        answer = self.sim("POST", f"{session}/scan", {"wait": True})
        assert answer.json()["status"] == "CONNECTED", answer.text


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.server.shutdown()
    # Closed, so late webhooks (acks due after the last test) are refused at once instead
    # of waiting for an answer and holding up the simulator's exit.
    hooks.server.server_close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    process = SimProcess(tmp_path_factory.mktemp("sim"), "--no-start-all")
    yield process
    process.stop()


@pytest.fixture
def host(simulator: SimProcess, receiver: Receiver) -> Host:
    client = Host(simulator.url)
    assert client.sim("POST", "reset").status_code == 200
    receiver.clear()
    client.configure(qr_refresh_ms=0, init_delay_ms=20, connect_delay_ms=50)
    return client


@pytest.fixture
def name() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


# --- 1, 2. tokens and auth ----------------------------------------------------------------------


def test_generate_token_is_a_bcrypt_of_session_and_secret(host: Host, name: str) -> None:
    answer = host.http.post(f"{host.url}/api/{name}/{SECRET}/generate-token")
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"status", "session", "token", "full"}
    assert body["status"] == "success" and body["session"] == name
    token = body["token"]
    assert token.startswith("$2b$10$") and "/" not in token and "+" not in token
    assert body["full"] == f"{name}:{token}"
    real_hash = token.replace("_", "/").replace("-", "+").encode()
    assert bcrypt.checkpw(f"{name}{SECRET}".encode(), real_hash)
    again = host.http.post(f"{host.url}/api/{name}/{SECRET}/generate-token").json()["token"]
    assert again != token


def test_generate_token_with_a_wrong_secret_is_400(host: Host, name: str) -> None:
    answer = host.http.post(f"{host.url}/api/{name}/WRONG/generate-token")
    assert answer.status_code == 400
    assert answer.json() == {"response": False, "message": "The SECRET_KEY is incorrect"}


def test_a_missing_or_one_word_authorization_is_401_token_not_present(
    host: Host, name: str
) -> None:
    expected = {"message": "Token is not present. Check your header and try again"}
    url = f"{host.url}/api/{name}/status-session"
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  x"}):
        answer = host.http.get(url, headers=headers)
        assert answer.status_code == 401 and answer.json() == expected, headers


def test_a_wrong_token_or_another_sessions_token_is_401(host: Host, name: str) -> None:
    expected = {"error": "Check that the Session and Token are correct"}
    url = f"{host.url}/api/{name}/status-session"
    for token in ("nope", host.token("someone-else")):
        answer = host.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json() == expected


def test_only_the_second_word_is_read_and_the_path_form_wins(host: Host, name: str) -> None:
    token = host.token(name)
    answer = host.http.get(
        f"{host.url}/api/{name}/status-session", headers={"Authorization": f"Whatever {token}"}
    )
    assert answer.status_code == 200
    path_form = f"{host.url}/api/{name}:{token}/status-session"
    assert host.http.get(path_form).status_code == 200
    wrong_header = {"Authorization": "Bearer wrong"}
    assert host.http.get(path_form, headers=wrong_header).status_code == 200


# --- 3. the session key ---------------------------------------------------------------------


def test_session_key_is_added_only_when_content_type_is_exactly_json(host: Host, name: str) -> None:
    url = f"{host.url}/api/{name}/status-session"
    auth = {"Authorization": f"Bearer {host.token(name)}"}
    assert host.http.get(url, headers=auth).json() == {"status": "CLOSED", "qrcode": None}
    as_json = {**auth, "Content-Type": "application/json"}
    assert host.http.get(url, headers=as_json).json() == {
        "status": "CLOSED",
        "qrcode": None,
        "session": "",
    }
    with_charset = {**auth, "Content-Type": "application/json; charset=utf-8"}
    assert "session" not in host.http.get(url, headers=with_charset).json()
    host.call("POST", name, "start-session", {})
    assert host.http.get(url, headers=as_json).json()["session"] == name
    unauthorised = host.http.get(url, headers={"Content-Type": "application/json"})
    assert unauthorised.status_code == 401 and unauthorised.json()["session"] == ""


# --- 4. start-session -----------------------------------------------------------------------


def test_first_start_answers_closed_then_initializing_then_qrcode(host: Host, name: str) -> None:
    host.configure(init_delay_ms=300)
    first = host.call("POST", name, "start-session", {})
    assert first.status_code == 200
    assert first.json() == {"status": "CLOSED", "qrcode": None, "session": ""}
    second = host.call("POST", name, "start-session", {}).json()
    assert second == {
        "status": "INITIALIZING",
        "qrcode": None,
        "version": "2.10.4",
        "session": name,
    }
    status = wait_until(lambda: (s := host.status(name))["status"] == "QRCODE" and s)
    assert status["qrcode"].startswith("data:image/png;base64,")
    assert status["urlcode"].startswith("2@") and status["version"] == "2.10.4"
    png = base64.b64decode(status["qrcode"].split(",", 1)[1])
    assert png.startswith(PNG_SIGNATURE)


def test_a_start_while_pending_restarts_nothing(host: Host, name: str) -> None:
    pending = host.start_with_qr(name)
    again = host.call("POST", name, "start-session", {}).json()
    assert again["status"] == "QRCODE" and again["urlcode"] == pending["urlcode"]
    state = host.sim("GET", name).json()
    assert state["start_calls"] == 2 and state["starts"] == 1


def test_the_start_body_is_stored_as_config(host: Host, name: str, receiver: Receiver) -> None:
    body = {"webhook": receiver.url_for(name), "deviceName": "Loja"}
    host.call("POST", name, "start-session", body)
    assert host.sim("GET", name).json()["storedConfig"] == body


def test_wait_qr_code_holds_the_reply_until_the_first_qr(host: Host, name: str) -> None:
    host.configure(init_delay_ms=200)
    started = time.monotonic()
    answer = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert time.monotonic() - started >= 0.15
    body = answer.json()
    assert set(body) == {"status", "qrcode", "urlcode", "session"}
    assert body["status"] == "qrcode" and body["session"] == name
    assert not body["qrcode"].startswith("data:")
    assert base64.b64decode(body["qrcode"]).startswith(PNG_SIGNATURE)
    assert body["urlcode"] == host.status(name)["urlcode"]


def test_wait_qr_code_with_a_phone_answers_the_pairing_code(
    host: Host, name: str, receiver: Receiver
) -> None:
    body = {"waitQrCode": True, "phone": "5511988887777", "webhook": receiver.url_for(name)}
    answer = host.call("POST", name, "start-session", body).json()
    assert set(answer) == {"status", "phone", "phoneCode", "session"}
    assert answer["status"] == "phoneCode" and answer["phone"] == "5511988887777"
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", answer["phoneCode"])
    assert host.status(name)["status"] == "PHONECODE"
    hook = receiver.wait_for(name, "phoneCode")[0].body
    assert hook["phoneCode"] == answer["phoneCode"] and hook["phone"] == "5511988887777"
    scanned = host.sim("POST", f"{name}/scan", {"wait": True}).json()
    assert scanned["status"] == "CONNECTED" and scanned["wid"] == "5511988887777@c.us"


# --- 5. event sequences ---------------------------------------------------------------------


def test_a_scan_sends_the_connect_sequence_in_order(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver)
    qr_hook = receiver.wait_for(name, "qrcode")[0]
    assert not qr_hook.body["qrcode"].startswith("data:")
    assert "attempt" not in qr_hook.body and qr_hook.body["session"] == name
    assert host.sim("POST", f"{name}/scan").status_code == 200
    sequence = [
        ("status-find", "notLogged"),
        ("qrcode", None),
        ("status-find", "qrReadSuccess"),
        ("status-find", "inChat"),
    ]
    receiver.wait_for_exactly(name, sequence)
    assert host.emitted(name) == sequence
    status = host.status(name)
    assert status["status"] == "CONNECTED"
    # urlcode is never cleared: a connected session still shows its old QR code
    assert status["urlcode"] == qr_hook.body["urlcode"]
    assert status["qrcode"].startswith("data:image/png;base64,")


def test_qr_refreshes_on_demand_and_on_an_interval(
    host: Host, name: str, receiver: Receiver
) -> None:
    first = host.start_with_qr(name, receiver)["urlcode"]
    refreshed = host.sim("POST", f"{name}/refresh-qr").json()["urlcode"]
    assert refreshed != first and host.status(name)["urlcode"] == refreshed
    host.configure(qr_refresh_ms=100)
    other = f"{name}b"
    host.start_with_qr(other, receiver)
    assert len(receiver.wait_for(other, "qrcode", count=3)) >= 3


def test_duplicate_mode_delivers_every_event_twice(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(delivery_mode="duplicate")
    host.connect(name, receiver)
    receiver.wait_for(name, "status-find", "inChat", count=2)
    assert Counter(receiver.events(name)) == {
        ("status-find", "notLogged"): 2,
        ("qrcode", None): 2,
        ("status-find", "qrReadSuccess"): 2,
        ("status-find", "inChat"): 2,
    }


def test_shuffle_mode_delivers_the_same_events(host: Host, name: str, receiver: Receiver) -> None:
    host.configure(delivery_mode="shuffle+duplicate", shuffle_window_ms=100)
    host.connect(name, receiver)
    receiver.wait_for(name, "status-find", "inChat", count=2)
    expected: list[tuple[str, Any]] = [
        ("status-find", "notLogged"),
        ("qrcode", None),
        ("status-find", "qrReadSuccess"),
        ("status-find", "inChat"),
    ]
    assert Counter(receiver.events(name)) == Counter(2 * expected)


def test_an_unscanned_qr_autocloses_with_browser_close_only(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(autoclose_ms=300)
    urlcode = host.start_with_qr(name, receiver)["urlcode"]
    receiver.wait_for(name, "status-find", "browserClose")
    assert ("status-find", "autocloseCalled") not in receiver.events(name)
    status = host.status(name)
    assert status["status"] == "CLOSED" and status["urlcode"] == urlcode
    assert host.call("POST", name, "start-session", {}).json()["status"] == "CLOSED"
    assert wait_until(lambda: host.status(name)["urlcode"] != urlcode)


def test_expire_now_sends_autoclose_called_when_that_bug_is_off(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(bug_lost_autoclose=False)
    host.start_with_qr(name, receiver)
    assert host.sim("POST", f"{name}/expire").status_code == 200
    receiver.wait_for(name, "status-find", "browserClose")
    receiver.wait_for(name, "status-find", "autocloseCalled")
    assert host.emitted(name)[-2:] == [
        ("status-find", "autocloseCalled"),
        ("status-find", "browserClose"),
    ]
    assert host.sim("POST", f"{name}/expire").status_code == 409


# --- 6. status routes -----------------------------------------------------------------------


def test_qrcode_session_serves_a_png_or_the_json_fallbacks(host: Host, name: str) -> None:
    none_yet = host.call("GET", name, "qrcode-session")
    assert none_yet.json() == {
        "status": None,
        "message": "Session not started. Please, use the /start-session route, "
        "for initialization your session",
    }
    host.start_with_qr(name)
    image = host.call("GET", name, "qrcode-session")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)
    host.call("POST", name, "close-session")
    after_close = host.call("GET", name, "qrcode-session").json()
    assert after_close == {"status": None, "message": "QRCode is not available..."}


def test_check_connection_is_always_200(host: Host, name: str) -> None:
    disconnected = host.call("GET", name, "check-connection-session")
    assert disconnected.status_code == 200
    assert disconnected.json() == {"status": False, "message": "Disconnected"}
    host.connect(name)
    connected = host.call("GET", name, "check-connection-session")
    assert connected.json() == {"status": True, "message": "Connected"}


def test_close_session_sends_closesession_and_leaves_status_null(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    answer = host.call("POST", name, "close-session", {})
    assert answer.status_code == 200 and answer.json() == {**CLOSED_OK, "session": name}
    hook = receiver.wait_for(name, "closesession")[0].body
    assert hook == {
        "event": "closesession",
        "session": name,
        "message": f"Session: {name} disconnected",
        "connected": False,
    }
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.call("POST", name, "close-session").status_code == 200


def test_close_session_is_500_if_never_started_or_while_a_qr_is_pending(
    host: Host, name: str
) -> None:
    failed = {"status": False, "message": "Error closing session", "error": {}}
    never = host.call("POST", name, "close-session", {})
    assert never.status_code == 500 and never.json() == {**failed, "session": ""}
    host.start_with_qr(name)
    pending = host.call("POST", name, "close-session")
    assert pending.status_code == 500
    assert host.status(name)["status"] == "CLOSED"
    assert host.sim("GET", name).json()["status"] is None


def test_logout_is_404_unless_connected_and_answers_after_500_ms(
    host: Host, name: str, receiver: Receiver
) -> None:
    not_connected = host.call("POST", name, "logout-session", {})
    assert not_connected.status_code == 404
    assert not_connected.json() == {**DISCONNECTED, "session": ""}
    host.connect(name, receiver)
    started = time.monotonic()
    answer = host.call("POST", name, "logout-session")
    assert time.monotonic() - started >= 0.5
    assert answer.status_code == 200 and answer.json() == CLOSED_OK  # no JSON body, no key
    hook = receiver.wait_for(name, "logoutsession")[0].body
    assert hook["message"] == f"Session: {name} logged out" and hook["connected"] is False
    assert host.status(name)["status"] == "CLOSED"
    assert host.sim("GET", name).json()["exists"] is False
    receiver.wait_for(name, "status-find", "browserClose")  # the old browser is gone
    host.wait_delivered(name)
    receiver.clear()
    host.call("POST", name, "start-session", {"webhook": receiver.url_for(name)})
    receiver.wait_for(name, "qrcode")  # the login is gone: a new QR, not a restore


def test_a_closed_session_restores_its_login_without_a_qr(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    host.call("POST", name, "close-session")
    host.wait_delivered(name)  # webhooks are not awaited: let them all land first
    receiver.clear()
    assert host.call("POST", name, "start-session", {}).json()["status"] == "CLOSED"
    restored = [("status-find", "isLogged"), ("status-find", "inChat")]
    receiver.wait_for_exactly(name, restored)
    assert host.emitted(name)[-2:] == restored
    assert host.status(name) == {
        "status": "CONNECTED",
        "qrcode": None,
        "version": "2.10.4",
    }


def test_unlinking_the_phone_sends_disconnected_mobile_and_removes_the_entry(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    assert host.sim("POST", f"{name}/unlink").json()["outcome"] == "connected"
    receiver.wait_for(name, "status-find", "disconnectedMobile")
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    assert host.sim("GET", name).json()["savedLogin"] is None
    assert host.sim("POST", f"{name}/unlink").status_code == 409


# --- 7. sending -----------------------------------------------------------------------------


def test_send_message_is_404_disconnected_unless_connected(host: Host, name: str) -> None:
    answer = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    assert answer.status_code == 404 and answer.json() == {**DISCONNECTED, "session": ""}
    host.start_with_qr(name)
    pending = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "x"})
    assert pending.status_code == 404 and pending.json() == {**DISCONNECTED, "session": name}


def test_send_message_answers_201_with_full_message_objects(host: Host, name: str) -> None:
    host.connect(name)
    own = host.sim("GET", name).json()["wid"]
    answer = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "Olá"})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"status", "response", "mapper", "session"}
    assert body["status"] == "success" and body["mapper"] == "return" and body["session"] == name
    [message] = body["response"]
    assert re.fullmatch(r"true_5511987654321@c\.us_3EB0[0-9A-F]{16}", message["id"])
    assert message["body"] == message["content"] == "Olá" and message["type"] == "chat"
    assert message["from"] == own and message["to"] == message["chatId"] == "5511987654321@c.us"
    assert message["fromMe"] is True and message["self"] == "out" and message["ack"] == 1
    assert message["isGroupMsg"] is False and message["timestamp"] == message["t"]
    assert message["sender"]["id"] == own and message["sender"]["isMe"] is True
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [(m["id"], m["to"], m["body"]) for m in outbox] == [
        (message["id"], "5511987654321@c.us", "Olá")
    ]


def test_an_unknown_number_is_400_and_nothing_is_sent(host: Host, name: str) -> None:
    host.connect(name)
    answer = host.call("POST", name, "send-message", {"phone": "5511900000000", "message": "x"})
    assert answer.status_code == 400
    assert answer.json() == {
        "response": None,
        "status": "Connected",
        "message": "O número 5511900000000 não existe.",
        "session": name,
    }
    assert host.sim("GET", f"{name}/outbox").json()["outbox"] == []
    host.configure(unknown_numbers=["5511911112222"])
    assert (
        host.call("POST", name, "send-message", {"phone": "5511911112222", "message": "x"})
    ).status_code == 400
    assert (
        host.call("POST", name, "send-message", {"phone": "5511900000000", "message": "x"})
    ).status_code == 201


def test_phone_is_normalised_like_contact_to_array(host: Host, name: str) -> None:
    host.connect(name)
    host.configure(canonical_numbers={"5531988887777": "553188887777"})

    def sent_to(body: dict[str, Any]) -> list[str]:
        answer = host.call("POST", name, "send-message", {"message": "x", **body})
        assert answer.status_code == 201, answer.text
        return [m["to"] for m in answer.json()["response"]]

    assert sent_to({"phone": "+55(11)98765-4321"}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5511987654321@s.whatsapp.net"}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5511987654321, 5521987654321;5511912340000"}) == [
        "5511987654321@c.us",
        "5521987654321@c.us",
        "5511912340000@c.us",
    ]
    assert sent_to({"phone": ["5511987654321"]}) == ["5511987654321@c.us"]
    assert sent_to({"phone": "5531988887777"}) == ["553188887777@c.us"]  # ninth digit
    assert sent_to({"phone": "123456789012345"}) == ["123456789012345@lid"]
    assert sent_to({"phone": "120363000000000001", "isGroup": True}) == ["120363000000000001@g.us"]
    assert sent_to({"phone": "abc", "isNewsletter": True}) == ["abc@newsletter"]
    # a number that is not a string or an array makes the middleware throw
    number = host.call("POST", name, "send-message", {"phone": 5511987654321, "message": "x"})
    assert number.status_code == 404 and number.json()["status"] == "Disconnected"
    empty = host.call("POST", name, "send-message", {"message": "x"})
    assert empty.status_code == 400 and empty.json() == "Error sending message"


def test_a_multipart_is_group_false_is_truthy(host: Host, name: str) -> None:
    host.connect(name)
    answer = host.call(
        "POST",
        name,
        "send-file",
        files={"file": ("a.txt", b"hello", "text/plain")},
        data={"phone": "5511987654321", "isGroup": "false"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["response"][0]["id"].startswith("true_5511987654321@g.us_")
    assert "session" not in answer.json()  # multipart is not exactly application/json


def test_file_routes_answer_ack_and_id_and_want_a_data_uri(host: Host, name: str) -> None:
    host.connect(name)
    data_uri = "data:image/png;base64," + base64.b64encode(PNG_SIGNATURE + b"rest").decode()
    for route in ("send-image", "send-file", "send-file-base64"):
        body = {"phone": "5511987654321", "base64": data_uri, "caption": "foto"}
        answer = host.call("POST", name, route, body)
        assert answer.status_code == 201, answer.text
        [item] = answer.json()["response"]
        assert set(item) == {"ack", "id"} and item["ack"] == 1
        assert re.fullmatch(r"true_5511987654321@c\.us_3EB0[0-9A-F]{16}", item["id"])
    raw = host.call(
        "POST", name, "send-file-base64", {"phone": "5511987654321", "base64": "iVBORw0KGgo="}
    )
    assert raw.status_code == 500
    assert raw.json()["status"] == "Error"
    assert raw.json()["message"] == "Erro ao enviar a mensagem."
    assert isinstance(raw.json()["error"], dict)
    no_file = host.call("POST", name, "send-file", {"phone": "5511987654321"})
    assert no_file.status_code == 401
    assert no_file.json() == {"message": "Sending the file is mandatory", "session": name}
    outbox = host.sim("GET", f"{name}/outbox").json()["outbox"]
    assert [m["type"] for m in outbox] == ["image"] * 3
    assert outbox[0]["mimetype"] == "image/png" and outbox[0]["caption"] == "foto"


# --- 8. webhooks ----------------------------------------------------------------------------


def test_every_sent_message_is_acked_2_then_3_with_an_id_object(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    message_id = sent.json()["response"][0]["id"]
    receiver.wait_for(name, "onack", 2)
    receiver.wait_for(name, "onack", 3)
    acks = [h.body for h in receiver.of(name) if h.body["event"] == "onack"]
    assert sorted(a["ack"] for a in acks) == [2, 3]
    assert [ack for event, ack in host.emitted(name) if event == "onack"] == [2, 3]
    for ack in acks:
        assert ack["id"] == {
            "fromMe": True,
            "remote": "5511987654321@c.us",
            "id": message_id.rsplit("_", 1)[1],
            "_serialized": message_id,
        }
        assert ack["to"] == "5511987654321@c.us" and ack["body"] == "oi"
        assert ack["type"] == "chat" and isinstance(ack["t"], int) and ack["from"]
    assert host.sim("GET", f"{name}/outbox").json()["outbox"][0]["ack"] == 3


def test_a_manual_ack_sends_onack(host: Host, name: str, receiver: Receiver) -> None:
    host.configure(auto_ack=False)
    host.connect(name, receiver)
    sent = host.call("POST", name, "send-message", {"phone": "5511987654321", "message": "oi"})
    message_id = sent.json()["response"][0]["id"]
    answer = host.sim("POST", f"{name}/ack", {"id": message_id, "ack": 4})
    assert answer.status_code == 200 and answer.json()["message"]["ack"] == 4
    hook = receiver.wait_for(name, "onack")[0].body
    assert hook["ack"] == 4 and hook["id"]["_serialized"] == message_id
    assert [e for e, _ in receiver.events(name)].count("onack") == 1
    assert host.sim("POST", f"{name}/ack", {"id": "nope", "ack": 3}).status_code == 404


def test_incoming_messages_arrive_and_are_read_only_after_a_2xx(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    own = host.sim("GET", name).json()["wid"]
    sent = host.sim("POST", f"{name}/incoming", {"from": "5511987654321", "body": "oi"})
    message_id = sent.json()["id"]
    hook = receiver.wait_for(name, "onmessage")[0].body
    assert hook["event"] == "onmessage" and hook["session"] == name
    assert re.fullmatch(r"false_5511987654321@c\.us_3A[0-9A-F]{18}", hook["id"])
    assert hook["id"] == message_id and hook["body"] == "oi" and hook["type"] == "chat"
    assert hook["from"] == hook["chatId"] == "5511987654321@c.us" and hook["to"] == own
    assert hook["fromMe"] is False and hook["isGroupMsg"] is False
    assert hook["sender"]["id"] == "5511987654321@c.us"
    seen = wait_until(lambda: host.sim("GET", f"{name}/seen").json()["seen"])
    assert [s["chatId"] for s in seen] == ["5511987654321@c.us"]

    receiver.answer_status = 500
    from_ana = {"from": "5521900001111", "body": "x", "notifyName": "Ana"}
    host.sim("POST", f"{name}/incoming", from_ana)
    late = receiver.wait_for(name, "onmessage", count=2)[1].body
    assert late["notifyName"] == "Ana" and late["sender"]["pushname"] == "Ana"
    # The host has taken the 500 in (it logs the answer before marking the chat seen).
    wait_until(
        lambda: [
            e["results"]
            for e in host.sim("GET", f"{name}/events").json()["events"]
            if e["body"].get("id") == late["id"]
        ],
        lambda results: results == [["500"]],
        message="the host's record of the 500",
    )
    assert len(host.sim("GET", f"{name}/seen").json()["seen"]) == 1

    group = host.sim("POST", f"{name}/incoming", {"from": "5511987654321", "group": True})
    assert group.json()["message"]["isGroupMsg"] is True
    assert group.json()["message"]["author"] == "5511987654321@c.us"
    status = host.sim("POST", f"{name}/incoming", {"from": "status@broadcast", "body": "s"})
    assert status.status_code == 200
    receiver.wait_for(name, "onmessage", count=3)
    # Ignored when emitted: logged as not sent, so no delivery of it can still be on its way.
    [logged] = [
        e
        for e in host.sim("GET", f"{name}/events").json()["events"]
        if e["body"].get("from") == "status@broadcast"
    ]
    assert logged["ignored"] and not logged["sent"] and logged["results"] == []
    bodies = [h.body for h in receiver.of(name) if h.body["event"] == "onmessage"]
    assert len(bodies) == 3 and all(b["from"] != "status@broadcast" for b in bodies)


# --- 9. webhook proofs ----------------------------------------------------------------------


def test_a_stock_host_sends_no_header_proof_unless_configured(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.start_with_qr(name, receiver)
    hook = receiver.wait_for(name, "qrcode")[0]
    assert "x-verify" not in hook.headers and "authorization" not in hook.headers
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["user-agent"].startswith("axios/")
    assert hook.query["verify"] == [f"proof-{name}"]
    host.configure(x_verify_token="verify-secret")
    host.sim("POST", f"{name}/scan")
    proved = receiver.wait_for(name, "status-find", "qrReadSuccess")[0]
    assert proved.headers["x-verify"] == "verify-secret"


def test_the_global_webhook_is_used_without_a_session_webhook(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(webhook_url=receiver.url_for(name))
    host.start_with_qr(name)
    assert receiver.wait_for(name, "qrcode")[0].body["session"] == name


def test_after_close_and_restart_events_lack_session_with_that_bug_on(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.configure(bug_no_session_after_restart=True)
    host.connect(name, receiver)
    host.call("POST", name, "close-session")
    host.wait_delivered(name)
    receiver.clear()
    host.call("POST", name, "start-session", {})
    hooks = receiver.wait_for(name, "status-find", "inChat")
    is_logged = receiver.wait_for(name, "status-find", "isLogged")[0]
    assert "session" not in is_logged.body
    assert hooks[0].body["session"] == name  # the connected library client has it again


# --- 10. delivery and bug flags, secret routes, restarts, faults -------------------------


def test_wait_qr_code_on_a_restored_login_answers_once_connected_or_hangs_with_that_bug(
    host: Host, name: str
) -> None:
    host.configure(bug_wait_qr_hang_on_restore=False)
    assert host.sim("POST", f"{name}/restore", {"start": False}).json()["started"] is False
    answer = host.call("POST", name, "start-session", {"waitQrCode": True})
    assert answer.json() == {
        "status": "CONNECTED",
        "qrcode": None,
        "version": "2.10.4",
        "session": "",  # the wrapper's req.client was looked up before the start
    }
    other = f"{name}b"
    host.configure(bug_wait_qr_hang_on_restore=True)
    host.sim("POST", f"{other}/restore", {"start": False})
    with pytest.raises(requests.ReadTimeout):
        host.call("POST", other, "start-session", {"waitQrCode": True}, timeout=0.5)
    assert host.status(other)["status"] == "CONNECTED"


def test_show_all_sessions_and_start_all_check_the_secret(host: Host, name: str) -> None:
    host.call("POST", name, "start-session", {})
    listed = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions")
    assert listed.status_code == 200 and listed.json() == {"response": [name]}
    bad = host.http.get(f"{host.url}/api/WRONG/show-all-sessions")
    assert bad.status_code == 400
    assert bad.json() == {"response": False, "message": "The token is incorrect"}
    bad_start = host.http.post(f"{host.url}/api/WRONG/start-all")
    assert bad_start.status_code == 400
    assert bad_start.json() == {"response": "error", "message": "The token is incorrect"}


def test_config_survives_a_restart_and_start_all_restores_the_login(
    tmp_path: Path, receiver: Receiver, name: str
) -> None:
    first = SimProcess(tmp_path, "--no-start-all")
    host = Host(first.url)
    host.configure(init_delay_ms=20, connect_delay_ms=50)
    host.connect(name, receiver)
    assert first.stop() == 0

    second = SimProcess(tmp_path, "--no-start-all")
    host.url = second.url
    host.http = requests.Session()
    host.configure(init_delay_ms=20, connect_delay_ms=50)
    assert host.status(name) == {"status": "CLOSED", "qrcode": None}
    shown = host.http.get(f"{host.url}/api/{SECRET}/show-all-sessions").json()
    assert shown["response"] == [name]
    receiver.clear()
    started = host.http.post(f"{host.url}/api/{SECRET}/start-all")
    assert started.status_code == 201
    assert started.json() == {"status": "success", "message": "Starting all sessions"}
    restored = [("status-find", "isLogged"), ("status-find", "inChat")]
    receiver.wait_for_exactly(name, restored)  # the stored webhook is used
    assert host.emitted(name) == restored
    assert host.status(name)["status"] == "CONNECTED"
    assert second.stop() == 0

    third = SimProcess(tmp_path)  # startAllSession at boot
    host.url = third.url
    host.http = requests.Session()
    assert wait_until(lambda: host.status(name)["status"] == "CONNECTED", within_s=3.0)
    assert third.stop() == 0


def test_start_all_with_a_bad_secret_still_starts_when_that_bug_is_on(
    host: Host, name: str
) -> None:
    # A linked session, closed: a close while pairing would leave its browser running
    # (orphan_pairing_browser), and a start-all could not start it again anyway.
    host.connect(name)
    assert host.call("POST", name, "close-session").status_code == 200
    assert host.status(name)["status"] == "CLOSED"
    host.configure(bug_start_all_bad_secret=True)
    assert host.http.post(f"{host.url}/api/WRONG/start-all").status_code == 400
    assert wait_until(lambda: host.status(name)["status"] == "CONNECTED")


def test_faults_slow_down_break_and_take_down_the_api_only(host: Host, name: str) -> None:
    host.token(name)
    assert host.sim("POST", "faults", {"latency_ms": 300}).status_code == 200
    started = time.monotonic()
    assert host.call("GET", name, "status-session").status_code == 200
    assert time.monotonic() - started >= 0.3
    host.sim("POST", "faults", {"latency_ms": 0, "error_rate": 1.0})
    assert host.call("GET", name, "status-session").status_code == 500
    host.sim("POST", "faults", {"error_rate": 1.0, "error_mode": "garbage"})
    with pytest.raises(ValueError):
        host.call("GET", name, "status-session").json()
    host.sim("POST", "faults", {"error_rate": 0.0, "down": True})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{host.url}/api/{name}/status-session", timeout=5)
    assert requests.get(f"{host.url}/healthz", timeout=5).status_code == 200
    assert host.sim("GET", "faults").json()["down"] is True
    host.sim("POST", "faults", {"down": False})
    assert host.call("GET", name, "status-session").status_code == 200
    assert host.sim("POST", "faults", {"nope": 1}).status_code == 400


def test_in_flight_counts_the_api_requests_the_host_holds(host: Host, name: str) -> None:
    host.token(name)
    host.sim("POST", "faults", {"latency_ms": 500})
    held = threading.Thread(target=lambda: host.call("GET", name, "status-session"))
    held.start()
    try:
        wait_until(lambda: host.sim("GET", "in-flight").json()["in_flight"], lambda n: n == 1)
        assert host.sim("GET", name).status_code == 200  # /_sim is neither held nor counted
        assert host.sim("GET", "in-flight").json()["in_flight"] == 1
    finally:
        held.join(5)
        host.sim("POST", "faults", {"latency_ms": 0})
    assert host.sim("GET", "in-flight").json()["in_flight"] == 0


def test_healthz_answers_like_the_server(host: Host) -> None:
    body = requests.get(f"{host.url}/healthz", timeout=5).json()
    assert set(body) == {"uptime", "message", "timestamp"} and body["message"] == "OK"
    assert abs(body["timestamp"] / 1000 - time.time()) < 60
