"""The two webhook proofs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from wa_gateway.auth.webhook_proof import (
    WebhookCaller,
    authenticate,
    host_verify_token,
    session_proof,
    session_webhook_url,
)
from wa_gateway.errors import InvalidVerifyToken

SECRETS = ("current-secret-value", "previous-secret-value")


def by_header(token: str, body_session: str | None, host: str | None = None) -> WebhookCaller:
    """An event proven by the ``x-verify`` header, as qr-webhook passes it on."""
    return authenticate(
        SECRETS,
        header_token=token,
        query_session=None,
        query_verify=None,
        body_session=body_session,
        query_host=host,
    )


def by_url(
    session: str | None,
    proof: str | None,
    body_session: str | None = None,
    host: str | None = None,
    attempt: str | None = None,
) -> WebhookCaller:
    """An event proven by the webhook URL's query, as qr-webhook passes it on."""
    return authenticate(
        SECRETS,
        header_token=None,
        query_session=session,
        query_verify=proof,
        body_session=body_session,
        query_host=host,
        query_attempt=attempt,
    )


def test_the_header_proof_takes_the_session_from_the_body() -> None:
    assert by_header("previous-secret-value", "user_a").session_name == "user_a"


def test_the_header_proof_without_a_session_attributes_nothing() -> None:
    assert by_header(SECRETS[0], None).session_name is None


@pytest.mark.parametrize("token", ["wrong", "", "current-secret-valu", "current-secret-value "])
def test_a_wrong_header_is_refused(token: str) -> None:
    with pytest.raises(InvalidVerifyToken):
        by_header(token, "a")


def test_the_url_proof_is_for_one_session() -> None:
    url = session_webhook_url("https://hook.example/qr-webhook/?x=1", "user_a", SECRETS[0])
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"] and query["session"] == ["user_a"]
    proof = query["verify"][0]
    assert proof == session_proof(SECRETS[0], "user_a")
    ok = by_url("user_a", proof)
    assert ok.session_name == "user_a" and ok.host_id is None
    with pytest.raises(InvalidVerifyToken):
        by_url("user_b", proof)
    with pytest.raises(InvalidVerifyToken):
        by_url("user_a", proof, body_session="user_b")


def test_the_url_proof_made_with_the_previous_secret_still_works() -> None:
    assert by_url("user_a", session_proof(SECRETS[1], "user_a")).session_name == "user_a"


def test_no_proof_is_refused() -> None:
    with pytest.raises(InvalidVerifyToken):
        by_url(None, None, body_session="a")


HOST_A = "0b7c5f7e-0000-4000-8000-00000000000a"
HOST_B = "0b7c5f7e-0000-4000-8000-00000000000b"


def test_a_pool_hosts_url_proof_binds_the_host() -> None:
    url = session_webhook_url("https://hook.example/", "user_a", SECRETS[0], host_id=HOST_A)
    query = parse_qs(urlsplit(url).query)
    assert query["host"] == [HOST_A]
    proof = query["verify"][0]
    ok = by_url("user_a", proof, host=HOST_A)
    assert (ok.session_name, ok.host_id) == ("user_a", HOST_A)
    for host in (HOST_B, None):  # the same proof says nothing for another host, or none
        with pytest.raises(InvalidVerifyToken):
            by_url("user_a", proof, host=host)


def test_a_pool_hosts_own_header_token() -> None:
    token = host_verify_token(SECRETS[0], HOST_A)
    ok = by_header(token, "user_a", host=HOST_A)
    assert (ok.session_name, ok.host_id) == ("user_a", HOST_A)
    with pytest.raises(InvalidVerifyToken):
        by_header(token, "user_a", host=HOST_B)


@pytest.mark.parametrize("host", ["not-a-uuid", "'; drop table x; --", ""])
def test_a_malformed_host_is_refused(host: str) -> None:
    with pytest.raises(InvalidVerifyToken):
        by_header(SECRETS[0], "user_a", host=host)


def test_an_attempts_url_proof_names_the_attempt() -> None:
    url = session_webhook_url("https://hook.example/", "user_a", SECRETS[0], attempt=3)
    query = parse_qs(urlsplit(url).query)
    assert query["attempt"] == ["3"]
    proof = query["verify"][0]
    assert by_url("user_a", proof, attempt="3").attempt == 3
    # another attempt, or none, is not what was signed; a negative one is malformed
    for attempt in ("4", None, "-1"):
        with pytest.raises(InvalidVerifyToken):
            by_url("user_a", proof, attempt=attempt)
