"""The local stack's stand-in for Supabase Auth, for what the demo page (supabase-js) uses.

* ``POST /auth/v1/token?grant_type=password`` ``{"email", "password"}`` and
  ``POST /auth/v1/token?grant_type=refresh_token`` ``{"refresh_token"}``: Supabase Auth's
  session shape (``access_token``, ``token_type``, ``expires_in``, ``expires_at``,
  ``refresh_token``, ``user``); the access token is HS256 with Supabase's claims, signed with
  the stack's ``SUPABASE_JWT_SECRET`` (a legacy-secret project).
* Refresh tokens rotate: each use answers the next one. As in Supabase Auth, a used token
  whose next one is still the session's current token gets that current token back (two tabs
  refreshing at once, or a client that lost the answer), and any used token works again
  within the reuse interval (10 s) of its use; past that, using it again is refused
  (``refresh_token_already_used``) and ends the whole session, as Auth's reuse detection does.
* ``GET /auth/v1/user``: the signed-in user, while the token's session is alive, with the
  fields of Auth's user (``created_at``, ``last_sign_in_at``, ...) from ``auth.users``.
* ``POST /auth/v1/logout?scope=global|local|others``: ends sessions (their refresh tokens stop
  working); 204.

Errors have Supabase Auth's shapes: ``{"code", "message"}`` with an
``X-Supabase-Api-Version: 2024-01-01`` header when the request asked for that API version (as
supabase-js does), ``{"code": <status>, "error_code", "msg"}`` otherwise. Sessions live in
this process's memory, so restarting the gateway signs everyone out. Local only.
"""

from __future__ import annotations

import datetime
import re
import secrets
import threading
import time
import uuid
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import jwt
import psycopg

from local import devdb

TOKEN_LIFETIME_S = 3600
# Supabase Auth's default GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL.
REFRESH_TOKEN_REUSE_INTERVAL_S = 10
API_VERSION = "2024-01-01"  # the one error shape Supabase Auth has versioned so far
API_VERSION_HEADER = "x-supabase-api-version"

# (status, JSON body or None, extra headers)
Answer = tuple[int, dict[str, Any] | None, list[tuple[str, str]]]


def issue_access_token(
    *,
    user_id: str,
    email: str,
    secret: str,
    issuer: str,
    lifetime_s: int = TOKEN_LIFETIME_S,
    session_id: str | None = None,
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
        "session_id": session_id or str(uuid.uuid4()),
        "is_anonymous": False,
    }
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
    return token, claims["exp"]  # type: ignore[return-value]


# A legacy API key's issue and expiry times; fixed, so a stack's keys stay the same across
# restarts (Supabase's keys are made once per project and last about ten years).
_API_KEY_IAT = 1_767_225_600  # 2026-01-01
_API_KEY_EXP = _API_KEY_IAT + 10 * 365 * 86400


def legacy_api_key(role: str, secret: str) -> str:
    """A legacy ``anon`` or ``service_role`` API key: a long-lived HS256 JWT signed with the
    project's JWT secret, with the claims Supabase gives its keys."""
    claims = {"iss": "supabase", "ref": "local", "role": role, "iat": _API_KEY_IAT}
    claims["exp"] = _API_KEY_EXP
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def user_json(record: dict[str, Any], last_sign_in_at: str) -> dict[str, Any]:
    """A user as Supabase Auth answers one, from their ``auth.users`` row; dev users are
    confirmed from the start."""
    created = record["created_at"]
    return {
        "id": record["id"],
        "aud": record["aud"],
        "role": record["role"],
        "email": record["email"],
        "email_confirmed_at": created,
        "phone": "",
        "confirmed_at": created,
        "last_sign_in_at": last_sign_in_at,
        "app_metadata": record["app_metadata"],
        "user_metadata": record["user_metadata"],
        "identities": [],
        "created_at": created,
        "updated_at": record["updated_at"],
        "is_anonymous": record["is_anonymous"],
    }


