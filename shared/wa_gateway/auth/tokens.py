"""Verify Supabase access tokens locally, without a network call per request.

``TokenVerifier.verify`` turns the raw ``Authorization`` bearer token into a
``Caller`` or raises one of four errors from ``wa_gateway.errors``:

* ``MissingToken`` when there is no token at all;
* ``AnonymousUser`` when the token is a valid one of an anonymous sign-in
  (``is_anonymous: true``) and anonymous users are not allowed (the default);
* ``TokenExpired`` when the token is otherwise valid but past its ``exp``;
* ``InvalidToken`` for every other failure, always with the default message,
  so a caller never learns which check failed.

Signatures:

* HS256 is verified with the configured shared secrets (the legacy Supabase
  JWT secret; two at once during a rotation). Without a secret, HS256 tokens
  are rejected.
* ES256 and RS256 are verified with the public key from the project's JWKS
  (``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``) whose ``kid`` matches the
  token header. The key decides the algorithm: the header's ``alg`` must equal
  the algorithm the key was published for.
* Anything else (``none``, other algorithms, unknown ``kid``) is rejected.

How the JWKS is fetched and cached is in ``wa_gateway.auth.jwks``.

Keep one verifier per process (module level) so the cache survives warm
invocations. HS256 is checked with the standard library; PyJWT (and with it
``cryptography``) is imported only for the first ES256/RS256 token, and the
layer's HTTP client only when the JWKS is first fetched: a function's cold start
pays for neither unless it needs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeGuard

from wa_gateway.auth.caller import Caller
from wa_gateway.auth.jwks import JwksCache, fetch_json_over_http
from wa_gateway.errors import AnonymousUser, InvalidToken, MissingToken, TokenExpired

if TYPE_CHECKING:
    import jwt

MAX_TOKEN_LENGTH = 8192
"""Longest token accepted, in characters; longer input is rejected unparsed."""

MIN_HS256_SECRET_BYTES = 32
"""Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size)."""

_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BEARER = re.compile(r"\s*bearer[ \t]+(\S+)\s*", re.IGNORECASE)

_USER_ROLE = "authenticated"
_ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})


@cache
def _pyjwt() -> jwt.PyJWT:
    """PyJWT, for ES256/RS256 signatures only: every claim is checked by this module,
    against its own clock."""
    import jwt

    return jwt.PyJWT(
        options={
            "verify_signature": True,
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
            "verify_iss": False,
            "verify_sub": False,
            "verify_jti": False,
            "enforce_minimum_key_length": True,
        }
    )


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_object(part: str) -> dict[str, Any]:
    value = json.loads(_b64url_decode(part))
    if not isinstance(value, dict):
        raise InvalidToken()
    return value


def bearer_token(authorization_header: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value.

    The scheme is case-insensitive and surrounding whitespace is ignored.
    Returns ``None`` when the header is absent, empty, uses another scheme or
    is not exactly a scheme and one token, so ``verify`` reports MissingToken.
    """
    if not authorization_header:
        return None
    match = _BEARER.fullmatch(authorization_header)
    return match.group(1) if match else None


