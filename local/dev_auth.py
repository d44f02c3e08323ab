"""The local stack's stand-in for Supabase Auth's password sign-in.

``POST /auth/v1/token?grant_type=password`` with ``{"email", "password"}`` answers like
Supabase Auth: an HS256 access token carrying Supabase's claims, signed with the stack's
``SUPABASE_JWT_SECRET`` (a legacy-secret project). Exists only in the local stack.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt

from local import devdb

TOKEN_LIFETIME_S = 3600


def issue_access_token(
    *, user_id: str, email: str, secret: str, issuer: str, lifetime_s: int = TOKEN_LIFETIME_S
) -> tuple[str, int]:
    """An access token shaped like Supabase Auth's, and its expiry (epoch seconds)."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": user_id,
        "aud": "authenticated",
        "exp": now + lifetime_s,
        "iat": now,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
    return token, claims["exp"]  # type: ignore[return-value]


def password_grant(dsn: str, body: Any, *, secret: str, issuer: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for a password sign-in, with Supabase Auth's error shape."""
    email = body.get("email") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(email, str) or not isinstance(password, str):
        return 400, {
            "code": 400,
            "error_code": "validation_failed",
            "msg": "missing email or phone",
        }
    user = devdb.check_password(dsn, email.strip().lower(), password)
    if user is None:
        return 400, {
            "code": 400,
            "error_code": "invalid_credentials",
            "msg": "Invalid login credentials",
        }
    token, expires_at = issue_access_token(
        user_id=user.id, email=user.email, secret=secret, issuer=issuer
    )
    return 200, {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_S,
        "expires_at": expires_at,
        "refresh_token": secrets.token_urlsafe(16),
        "user": {
            "id": user.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": user.email,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"email": user.email},
            "is_anonymous": False,
        },
    }
