"""The host client's connections: kept alive and reused across calls and threads, a connection
the host closed replaced without a failure (or reported honestly when the host may have acted),
HTTPS verified, and no secret in what is logged or raised. Real local servers, HTTP and TLS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local.processes import free_port
from local.threaded_server import ThreadedServer, serving
from tests.stub_servers import StubHandler, tcp_server
from wa_gateway.errors import HostError
from wa_gateway.host.client import HostClient

SECRET = "host-secret-key-value"
STATUS = b'{"status":"CONNECTED","qrcode":null}'


def client(url: str) -> HostClient:
    return HostClient(url, SECRET, connect_timeout_s=1, read_timeout_s=2, start_timeout_s=2)


class KeepAliveHandler(StubHandler):
    """Answers every request on a connection kept open (HTTP/1.1), noting the client's port."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, int]]

    def _answer(self) -> None:
        self.read_body()
        self.seen.append((self.command, self.path, self.client_address[1]))
        self.answer(200, json.dumps({"status": self.path}).encode())

    do_GET = do_POST = _answer


@pytest.fixture()
def keep_alive_host() -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    seen: list[tuple[str, str, int]] = []
    handler = type("Handler", (KeepAliveHandler,), {"seen": seen})
    with serving(handler) as server:
        yield server.url, seen


def test_calls_reuse_one_kept_alive_connection(
    keep_alive_host: tuple[str, list[tuple[str, str, int]]],
) -> None:
    url, seen = keep_alive_host
    host = client(url)
    host.status_session("s1", "tok")
    host.status_session("s2", "tok")
    host.with_read_timeout(1).status_session("s3", "tok")  # its connections are the same
    assert len(seen) == 3
    assert len({port for _, _, port in seen}) == 1, seen


def read_request(conn: socket.socket, buffered: bytearray) -> tuple[str, str] | None:
    """The method and path of the next request on ``conn`` (its body read too); None at EOF."""
    while b"\r\n\r\n" not in buffered:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
        0,
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    buffered[:] = rest[length:]
    method, path, _ = lines[0].split(" ", 2)
    return method, path


def answer(conn: socket.socket, body: bytes = STATUS) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


class ClosingHost:
    """A host (raw TCP) whose first connection answers one request and then, as a keep-alive
    server does at its idle timeout, closes: at once (``closes_idle``), or only when the next
    request has arrived, without answering it (the close crossing that request on the wire).
    Later connections answer every request."""

    def __init__(self, *, closes_idle: bool) -> None:
        self.closes_idle = closes_idle
        self.connections: list[list[tuple[str, str]]] = []
        self.closed = threading.Event()

    def handle(self, conn: socket.socket) -> None:
        requests: list[tuple[str, str]] = []
        self.connections.append(requests)
        buffered = bytearray()
        with conn:
            while (request := read_request(conn, buffered)) is not None:
                requests.append(request)
                if len(self.connections) == 1 and len(requests) == 2:
                    break  # closed as the second request came: never answered
                answer(conn)
                if len(self.connections) == 1 and self.closes_idle:
                    break
        if len(self.connections) == 1:
            self.closed.set()


def test_a_connection_the_host_closed_while_idle_is_replaced() -> None:
    host = ClosingHost(closes_idle=True)
    with tcp_server(host.handle) as port:
        gateway_host = client(f"http://127.0.0.1:{port}")
        gateway_host.status_session("s1", "tok")
        assert host.closed.wait(5)
        gateway_host.close_session("s1", "tok")  # a POST: nothing was sent on the closed one
    assert host.connections == [
        [("GET", "/api/s1/status-session")],
        [("POST", "/api/s1/close-session")],
    ]


def test_a_get_crossing_the_hosts_close_is_sent_again_on_a_new_connection() -> None:
    host = ClosingHost(closes_idle=False)
    with tcp_server(host.handle) as port:
        gateway_host = client(f"http://127.0.0.1:{port}")
        gateway_host.status_session("s1", "tok")
        state = gateway_host.status_session("s2", "tok")
    assert state.status == "CONNECTED"
    assert host.connections == [
        [("GET", "/api/s1/status-session"), ("GET", "/api/s2/status-session")],
        [("GET", "/api/s2/status-session")],
    ]


