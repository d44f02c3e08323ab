"""The local stand-in for Supabase Auth (``local/dev_auth.py``), as supabase-js uses it:
the password and refresh-token grants with Supabase Auth's session shape, rotating refresh
tokens, the signed-in user, sign-out, Supabase Auth's error shapes, and CORS for the headers
supabase-js sends."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import requests

from local import dev_auth, devdb
from tests.conftest import Gateway

VERSIONED = {"apikey": "local", "x-supabase-api-version": "2024-01-01"}
# What Supabase Auth's token endpoint answers (and supabase-js keeps as the session).
SESSION_FIELDS = {"access_token", "token_type", "expires_in", "expires_at", "refresh_token", "user"}


def token(gateway: Gateway, grant: str, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/auth/v1/token?grant_type={grant}",
        json=body,
        headers={**VERSIONED, **headers},
        timeout=10,
    )


def auth(gateway: Gateway, method: str, path: str, access_token: str | None) -> requests.Response:
    headers = dict(VERSIONED)
    if access_token:
        headers["authorization"] = f"Bearer {access_token}"
    return requests.request(method, f"{gateway.url}/auth/v1/{path}", headers=headers, timeout=10)


def sign_in(gateway: Gateway) -> dict[str, Any]:
    user = gateway.new_user("auth")
    answer = token(gateway, "password", {"email": user.email, "password": "password"})
    assert answer.status_code == 200, answer.text
    session: dict[str, Any] = answer.json()
    return session


def test_sessions_look_like_supabase_auth_and_refresh_tokens_rotate(gateway: Gateway) -> None:
    session = sign_in(gateway)
    assert set(session) == SESSION_FIELDS
    assert session["token_type"] == "bearer" and session["expires_in"] == 3600
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["exp"] == session["expires_at"] and claims["sub"] == session["user"]["id"]

    refreshed = token(gateway, "refresh_token", {"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["refresh_token"] != session["refresh_token"]
    assert renewed["user"]["id"] == session["user"]["id"]
    new_claims = jwt.decode(renewed["access_token"], options={"verify_signature": False})
    assert new_claims["session_id"] == claims["session_id"]
    # The new access token works with the functions.
    status = gateway.call("GET", "status", renewed["access_token"])
    assert status.status_code == 200, status.text

    # A used refresh token whose next one is still the session's current token (a second tab,
    # or a client that lost the answer) gets that current token back, as Supabase Auth does.
    again = token(gateway, "refresh_token", {"refresh_token": session["refresh_token"]})
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == renewed["refresh_token"]


def test_an_old_refresh_token_replayed_after_the_reuse_interval_ends_the_session(
    database: str,
) -> None:
    """Past Auth's reuse interval (10 s; none here), a used token that is not the parent of
    the current one is a replay: refused, and the session ends."""
    user = devdb.create_user(database, f"replay-{uuid.uuid4().hex[:8]}@example.com", "password")
    auth = dev_auth.DevAuth(database, secret="s" * 32, issuer="local", reuse_interval_s=0)
    version = "2024-01-01"
    status, first, _ = auth.token(
        "password", {"email": user.email, "password": "password"}, version
    )
    assert status == 200 and first is not None
    status, second, _ = auth.token(
        "refresh_token", {"refresh_token": first["refresh_token"]}, version
    )
    assert status == 200 and second is not None
    status, third, _ = auth.token(
        "refresh_token", {"refresh_token": second["refresh_token"]}, version
    )
    assert status == 200 and third is not None

    status, replayed, headers = auth.token(
        "refresh_token", {"refresh_token": first["refresh_token"]}, version
    )
    assert (status, replayed) == (
        400,
        {"code": "refresh_token_already_used", "message": "Invalid Refresh Token: Already Used"},
    )
    assert headers == [("x-supabase-api-version", "2024-01-01")]
    status, latest, _ = auth.token(
        "refresh_token", {"refresh_token": third["refresh_token"]}, version
    )
    assert status == 400 and latest is not None and latest["code"] == "refresh_token_not_found"


def test_user_and_sign_out(gateway: Gateway) -> None:
    session = sign_in(gateway)
    other = token(
        gateway, "password", {"email": session["user"]["email"], "password": "password"}
    ).json()
    me = auth(gateway, "GET", "user", session["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["id"] == session["user"]["id"]
    assert me.json()["email"] == session["user"]["email"]

    out = auth(gateway, "POST", "logout?scope=local", session["access_token"])
    assert out.status_code == 204 and out.content == b""
    refused = token(gateway, "refresh_token", {"refresh_token": session["refresh_token"]})
    assert refused.status_code == 400 and refused.json()["code"] == "refresh_token_not_found"
    gone = auth(gateway, "GET", "user", session["access_token"])
    assert gone.status_code == 403 and gone.json()["code"] == "session_not_found"
    # scope=local left the user's other session alone; the default (global) ends it too.
    assert auth(gateway, "GET", "user", other["access_token"]).status_code == 200
    assert auth(gateway, "POST", "logout", other["access_token"]).status_code == 204
    refused = token(gateway, "refresh_token", {"refresh_token": other["refresh_token"]})
    assert refused.status_code == 400 and refused.json()["code"] == "refresh_token_not_found"


def test_refusals_have_supabase_auth_shapes(gateway: Gateway) -> None:
    # Clients that ask for no API version get the older shape.
    legacy = requests.post(
        f"{gateway.url}/auth/v1/token?grant_type=password",
        json={"email": "alice@example.com", "password": "wrong"},
        timeout=10,
    )
    assert legacy.status_code == 400
    assert legacy.json() == {
        "code": 400,
        "error_code": "invalid_credentials",
        "msg": "Invalid login credentials",
    }
    wrong = token(gateway, "password", {"email": "alice@example.com", "password": "wrong"})
    assert wrong.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    unknown = token(gateway, "refresh_token", {"refresh_token": "never-issued"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "refresh_token_not_found"
    assert token(gateway, "magic", {}).status_code == 400

    assert auth(gateway, "GET", "user", None).status_code == 401
    assert auth(gateway, "GET", "user", "not.a.jwt").json()["code"] == "bad_jwt"
    expired = gateway.token_for(gateway.new_user("expired"), lifetime_s=-120)
    assert auth(gateway, "POST", "logout", expired).status_code == 403
    # A token the functions accept but with no sign-in session behind it.
    unsigned = gateway.token_for(gateway.new_user("no-session"))
    assert auth(gateway, "GET", "user", unsigned).json()["code"] == "session_not_found"


def test_cors_preflight_allows_what_supabase_js_sends(gateway: Gateway) -> None:
    origin = gateway.url
    for path in ("auth/v1/token?grant_type=refresh_token", "auth/v1/logout", "rest/v1/x"):
        answer = requests.options(
            f"{gateway.url}/{path}",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "apikey,authorization,content-type",
            },
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        allowed = answer.headers["access-control-allow-headers"].split(",")
        for header in (
            "apikey",
            "authorization",
            "content-type",
            "x-client-info",
            "x-supabase-api-version",
            "accept-profile",
        ):
            assert header in allowed, (path, header)
    answer = token(gateway, "password", {"email": "x@example.com", "password": "x"}, origin=origin)
    assert "x-supabase-api-version" in answer.headers["access-control-expose-headers"]
