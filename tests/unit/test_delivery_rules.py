"""Event delivery's rules without a server: Standard Webhooks signatures (checked with the
specification's own library), which addresses events may go to, and an API key's shape."""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from wa_gateway.crypto import Keyring
from wa_gateway.delivery import signing
from wa_gateway.delivery.addresses import (
    EndpointUrl,
    Unreachable,
    address_for,
    parse_url,
    why_refused,
)
from wa_gateway.delivery.http import Outcome
from wa_gateway.delivery.store import Claim, Pending, Recorded
from wa_gateway.delivery.worker import Deliverer
from wa_gateway.errors import EndpointNotAllowed, InvalidRequest
from wa_gateway.keys import api_key
from wa_gateway.settings import DeliveryPolicy

BODY = json.dumps({"type": "message.received", "data": {"body": "oi"}}).encode()


def test_a_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    now = int(time.time())
    headers = signing.headers(secret, "msg_42", now, BODY)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    for tampered in (
        {**headers, "webhook-id": "msg_43"},
        {**headers, "webhook-timestamp": str(now + 1)},
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(BODY, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_api_keys_have_their_shape_and_only_their_digest_is_kept() -> None:
    keys = {api_key.new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("wak_") and len(key) == 47 and api_key.is_well_formed(key)
        assert len(base64.urlsafe_b64decode(key[4:] + "=")) == 32
        other = key[:-1] + ("E" if key[-1] != "E" else "I")
        assert api_key.digest(key) != api_key.digest(other)
        assert key not in api_key.digest(key)
        assert api_key.prefix(key) == key[:10]
    key = next(iter(keys))
    for bad in ("wak_", "wak_short", key[:-1], key + "A", key.replace("wak_", "WAK_"),
                "wak_" + "+" * 43, "wak_" + "A" * 42 + "B"):  # fmt: skip
        assert not api_key.is_well_formed(bad), bad


REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "169.254.169.254": "metadata",
    "fd00:ec2::254": "metadata",
    "100.100.100.200": "metadata",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "100.64.0.1": "not public",
    "192.0.2.10": "",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "metadata",
    "64:ff9b::a00:1": "private",
    "2002:7f00:1::": "loopback",
}


@pytest.mark.parametrize(("address", "why"), sorted(REFUSED.items()))
def test_addresses_inside_are_refused(address: str, why: str) -> None:
    reason = why_refused(ipaddress.ip_address(address), allow_local=False)
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert why_refused(ipaddress.ip_address(address), allow_local=False) is None


def test_allowing_local_endpoints_allows_loopback_and_nothing_else() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert why_refused(ipaddress.ip_address(address), allow_local=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "192.168.0.1", "::ffff:10.0.0.1"):
        assert why_refused(ipaddress.ip_address(address), allow_local=True) is not None


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest",
     "https://[::1]:8443/", "https://10.0.0.1/", "https://[::ffff:127.0.0.1]/",
     "https://0.0.0.0/"],
)  # fmt: skip
def test_urls_to_inside_or_over_http_are_refused_as_they_are_added(url: str) -> None:
    with pytest.raises(EndpointNotAllowed):
        parse_url(url, allow_local=False)


@pytest.mark.parametrize(
    "url",
    [None, 5, "", "ftp://example.com/", "https://", "https://user:pw@example.com/",
     "https://example.com/a b", "https://example.com/#x", "https://exämple.com/",
     "https://example.com:99999/", "https://example.com/" + "a" * 2100, "javascript:alert(1)"],
)  # fmt: skip
def test_what_is_not_a_url_is_refused(url: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse_url(url, allow_local=False)


def test_a_url_keeps_its_host_port_and_target() -> None:
    parsed = parse_url("https://Hooks.Example.com:8443/in?x=1", allow_local=False)
    assert parsed == EndpointUrl(
        "https://Hooks.Example.com:8443/in?x=1", "https", "hooks.example.com", 8443, "/in?x=1"
    )
    assert parse_url("https://example.com", allow_local=False).target == "/"


def test_a_name_is_checked_with_every_address_it_resolves_to() -> None:
    endpoint = parse_url("https://hooks.example.com/in", allow_local=False)
    public = ["93.184.215.14"]
    assert address_for(endpoint, allow_local=False, resolve=lambda h, p: public) == public[0]
    for answer in (["127.0.0.1"], ["93.184.215.14", "10.1.2.3"], ["::ffff:169.254.169.254"]):
        with pytest.raises(Unreachable) as refused:
            address_for(endpoint, allow_local=False, resolve=lambda h, p, a=answer: a)
        assert refused.value.reason == "blocked_address"

    def gone(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(Unreachable) as unresolved:
        address_for(endpoint, allow_local=False, resolve=gone)
    assert unresolved.value.reason == "unresolved"


class Calls:
    """The worker's store calls, recorded; one claimed endpoint with two deliveries."""

    def __init__(self, claim: Claim) -> None:
        self.claims = [claim]
        self.recorded: list[list[tuple[int, Outcome]]] = []

    def claim(self, **_: Any) -> list[Claim]:
        claims, self.claims = self.claims, []
        return claims

    def record(self, claim: Claim, token: str, results: Any, **_: Any) -> Recorded:
        self.recorded.append(list(results))
        return Recorded(lost=False)

    def forget(self, **_: Any) -> int:
        return 0


def test_a_name_that_resolves_inside_at_delivery_time_is_never_connected_to() -> None:
    """Checked when added (public then), resolved inside when delivering: refused, no POST."""
    keyring = Keyring([("k1", bytes(32))])
    endpoint_id = "6f1c0000-0000-4000-8000-000000000001"
    secret = keyring.encrypt(signing.new_secret(), context=endpoint_id)
    body = {"type": "message.received", "timestamp": "t", "data": {}}
    claim = Claim(endpoint_id, "u", "https://rebind.example.com/in", secret, "lease",
                  (Pending(1, 1, 10, 0, body), Pending(2, 2, 11, 0, body)))  # fmt: skip
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    posted: list[str] = []

    def post(endpoint: EndpointUrl, address: str, *args: Any, **kwargs: Any) -> Outcome:
        posted.append(address)
        return Outcome(True, 200)

    calls = Calls(claim)
    deliverer = Deliverer(
        calls,  # type: ignore[arg-type]
        keyring,
        DeliveryPolicy(concurrency=1),
        resolve=lambda host, port: next(answers),
        post=post,
    )
    report = deliverer.run(lambda: 60.0)
    assert posted == ["93.184.215.14"]
    assert calls.recorded == [
        [(1, Outcome(True, 200)), (2, Outcome(False, None, "blocked_address"))]
    ]
    assert report.delivered == 1 and report.errors == {"blocked_address": 1}
