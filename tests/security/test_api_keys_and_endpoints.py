"""Bad input to API keys and endpoints: keys that are malformed, revoked or another user's; a
user reaching for another's keys, endpoints or deliveries; endpoints over http or at addresses
inside (written as addresses, or as names resolving to them): refused in the contract's shape,
nothing stored, nothing delivered there. The gateway here allows no local endpoints, as in AWS."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.stub_servers import tcp_server
from tests.waiting import wait_until
from wa_gateway.crypto import Keyring
from wa_gateway.delivery import signing
from wa_gateway.keys import api_key

KEY = api_key.new_key()


@pytest.mark.parametrize(
    "token",
    [
        "wak_",
        "wak_short",
        KEY[:-1],
        KEY + "A",
        "wak_" + "!" * 43,
        "wak_" + "A" * 42 + "B",  # its last character carries bits 32 bytes do not have
        KEY.replace("wak_", "wak-"),
    ],
)
def test_a_malformed_key_is_refused(gateway: Gateway, token: str) -> None:
    assert_error(gateway.call("GET", "status", token), 401, "invalid_token")


def test_an_unknown_key_of_the_right_shape_is_refused(gateway: Gateway) -> None:
    for _ in range(2):
        assert_error(gateway.call("GET", "status", api_key.new_key()), 401, "invalid_token")


def test_another_users_keys_endpoints_and_deliveries_are_out_of_reach(gateway: Gateway) -> None:
    alice = gateway.token_for(gateway.new_user("sec-alice"))
    bob = gateway.token_for(gateway.new_user("sec-bob"))
    key = gateway.call("POST", "api-keys", alice, json={"name": "a", "scopes": ["read"]}).json()
    endpoint = gateway.call(
        "POST", "api-keys", alice, path="/endpoints", json={"url": "https://hooks.example.com/a"}
    ).json()["endpoint"]

    assert gateway.call("GET", "api-keys", bob).json() == {"keys": []}
    assert gateway.call("GET", "api-keys", bob, path="/endpoints").json() == {"endpoints": []}
    for method, path, body in (
        ("DELETE", f"/{key['key']['id']}", None),
        ("DELETE", f"/endpoints/{endpoint['id']}", None),
        ("GET", f"/endpoints/{endpoint['id']}/deliveries", None),
        ("POST", f"/endpoints/{endpoint['id']}/replay", {"since": "2026-01-01T00:00:00Z"}),
        ("DELETE", "/not-an-id", None),
        ("GET", "/endpoints/../deliveries", None),
    ):
        assert_error(gateway.call(method, "api-keys", bob, path=path, json=body), 404, "not_found")
    assert [k["id"] for k in gateway.call("GET", "api-keys", alice).json()["keys"]] == [
        key["key"]["id"]
    ]
    assert len(gateway.call("GET", "api-keys", alice, path="/endpoints").json()["endpoints"]) == 1


def test_keys_cannot_make_keys_or_endpoints(gateway: Gateway) -> None:
    token = gateway.token_for(gateway.new_user("sec-keykey"))
    secret = gateway.call(
        "POST", "api-keys", token, json={"name": "all", "scopes": ["send", "read", "sessions"]}
    ).json()["key"]["secret"]
    for method, path in (("POST", "/"), ("GET", "/"), ("POST", "/endpoints")):
        body = {"name": "x", "scopes": ["send"]} if path == "/" else {"url": "https://a.example"}
        answer = gateway.call(method, "api-keys", secret, path=path, json=body)
        assert_error(answer, 403, "insufficient_scope")
    assert len(gateway.call("GET", "api-keys", token).json()["keys"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "scopes": ["send"]},
        {"name": "x" * 65, "scopes": ["send"]},
        {"name": "tab\there", "scopes": ["send"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": ["send", "send"]},
        {"name": "x", "scopes": "send"},
        {"name": "x", "scopes": ["send"], "user_id": str(uuid.uuid4())},
    ],
)
def test_a_bad_key_request_is_refused_and_makes_nothing(gateway: Gateway, body: Any) -> None:
    token = gateway.token_for(gateway.new_user("sec-badkey"))
    assert_error(gateway.call("POST", "api-keys", token, json=body), 400, "invalid_request")
    assert gateway.call("GET", "api-keys", token).json() == {"keys": []}


REFUSED_URLS = [
    "http://hooks.example.com/in",
    "https://127.0.0.1/in",
    "https://127.0.0.1:8443/in",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/in",
    "https://10.0.0.1/in",
    "https://192.168.1.10/in",
    "https://[::ffff:127.0.0.1]/in",
    "https://[fd00:ec2::254]/in",
    "https://0.0.0.0/in",
    "https://localhost/in",  # a name resolving to a loopback address
    "https://localhost./in",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_an_endpoint_inside_or_over_http_is_refused(gateway: Gateway, url: str) -> None:
    token = gateway.token_for(gateway.new_user("sec-url"))
    answer = gateway.call("POST", "api-keys", token, path="/endpoints", json={"url": url})
    assert_error(answer, 422, "endpoint_not_allowed")
    assert gateway.call("GET", "api-keys", token, path="/endpoints").json() == {"endpoints": []}


@pytest.fixture()
def listener() -> Iterator[tuple[int, list[float]]]:
    """A port on 127.0.0.1 that records every connection made to it."""
    accepted: list[float] = []

    def accept(conn: socket.socket) -> None:
        accepted.append(time.time())
        conn.close()

    with tcp_server(accept) as port:
        yield port, accepted


def test_nothing_is_delivered_to_an_endpoint_whose_name_now_resolves_inside(
    gateway: Gateway, simulator: Simulator, listener: tuple[int, list[float]]
) -> None:
    """Endpoints checked when they were added, at names that resolve inside when it is time to
    deliver (written straight to the table: no request can add them): never connected to."""
    port, accepted = listener
    user, token, session = connected_user(gateway, simulator, "sec-rebind")
    keyring = Keyring.from_setting(gateway.env["ENCRYPTION_KEY"])
    urls = [f"https://localhost:{port}/in", f"http://127.0.0.1:{port}/in"]
    ids = [str(uuid.uuid4()) for _ in urls]
    with psycopg.connect(gateway.dsn, autocommit=True) as conn:
        for endpoint_id, url in zip(ids, urls, strict=True):
            conn.execute(
                "insert into whatsapp_endpoints (id, user_id, url, events, secret)"
                " values (%s, %s, %s, '{message.received}', %s)",
                (endpoint_id, user.id, url,
                 keyring.encrypt(signing.new_secret(), context=endpoint_id)),
            )  # fmt: skip
    simulator.control("POST", f"{session}/incoming", {"from": "5511912345678", "body": "x"})
    for endpoint_id in ids:
        [delivery] = wait_until(
            lambda endpoint_id=endpoint_id: gateway.call(
                "GET", "api-keys", token, path=f"/endpoints/{endpoint_id}/deliveries"
            ).json()["deliveries"],
            lambda rows: bool(rows) and rows[0]["attempts"] >= 1,
            within_s=10,
        )
        assert delivery["last_error"] == "blocked_address" and delivery["last_status"] is None
    assert accepted == []


def test_keys_and_signing_secrets_are_in_no_log_and_no_column(gateway: Gateway) -> None:
    token = gateway.token_for(gateway.new_user("sec-secrets"))
    key = gateway.call("POST", "api-keys", token, json={"name": "k", "scopes": ["read"]}).json()
    endpoint = gateway.call(
        "POST", "api-keys", token, path="/endpoints", json={"url": "https://hooks.example.com/s"}
    ).json()["endpoint"]
    secrets = [key["key"]["secret"], endpoint["secret"], endpoint["secret"].removeprefix("whsec_")]
    gateway.call("GET", "status", secrets[0])
    assert_error(gateway.call("GET", "send-message", secrets[0]), 404, "not_found")
    with psycopg.connect(gateway.dsn) as conn:
        rows = conn.execute(
            "select k::text from whatsapp_api_keys k union all"
            " select e::text from whatsapp_endpoints e"
        ).fetchall()
    log = gateway.log_text()
    for secret in secrets:
        assert secret not in log
        assert not any(secret in row[0] for row in rows)
    assert any(api_key.digest(secrets[0]) in row[0] for row in rows)
