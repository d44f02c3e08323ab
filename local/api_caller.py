"""Who calls the local stand-ins for Supabase's APIs (PostgREST, Storage), from their token, and
running a transaction as them.

A request's token is its ``Authorization: Bearer`` token, else its ``apikey`` (a legacy API key
is itself a token). It is checked as a legacy-secret project checks it: HS256 with the stack's
JWT secret, not expired. Its ``role`` claim (``anon``, ``authenticated`` or ``service_role``)
is the database role the request's statements run as, with its claims in
``request.jwt.claims``, as PostgREST and Storage set them, so the database's grants and RLS
decide what it may do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg

API_ROLES = ("anon", "authenticated", "service_role")


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]
    verified: bool = True  # False: no valid token, taken as anon where a route allows that

    @property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


ANON = Caller("anon", {"role": "anon"}, verified=False)


class TokenRefused(Exception):
    """The token is missing, invalid, expired or names a role the APIs do not run as."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # missing, expired, invalid_signature, invalid or role
        self.message = message


def token_of(headers: Mapping[str, str]) -> str:
    """The request's token: the bearer token, else the ``apikey``; empty if neither."""
    scheme, _, bearer = (headers.get("authorization") or "").partition(" ")
    token = bearer.strip() if scheme.lower() == "bearer" else ""
    return token or (headers.get("apikey") or "").strip()


def caller_of(headers: Mapping[str, str], jwt_secret: str) -> Caller:
    """The caller the request's token names; ``TokenRefused`` if it names none."""
    token = token_of(headers)
    if not token:
        raise TokenRefused("missing", "No token in the request")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, jwt_secret, algorithms=["HS256"], options={"verify_aud": False}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRefused("expired", "JWT expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenRefused("invalid_signature", "JWT signature invalid") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRefused("invalid", "JWT invalid") from exc
    role = claims.get("role")
    if role not in API_ROLES:
        raise TokenRefused("role", "Invalid role")
    return Caller(str(role), claims)


def run_as(conn: psycopg.Connection[Any], caller: Caller) -> None:
    """Run the rest of ``conn``'s transaction as ``caller``: its role, and its claims both as
    ``request.jwt.claims`` and as the older per-claim settings."""
    conn.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
        " set_config('request.jwt.claim.role', %s, true),"
        " set_config('request.jwt.claim.sub', %s, true)",
        (caller.role, json.dumps(caller.claims), caller.role, caller.user_id or ""),
    )
