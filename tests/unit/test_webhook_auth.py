"""The two webhook proofs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from wa_gateway.errors import InvalidVerifyToken
from wa_gateway.webhook_auth import authenticate, session_proof, session_webhook_url

SECRETS = ("current-secret-value", "previous-secret-value")


def test_the_header_proof_takes_the_session_from_the_body() -> None:
    assert (
        authenticate(
            SECRETS,
            header_token="previous-secret-value",
            query_session=None,
            query_verify=None,
            body_session="user_a",
        )
        == "user_a"
    )


def test_the_header_proof_without_a_session_attributes_nothing() -> None:
    found = authenticate(
        SECRETS, header_token=SECRETS[0], query_session=None, query_verify=None, body_session=None
    )
    assert found is None


@pytest.mark.parametrize("token", ["wrong", "", "current-secret-valu", "current-secret-value "])
def test_a_wrong_header_is_refused(token: str) -> None:
    with pytest.raises(InvalidVerifyToken):
        authenticate(
            SECRETS, header_token=token, query_session=None, query_verify=None, body_session="a"
        )


def test_the_url_proof_is_for_one_session() -> None:
    url = session_webhook_url("https://hook.example/qr-webhook/?x=1", "user_a", SECRETS[0])
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"] and query["session"] == ["user_a"]
    proof = query["verify"][0]
    assert proof == session_proof(SECRETS[0], "user_a")
    ok = authenticate(
        SECRETS, header_token=None, query_session="user_a", query_verify=proof, body_session=None
    )
    assert ok == "user_a"
    with pytest.raises(InvalidVerifyToken):
        authenticate(
            SECRETS,
            header_token=None,
            query_session="user_b",
            query_verify=proof,
            body_session=None,
        )
    with pytest.raises(InvalidVerifyToken):
        authenticate(
            SECRETS,
            header_token=None,
            query_session="user_a",
            query_verify=proof,
            body_session="user_b",
        )


def test_the_url_proof_made_with_the_previous_secret_still_works() -> None:
    proof = session_proof(SECRETS[1], "user_a")
    found = authenticate(
        SECRETS, header_token=None, query_session="user_a", query_verify=proof, body_session=None
    )
    assert found == "user_a"


def test_no_proof_is_refused() -> None:
    with pytest.raises(InvalidVerifyToken):
        authenticate(
            SECRETS, header_token=None, query_session=None, query_verify=None, body_session="a"
        )
