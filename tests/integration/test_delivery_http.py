"""One delivery attempt on the wire, against servers on 127.0.0.1 that misbehave: it connects to
the address it was given (the name is never looked up), follows no redirect, gives up at its
deadline however the answer trickles, and reads at most 1 KiB of it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.stub_servers import tcp_server
from wa_gateway.delivery.addresses import EndpointUrl
from wa_gateway.delivery.http import Outcome, post


@contextmanager
def raw_server(
    answer: bytes, *, drip_s: float = 0.0, at_once: bool = False
) -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server answering every connection with ``answer`` once it has read a request's
    head (``at_once``: before reading anything), a byte at a time every ``drip_s`` when set;
    yields its port and what each connection sent."""
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while not at_once and b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            seen.append(data)
            try:
                if drip_s:
                    for byte in answer:
                        conn.sendall(bytes([byte]))
                        time.sleep(drip_s)
                else:
                    conn.sendall(answer)
            except OSError:
                pass

    with tcp_server(serve) as port:
        yield port, seen


def endpoint(port: int, host: str = "hooks.example.invalid") -> EndpointUrl:
    return EndpointUrl(f"http://{host}:{port}/in", "http", host, port, "/in")


def test_it_connects_to_the_checked_address_with_the_names_host_header() -> None:
    with raw_server(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") as (port, seen):
        outcome = post(endpoint(port), "127.0.0.1", {"webhook-id": "msg_1"}, b"{}", timeout_s=5)
    assert outcome == Outcome(True, 204)
    request = seen[0].decode()
    assert (
        request.startswith("POST /in HTTP/1.1") and f"Host: hooks.example.invalid:{port}" in request
    )


def test_a_redirect_is_a_failed_attempt_and_is_not_followed() -> None:
    with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as (target, followed):
        redirect = (
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{target}/in\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        with raw_server(redirect) as (port, _):
            outcome = post(endpoint(port), "127.0.0.1", {}, b"{}", timeout_s=5)
        time.sleep(0.2)
    assert outcome == Outcome(False, 307, "http_status")
    assert followed == []


def test_an_answer_trickled_a_byte_at_a_time_is_cut_at_the_deadline() -> None:
    slow = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with raw_server(slow, drip_s=0.2) as (port, _):
        started = time.monotonic()
        outcome = post(endpoint(port), "127.0.0.1", {}, b"{}", timeout_s=1.0)
        took = time.monotonic() - started
    assert outcome == Outcome(False, None, "timeout")
    assert took < 2.0


def test_at_most_a_kibibyte_of_the_answer_is_read() -> None:
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 4_000_000
    with raw_server(huge) as (port, _):
        started = time.monotonic()
        outcome = post(endpoint(port), "127.0.0.1", {}, b"{}", timeout_s=5)
        took = time.monotonic() - started
    assert outcome == Outcome(True, 200)
    assert took < 1.0  # 50 MB announced, the connection closed after 1 KiB


def test_nothing_listening_is_a_connection_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    assert post(endpoint(port), "127.0.0.1", {}, b"{}", timeout_s=2) == Outcome(
        False, None, "connection"
    )


def test_https_to_a_server_without_tls_fails_the_handshake() -> None:
    with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", at_once=True) as (port, _):
        secure = EndpointUrl(f"https://hooks.example.invalid:{port}/", "https",
                             "hooks.example.invalid", port, "/")  # fmt: skip
        outcome = post(secure, "127.0.0.1", {}, b"{}", timeout_s=2)
    assert outcome == Outcome(False, None, "tls")