def _is_number(value: Any) -> TypeGuard[float]:
    """True for a finite int or float (a NumericDate); False for bools and the rest."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenVerifier:
    """Verifies Supabase access tokens; thread-safe, with a shared JWKS cache.

    ``hs256_secrets``: shared secrets for HS256 (each at least 32 bytes).
    ``jwks_url``: where the ES256/RS256 public keys are published.
    ``issuer``: when set, ``iss`` must equal it (``<SUPABASE_URL>/auth/v1``).
    ``audience``: a value ``aud`` must be or contain.
    ``allow_anonymous``: accept the tokens of anonymous sign-ins (``is_anonymous: true``).
    ``leeway_s``: clock skew allowed on ``exp``, ``nbf`` and ``iat``.
    ``jwks_ttl_s`` / ``jwks_min_refetch_s``: how long the JWKS is kept, how often it may be
    fetched at most (see ``wa_gateway.auth.jwks``).
    ``fetch_json``: ``url -> parsed JSON``; defaults to a GET with the layer's HTTP client.
    ``clock``: seconds since the epoch; used for the claims and the cache.

    Raises ValueError when configured with no way to verify anything, a secret
    that is too short, or negative durations.
    """

    def __init__(
        self,
        *,
        hs256_secrets: Sequence[str] = (),
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str = _USER_ROLE,
        allow_anonymous: bool = False,
        leeway_s: int = 30,
        jwks_ttl_s: int = 600,
        jwks_min_refetch_s: int = 30,
        fetch_json: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(hs256_secrets, str | bytes):
            raise ValueError("hs256_secrets must be a list of secrets, not a single string")
        secrets = tuple(hs256_secrets)
        for secret in secrets:
            if not isinstance(secret, str):
                raise ValueError("each HS256 secret must be a string")
            if len(secret.encode("utf-8")) < MIN_HS256_SECRET_BYTES:
                raise ValueError(f"an HS256 secret is shorter than {MIN_HS256_SECRET_BYTES} bytes")
        if not secrets and not jwks_url:
            raise ValueError("configure hs256_secrets, jwks_url or both")
        if leeway_s < 0 or jwks_ttl_s <= 0 or jwks_min_refetch_s < 0:
            raise ValueError("leeway_s and jwks_min_refetch_s must be >= 0, jwks_ttl_s > 0")

        self._secrets = secrets
        self._issuer = issuer
        self._audience = audience
        self._allow_anonymous = allow_anonymous
        self._leeway = leeway_s
        self._clock = clock
        self._jwks = (
            JwksCache(
                jwks_url,
                ttl_s=jwks_ttl_s,
                min_refetch_s=jwks_min_refetch_s,
                fetch_json=fetch_json or fetch_json_over_http,
                clock=clock,
            )
            if jwks_url
            else None
        )

    def __repr__(self) -> str:
        jwks_url = self._jwks.url if self._jwks else None
        return (
            f"TokenVerifier(hs256_secrets=<{len(self._secrets)}>, jwks_url={jwks_url!r}, "
            f"issuer={self._issuer!r}, audience={self._audience!r})"
        )

    def verify(self, token: str | None) -> Caller:
        """Verify ``token`` and return its caller.

        Raises MissingToken if ``token`` is None or blank, AnonymousUser if it is
        an anonymous sign-in's (expired or not) and those are not allowed,
        TokenExpired if it is valid in every respect but expired (beyond the leeway), and
        InvalidToken (default message) for anything else, including malformed
        input and an unreachable JWKS endpoint.
        """
        if token is None or (isinstance(token, str) and not token.strip()):
            raise MissingToken()
        try:
            return self._verify(token)
        except (InvalidToken, TokenExpired, AnonymousUser):
            raise
        except Exception:  # malformed input must never surface as another error type
            raise InvalidToken() from None

    def _verify(self, token: str) -> Caller:
        if (
            not isinstance(token, str)
            or len(token) > MAX_TOKEN_LENGTH
            or not token.isascii()
            or not _TOKEN_SHAPE.fullmatch(token)
        ):
            raise InvalidToken()
        try:
            header = _json_object(token.split(".", 1)[0])
        except (ValueError, binascii.Error):
            raise InvalidToken() from None
        if "crit" in header or "b64" in header:  # extensions we don't implement (RFC 7515 4.1.11)
            raise InvalidToken()
        if "kid" in header and not isinstance(header["kid"], str):
            raise InvalidToken()
        algorithm = header.get("alg")
        if algorithm == "HS256":
            claims = self._decode_hs256(token)
        elif algorithm in _ASYMMETRIC_ALGORITHMS:
            claims = self._decode_with_jwk(token, algorithm, header.get("kid"))
        else:
            raise InvalidToken()
        user_id = self._check_claims(claims)
        return Caller(user_id=user_id, claims=claims, token=token)

    def _decode_hs256(self, token: str) -> dict[str, Any]:
        """Claims of an HS256 token signed with one of the secrets (compared in constant
        time, every secret tried, so timing says nothing about which one matched)."""
        signing_input, _, signature_part = token.rpartition(".")
        try:
            signature = _b64url_decode(signature_part)
        except (ValueError, binascii.Error):
            raise InvalidToken() from None
        matched = False
        for secret in self._secrets:
            expected = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
            matched |= hmac.compare_digest(signature, expected)
        if not matched:
            raise InvalidToken()
        try:
            return _json_object(signing_input.split(".", 1)[1])
        except (ValueError, binascii.Error):
            raise InvalidToken() from None

    def _decode_with_jwk(self, token: str, algorithm: str, kid: Any) -> dict[str, Any]:
        """Claims of an ES256/RS256 token signed with the JWKS key named by ``kid``."""
        if self._jwks is None or not isinstance(kid, str) or not kid:
            raise InvalidToken()
        key = self._jwks.key_for(kid)
        if key is None or key.algorithm_name != algorithm:
            raise InvalidToken()
        import jwt

        try:
            claims: dict[str, Any] = _pyjwt().decode(token, key, algorithms=[key.algorithm_name])
        except jwt.PyJWTError:
            raise InvalidToken() from None
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> str:
        """Check every claim; return the canonical user id.

        Expiry is checked last so that TokenExpired means "valid, but refresh it".
        """
        now = self._clock()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise InvalidToken()
        for name in ("nbf", "iat"):
            if name in claims:
                value = claims[name]
                if not _is_number(value) or value > now + self._leeway:
                    raise InvalidToken()
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self._audience not in audiences:
            raise InvalidToken()
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise InvalidToken()
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _UUID.fullmatch(sub):
            raise InvalidToken()
        if claims.get("role") != _USER_ROLE:
            raise InvalidToken()
        anonymous = claims.get("is_anonymous", False)
        if not isinstance(anonymous, bool):
            raise InvalidToken()
        if anonymous and not self._allow_anonymous:
            raise AnonymousUser()
        if exp <= now - self._leeway:
            raise TokenExpired()
        return sub.lower()
