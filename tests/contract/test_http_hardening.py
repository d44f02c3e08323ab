"""How the gateway reads a request, for the functions and the Supabase stand-ins alike: a body
by ``Content-Length`` or chunked, each within its cap (6 MiB for a function, as Lambda's
payload limit; 50 MiB for a Storage upload), and a malformed length answered, never read
until the client gives up. Plus Storage's own guards on what it serves back."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

from local import devdb
from tests.conftest import Gateway
from tests.contract.conftest import BUCKET

MiB = 1024 * 1024


def exchange(gateway: Gateway, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything the gateway answers before it closes
    or goes quiet."""
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        conn.settimeout(5)
        try:
            while chunk := conn.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and _complete(received):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def head_of(gateway: Gateway, method: str, path: str, **headers: str) -> bytes:
    address = urlsplit(gateway.url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(answer: bytes) -> int:
    assert answer, "the gateway answered nothing"
    return int(answer.split(b" ", 2)[1])


def test_a_negative_or_garbled_length_is_a_400_not_a_read_to_the_end(gateway: Gateway) -> None:
    for length in ("-1", "abc", "1, 2"):
        for path in ("/status/", f"/storage/v1/object/{BUCKET}/x/outgoing/a.jpg"):
            answer = exchange(
                gateway, head_of(gateway, "POST", path, **{"Content-Length": length}) + b"x"
            )
            assert status_of(answer) == 400, (length, path, answer[:200])


def test_chunked_bodies_are_read_and_held_to_the_same_caps(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    token = gateway.token_for(user)
    name = f"{user.id}/outgoing/chunked.jpg"
    path = f"/storage/v1/object/{BUCKET}/{name}"
    sent = head_of(
        gateway,
        "POST",
        path,
        **{
            "Authorization": f"Bearer {token}",
            "Content-Type": "image/jpeg",
            "Transfer-Encoding": "chunked",
        },
    )
    body = b"4\r\n\xff\xd8\xff\xe0\r\n6\r\n-bytes\r\n0\r\n\r\n"
    assert status_of(exchange(gateway, sent + body)) == 200
    got = requests.get(
        f"{gateway.url}/storage/v1/object/authenticated/{BUCKET}/{name}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert got.content == b"\xff\xd8\xff\xe0-bytes"

    # A function's body past 6 MiB, announced by its chunks: refused before it is read.
    over = head_of(gateway, "POST", "/send-message/", **{"Transfer-Encoding": "chunked"})
    chunk = b"x" * (4 * MiB)
    answer = exchange(gateway, over + b"400000\r\n" + chunk + b"\r\n400000\r\n")
    assert status_of(answer) == 413
    # A Storage upload past 50 MiB, the same way (answered as Storage answers: HTTP 400).
    answer = exchange(gateway, sent + f"{51 * MiB:x}\r\n".encode())
    assert status_of(answer) == 400 and b'"statusCode": "413"' in answer
    # A chunk size that is not a number.
    assert status_of(exchange(gateway, sent + b"zz\r\nabc\r\n0\r\n\r\n")) == 400


def test_storage_refuses_a_nul_in_a_name_and_serves_bytes_as_declared_only(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    token = gateway.token_for(user)
    auth = {"Authorization": f"Bearer {token}", "apikey": gateway.local_secrets.anon_key}
    objects = f"{gateway.url}/storage/v1/object"

    def upload(name: str, data: bytes, content_type: str) -> requests.Response:
        headers = {**auth, "Content-Type": content_type}
        return requests.post(f"{objects}/{BUCKET}/{name}", data=data, headers=headers, timeout=10)

    nul = upload(f"{user.id}/outgoing/a%00b.jpg", b"\xff\xd8", "image/jpeg")
    assert nul.status_code == 400, nul.text
    assert (nul.json()["statusCode"], nul.json()["code"]) == ("400", "InvalidKey")
    fetched = requests.get(
        f"{objects}/{BUCKET}/{user.id}/outgoing/a%00b.jpg", headers=auth, timeout=10
    )
    assert fetched.status_code == 400 and fetched.json()["code"] == "InvalidKey"

    # HTML declared as a PNG comes back as a PNG the browser may not sniff into HTML.
    name = f"{user.id}/outgoing/page.png"
    stored = upload(name, b"<html><script>alert(1)</script></html>", "image/png")
    assert stored.status_code == 200, stored.text
    for route in ("authenticated/", ""):
        got = requests.get(f"{objects}/{route}{BUCKET}/{name}", headers=auth, timeout=10)
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
