"""The host client against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.processes import free_port
from local.threaded_server import serving
from tests.stub_servers import StubHandler
from wa_gateway.errors import HostError, HostTimeout
from wa_gateway.host.answers import HostUnauthorized
from wa_gateway.host.chat_routes import HostChat
from wa_gateway.host.client import HostClient

SECRET = "host-secret-key-value"


class Script:
    """What the fake host answers next, and what it was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {}
        self.raw: bytes | None = None
        self.delay_s = 0.0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []


@pytest.fixture()
def fake_host() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(StubHandler):
        def _answer(self) -> None:
            body = self.read_body()
            script.requests.append((self.command, self.path, dict(self.headers), body))
            time.sleep(script.delay_s)
            payload = script.raw if script.raw is not None else json.dumps(script.body).encode()
            self.answer(script.status, payload)

        do_GET = do_POST = _answer

    with serving(Handler) as server:
        yield server.url, script


def client(url: str, read_timeout_s: float = 2.0) -> HostClient:
    return HostClient(
        url,
        SECRET,
        connect_timeout_s=1,
        read_timeout_s=read_timeout_s,
        start_timeout_s=read_timeout_s,
    )


def test_generate_token_puts_the_secret_in_the_path_only(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.status, script.body = 201, {"status": "success", "session": "s", "token": "$2b$10$x"}
    assert client(url).generate_token("user_a") == "$2b$10$x"
    method, path, headers, _ = script.requests[0]
    assert (method, path) == ("POST", f"/api/user_a/{SECRET}/generate-token")
    assert "authorization" not in {k.lower() for k in headers}


def test_start_sends_the_token_and_the_webhook(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.body = {"status": "qrcode", "qrcode": "iVBOR", "urlcode": "2@q", "session": "user_a"}
    state = client(url).start_session("user_a", "tok", webhook_url="https://h/?s=1", phone=None)
    assert (state.status, state.urlcode) == ("qrcode", "2@q")
    _, path, headers, body = script.requests[0]
    assert path == "/api/user_a/start-session"
    assert headers["Authorization"] == "Bearer tok"
    assert json.loads(body) == {"webhook": "https://h/?s=1", "waitQrCode": True}


def test_a_refused_token_is_reported_as_such(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.status, script.body = 401, {"error": "Check that the Session and Token are correct"}
    with pytest.raises(HostUnauthorized):
        client(url).status_session("user_a", "tok")


@pytest.mark.parametrize(
    ("status", "raw"),
    [(500, b'{"status":"Error"}'), (200, b"<html>proxy error</html>"), (200, b"[1,2]")],
)
def test_errors_and_garbage_are_host_errors(
    fake_host: tuple[str, Script], status: int, raw: bytes
) -> None:
    url, script = fake_host
    script.status, script.raw = status, raw
    with pytest.raises(HostError) as caught:
        client(url).start_session("user_a", "tok", webhook_url="https://h/")
    assert SECRET not in str(caught.value) and caught.value.__cause__ is None


def test_gets_are_retried_on_a_bad_gateway_then_given_up(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.status, script.body = 503, {}
    with pytest.raises(HostError):
        client(url).status_session("user_a", "tok")
    assert len(script.requests) == 3  # the call and two retries


def test_posts_are_not_retried_after_being_sent(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.status, script.body = 503, {}
    with pytest.raises(HostError):
        client(url).start_session("user_a", "tok", webhook_url="https://h/")
    assert len(script.requests) == 1


def test_a_slow_host_is_a_timeout(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.delay_s = 0.5
    with pytest.raises(HostTimeout):
        client(url, read_timeout_s=0.2).status_session("user_a", "tok")


def test_a_host_that_is_down_is_a_host_error_naming_no_secret() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HostError) as caught:
        client(url).generate_token("user_a")
    assert SECRET not in repr(caught.value) and caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_proxy_settings_in_the_environment_are_ignored(
    fake_host: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's URL is configured: a proxy in the environment (here one that refuses every
    connection) is not used, and not looked up on each request."""
    url, script = fake_host
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client(url).health()
    assert [r[1] for r in script.requests] == ["/healthz"]


def test_check_connection_reads_the_hosts_boolean(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.body = {"status": False, "message": "Disconnected"}
    assert client(url).check_connection("s1", "tok") is False
    assert script.requests[-1][1] == "/api/s1/check-connection-session"
    script.body = {"status": True, "message": "Connected"}
    assert client(url).check_connection("s1", "tok") is True
    script.body = {"message": "what"}
    with pytest.raises(HostError):
        client(url).check_connection("s1", "tok")


def test_phone_of_lid_asks_pn_lid_for_the_lid(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.body = {"lid": {"_serialized": "1234@lid"}, "phoneNumber": {"_serialized": "55@c.us"}}
    assert client(url).phone_of_lid("s1", "tok", "123456789012345") == "55@c.us"
    assert script.requests[-1][1] == "/api/s1/contact/pn-lid/123456789012345%40lid"
    script.body = {"lid": {"_serialized": "1234@lid"}}
    assert client(url).phone_of_lid("s1", "tok", "123456789012345") is None


def test_a_send_to_a_lid_says_is_lid(fake_host: tuple[str, Script]) -> None:
    url, script = fake_host
    script.status = 201
    script.body = {"status": "success", "response": [{"id": "true_1@lid_3EB0", "to": "1@lid"}]}
    sent = client(url).send_message("s1", "tok", HostChat("123456789012345", is_lid=True), "x")
    assert sent.to == "1@lid"
    assert json.loads(script.requests[-1][3])["isLid"] is True
