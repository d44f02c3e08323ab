"""Supabase Auth's stand-in (``local/dev_auth.py``) as supabase-js and supabase-py use it: sign
in, the user, refresh (two tabs at once, as Auth's reuse interval allows), sign out."""

from __future__ import annotations

import pytest
import requests
from supabase_auth.errors import AuthApiError

from local import devdb
from tests.conftest import Gateway
from tests.contract.conftest import py_client, run_js


def test_supabase_js_signs_in_refreshes_in_two_tabs_at_once_and_signs_out(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    result = run_js(gateway, "auth", email=user.email, password="password")

    assert result["signIn"]["error"] is None
    assert result["signIn"]["data"]["user"]["created_at"]
    assert result["user"]["data"]["user"]["id"] == user.id
    # Both tabs refreshed with the same token and both stay signed in, with the same next token:
    # Auth answers a token's second use with the session's current token.
    assert [r["error"] for r in result["together"]] == [None, None]
    tokens = {r["data"]["session"]["refresh_token"] for r in result["together"]}
    assert len(tokens) == 1
    assert [r["error"] for r in result["next"]] == [None, None]
    assert [r["data"]["user"]["email"] for r in result["users"]] == [user.email] * 2
    assert result["signOut"]["error"] is None
    # A global sign-out ends the other tab's session too: its token is refused with
    # session_not_found, which auth-js reports as a missing session.
    after = result["afterSignOut"]["error"]
    assert after is not None and after["name"] == "AuthSessionMissingError"


def test_supabase_py_signs_in_reads_the_user_sets_and_refreshes_the_session(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    client = py_client(gateway)

    signed = client.auth.sign_in_with_password({"email": user.email, "password": "password"})
    assert signed.user is not None and signed.session is not None
    assert signed.user.id == user.id and signed.user.created_at is not None
    me = client.auth.get_user()
    assert me is not None and me.user.email == user.email

    other = py_client(gateway)
    restored = other.auth.set_session(signed.session.access_token, signed.session.refresh_token)
    assert restored.user is not None and restored.user.id == user.id
    refreshed = other.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != signed.session.refresh_token

    other.auth.sign_out()
    with pytest.raises(AuthApiError) as refused:
        client.auth.refresh_session()
    assert refused.value.code == "refresh_token_not_found"


def test_what_the_dev_sign_in_leaves_out_is_auths_unknown_route(gateway: Gateway) -> None:
    for path in ("signup", "otp", "admin/users", "settings"):
        answer = requests.post(f"{gateway.url}/auth/v1/{path}", json={}, timeout=10)
        assert (answer.status_code, answer.text) == (404, "404 page not found\n"), path
    assert requests.get(f"{gateway.url}/auth/v1/token", timeout=10).status_code == 405