def test_a_post_crossing_the_hosts_close_is_not_repeated_and_may_have_acted() -> None:
    """The host had the whole request before the connection closed: it may have acted on it,
    so it is not sent twice, and the failure says so."""
    host = ClosingHost(closes_idle=False)
    with tcp_server(host.handle) as port:
        gateway_host = client(f"http://127.0.0.1:{port}")
        gateway_host.status_session("s1", "tok")
        with pytest.raises(HostError) as caught:
            gateway_host.close_session("s1", "tok")
    assert caught.value.maybe_acted
    assert host.connections == [
        [("GET", "/api/s1/status-session"), ("POST", "/api/s1/close-session")]
    ]


def test_calls_from_several_threads_share_the_connections_safely(
    keep_alive_host: tuple[str, list[tuple[str, str, int]]],
) -> None:
    url, seen = keep_alive_host
    host = client(url)

    def status_of(n: int) -> str:
        state = host.status_session(f"s{n}", "tok")
        return state.status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(status_of, range(64)))
    # Each answer is its own request's (the fake host echoes the path as the status).
    assert statuses == [f"/api/s{n}/status-session" for n in range(64)]
    assert len(seen) == 64
    assert len({port for _, _, port in seen}) <= 8 + 8  # reused, not one connection per call


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, and that key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture()
def tls_host(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[str, str, int]]]]:
    """A keep-alive host over HTTPS with a self-signed certificate, and that certificate."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    seen: list[tuple[str, str, int]] = []
    server = ThreadedServer(type("Handler", (KeepAliveHandler,), {"seen": seen}))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file, seen
    finally:
        server.stop()


def test_https_refuses_a_certificate_nobody_vouches_for(
    tls_host: tuple[str, Path, list[tuple[str, str, int]]],
) -> None:
    url, _, seen = tls_host
    with pytest.raises(HostError) as caught:
        client(url).status_session("s1", "tok")
    assert caught.value.maybe_acted is False  # nothing was sent
    assert seen == []


def test_https_talks_to_a_host_whose_certificate_is_trusted(
    tls_host: tuple[str, Path, list[tuple[str, str, int]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refusal above is the certificate's: trusted (OpenSSL's SSL_CERT_FILE), the same host
    answers, on one connection."""
    from wa_gateway.tls import system_context

    url, cert_file, seen = tls_host
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    system_context.cache_clear()  # made again, with the test's certificate
    try:
        host = client(url)
        assert host.status_session("s1", "tok").status == "/api/s1/status-session"
        host.status_session("s2", "tok")
        assert len({port for _, _, port in seen}) == 1
    finally:
        system_context.cache_clear()


def test_no_secret_reaches_the_logs_or_the_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Everything logged at DEBUG while the host drops connections or is down names neither the
    secret key nor the token, and neither do the errors."""
    caplog.set_level(logging.DEBUG)
    token = "bearer-token-value"
    errors: list[BaseException] = []
    with tcp_server(lambda conn: conn.close()) as port:
        dropping = client(f"http://127.0.0.1:{port}")
        calls = [lambda: dropping.generate_token("s1"), lambda: dropping.list_sessions()]
        calls.append(lambda: dropping.status_session("s1", token))
        calls.append(lambda: client(f"http://127.0.0.1:{free_port()}").list_sessions())
        for call in calls:
            with pytest.raises(HostError) as caught:
                call()
            errors.append(caught.value)
    said = caplog.text + "".join(f"{e!s} {e!r} {e.__context__!r}" for e in errors)
    assert SECRET not in said and token not in said


def test_an_answer_that_never_comes_is_never_asked_again() -> None:
    """A fresh connection dropped after the request, or a read timeout, may have reached the
    host: even a GET is not repeated, and the failure says the host may have acted."""
    connections: list[tuple[str, str] | None] = []

    def drop(conn: socket.socket) -> None:
        with conn:
            connections.append(read_request(conn, bytearray()))

    with tcp_server(drop) as port, pytest.raises(HostError) as caught:
        client(f"http://127.0.0.1:{port}").status_session("s1", "tok")
    assert caught.value.maybe_acted
    assert connections == [("GET", "/api/s1/status-session")]