def _user_record(dsn: str, user_id: str) -> dict[str, Any] | None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "select id::text, coalesce(aud, 'authenticated'), coalesce(role, 'authenticated'),"
            " email, coalesce(raw_app_meta_data, '{}'), coalesce(raw_user_meta_data, '{}'),"
            " is_anonymous, to_json(created_at)#>>'{}', to_json(updated_at)#>>'{}'"
            " from auth.users where id = %s",
            (user_id,),
        ).fetchone()
    if row is None:
        return None
    keys = ("id", "aud", "role", "email", "app_metadata", "user_metadata", "is_anonymous")
    return dict(zip((*keys, "created_at", "updated_at"), row, strict=True))


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Session:
    user_id: str
    email: str
    signed_in_at: str
    ended: bool = False
    refresh_tokens: list[str] = field(default_factory=list)  # the last one is current


@dataclass
class _RefreshToken:
    session_id: str
    parent: str | None
    used_at: float | None = None  # monotonic time of its use; None while current


@dataclass(eq=False)
class DevAuth:
    """Sessions and rotating refresh tokens, kept in memory; thread-safe."""

    dsn: str
    _: KW_ONLY
    secret: str
    issuer: str
    lifetime_s: int = TOKEN_LIFETIME_S
    reuse_interval_s: float = REFRESH_TOKEN_REUSE_INTERVAL_S

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._refresh: dict[str, _RefreshToken] = {}

    # --- grants ---------------------------------------------------------------------------

    def token(self, grant: str | None, body: Any, api_version: str | None) -> Answer:
        if grant == "password":
            return self._password(body, api_version)
        if grant == "refresh_token":
            return self._refresh_grant(body, api_version)
        return _error(400, "validation_failed", "unsupported_grant_type", api_version)

    def _password(self, body: Any, api_version: str | None) -> Answer:
        email = body.get("email") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(email, str) or not isinstance(password, str):
            return _error(400, "validation_failed", "missing email or phone", api_version)
        user = devdb.check_password(self.dsn, email.strip().lower(), password)
        if user is None:
            return _error(400, "invalid_credentials", "Invalid login credentials", api_version)
        record = _user_record(self.dsn, user.id)
        if record is None:
            return _error(400, "invalid_credentials", "Invalid login credentials", api_version)
        session_id = str(uuid.uuid4())
        with self._lock:
            self._sessions[session_id] = _Session(user.id, user.email, _now_iso())
            return 200, self._issue(session_id, record), []

    def _refresh_grant(self, body: Any, api_version: str | None) -> Answer:
        presented = body.get("refresh_token") if isinstance(body, dict) else None
        if not isinstance(presented, str) or not presented:
            return _error(400, "validation_failed", "refresh_token required", api_version)
        with self._lock:
            known = self._refresh.get(presented)
            session = self._sessions.get(known.session_id) if known else None
            if known is None or session is None or session.ended:
                return _error(
                    400,
                    "refresh_token_not_found",
                    "Invalid Refresh Token: Refresh Token Not Found",
                    api_version,
                )
        # Read outside the lock: the user's row for the answer (the database may be slow).
        record = _user_record(self.dsn, session.user_id)
        with self._lock:
            if session.ended or record is None:
                return _error(
                    400,
                    "refresh_token_not_found",
                    "Invalid Refresh Token: Refresh Token Not Found",
                    api_version,
                )
            current = session.refresh_tokens[-1]
            if known.used_at is None:
                known.used_at = time.monotonic()
                return 200, self._issue(known.session_id, record, parent=presented), []
            if self._refresh[current].parent == presented:
                # Its next token is still current: the client missed that answer; give it again.
                return 200, self._issue(known.session_id, record, refresh=current), []
            if time.monotonic() - known.used_at < self.reuse_interval_s:
                return 200, self._issue(known.session_id, record, parent=presented), []
            session.ended = True  # a replayed token: end the session it belongs to
            return _error(
                400,
                "refresh_token_already_used",
                "Invalid Refresh Token: Already Used",
                api_version,
            )

    def _issue(
        self,
        session_id: str,
        record: dict[str, Any],
        *,
        parent: str | None = None,
        refresh: str | None = None,
    ) -> dict[str, Any]:
        """A new access token for a live session, with ``refresh`` as its refresh token or a
        new one made current (the lock held)."""
        session = self._sessions[session_id]
        access, expires_at = issue_access_token(
            user_id=session.user_id,
            email=session.email,
            secret=self.secret,
            issuer=self.issuer,
            lifetime_s=self.lifetime_s,
            session_id=session_id,
        )
        if refresh is None:
            refresh = secrets.token_urlsafe(24)
            self._refresh[refresh] = _RefreshToken(session_id, parent)
            session.refresh_tokens.append(refresh)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.lifetime_s,
            "expires_at": expires_at,
            "refresh_token": refresh,
            "user": user_json(record, session.signed_in_at),
        }

    # --- the signed-in user ----------------------------------------------------------------

    def user(self, authorization: str | None, api_version: str | None) -> Answer:
        claims, refused = self._caller(authorization, api_version)
        if refused:
            return refused
        session = self._live_session(claims)
        if session is None:
            return _error(
                403,
                "session_not_found",
                "Session from session_id claim in JWT does not exist",
                api_version,
            )
        record = _user_record(self.dsn, session.user_id)
        if record is None:
            return _error(
                404, "user_not_found", "User from sub claim in JWT does not exist", api_version
            )
        return 200, user_json(record, session.signed_in_at), []

    def logout(self, authorization: str | None, scope: str, api_version: str | None) -> Answer:
        if scope not in ("global", "local", "others"):
            return _error(400, "validation_failed", "Unsupported logout scope", api_version)
        claims, refused = self._caller(authorization, api_version)
        if refused:
            return refused
        current = claims.get("session_id")
        with self._lock:
            session = self._sessions.get(current) if isinstance(current, str) else None
            if session is None or session.ended:
                return _error(
                    403,
                    "session_not_found",
                    "Session from session_id claim in JWT does not exist",
                    api_version,
                )
            for session_id, other in self._sessions.items():
                if other.user_id != session.user_id:
                    continue
                if (
                    (scope == "local" and session_id == current)
                    or (scope == "others" and session_id != current)
                    or scope == "global"
                ):
                    other.ended = True
        return 204, None, []

    def _caller(
        self, authorization: str | None, api_version: str | None
    ) -> tuple[dict[str, Any], Answer | None]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return {}, _error(
                401, "no_authorization", "This endpoint requires a valid Bearer token", api_version
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                self.secret,
                algorithms=["HS256"],
                audience="authenticated",
                issuer=self.issuer,
            )
        except jwt.ExpiredSignatureError:
            return {}, _error(
                403,
                "bad_jwt",
                "invalid JWT: unable to parse or verify signature, token has invalid claims:"
                " token is expired",
                api_version,
            )
        except jwt.InvalidTokenError:
            return {}, _error(
                403,
                "bad_jwt",
                "invalid JWT: unable to parse or verify signature",
                api_version,
            )
        return claims, None

    def _live_session(self, claims: dict[str, Any]) -> _Session | None:
        session_id = claims.get("session_id")
        with self._lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
            return session if session is not None and not session.ended else None


def _error(status: int, code: str, message: str, api_version: str | None) -> Answer:
    """Supabase Auth's error body: the 2024-01-01 shape when the client asked for it."""
    version = (api_version or "").strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) and version >= API_VERSION:
        return status, {"code": code, "message": message}, [(API_VERSION_HEADER, API_VERSION)]
    return status, {"code": status, "error_code": code, "msg": message}, []
