"""The project's published signing keys (its JWKS), fetched when needed and cached.

The JWKS is cached for ``ttl_s`` seconds (Supabase's advice: no more than 10 minutes) and
refetched early when a token names an unknown ``kid``. A fetch follows a successful one
after ``min_refetch_s`` seconds at the earliest, so a flood of made-up ``kid`` values costs at
most one request per interval. A failed fetch is logged and tried again after 1 second, then
2, 4, ... while it keeps failing, ``min_refetch_s`` at most: a blip at a container's first
request refuses asymmetric tokens for a second, not for the whole interval, and an endpoint
that is down gets a handful of requests, then one per interval. A failed fetch never serves
keys past their TTL: tokens that need them are rejected until a fetch succeeds.

Only ES256 (P-256) and RS256 (at least 2048 bits) public keys for verifying signatures are
kept. PyJWT is imported with the first document parsed, the layer's HTTP client with the first
fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jwt

    from wa_gateway.http_client import Pool

JWKS_FETCH_TIMEOUT_S = (2.0, 3.0)
"""Connect and read timeouts of the default JWKS fetch."""

_MIN_RSA_BITS = 2048

_http: Pool | None = None
"""The default fetch's connection, kept for the container's life."""


def fetch_json_over_http(url: str) -> Any:
    """GET ``url`` and return its JSON body; raise on a network error, a non-2xx answer (a
    redirect too: none is followed) or a body that is not JSON."""
    global _http
    from wa_gateway.http_client import Pool  # here: importing this module stays cheap

    if _http is None:
        _http = Pool(maxsize=1)
    answer = _http.request(
        "GET", url, timeout=JWKS_FETCH_TIMEOUT_S, headers={"Accept": "application/json"}
    )
    if not 200 <= answer.status < 300:
        raise ValueError(f"the JWKS endpoint answered {answer.status}")
    return answer.json()


def _algorithm_for(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a published JWK may verify, or None if it is unusable."""
    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") == "P-256":
        expected = "ES256"
    elif kty == "RSA":
        expected = "RS256"
    else:
        return None
    if jwk.get("alg", expected) != expected:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    if "d" in jwk:  # a private key has no business in a public key set
        return None
    return expected


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """Map ``kid`` to key for every usable ES256/RS256 key of a JWKS document.

    Keys without a ``kid``, of another type or algorithm, not for verifying
    signatures, or RSA keys under 2048 bits are skipped; of two keys with the
    same ``kid`` the first wins. Raises ValueError if the document is not a
    JWKS at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    import jwt

    keys: dict[str, jwt.PyJWK] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        algorithm = _algorithm_for(jwk)
        if not isinstance(kid, str) or not kid or kid in keys or algorithm is None:
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if algorithm == "RS256" and key.key.key_size < _MIN_RSA_BITS:
            continue
        keys[kid] = key
    return keys


class JwksCache:
    """The keys published at ``url``, by ``kid``; thread-safe.

    ``fetch_json``: ``url -> parsed JSON``. ``clock``: seconds since the epoch.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: int,
        min_refetch_s: int,
        fetch_json: Callable[[str], Any],
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self._ttl = ttl_s
        self._min_refetch = min_refetch_s
        self._fetch_json = fetch_json
        self._clock = clock
        self._lock = threading.Lock()
        # (keys by kid, time fetched), replaced as a whole so readers need no lock.
        self._jwks: tuple[dict[str, jwt.PyJWK], float] | None = None
        self._last_fetch_attempt: float | None = None
        self._failures = 0  # fetches failed in a row

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``, fetching the JWKS if stale or ``kid`` is unknown; None if
        there is no such key or no fresh JWKS to look in."""
        keys, fresh = self._cached_keys(self._clock())
        if fresh and kid in keys:
            return keys[kid]
        with self._lock:
            now = self._clock()
            keys, fresh = self._cached_keys(now)
            if fresh and kid in keys:  # another thread fetched it meanwhile
                return keys[kid]
            last = self._last_fetch_attempt
            if last is not None and now - last < self._refetch_after():
                return keys.get(kid) if fresh else None
            self._last_fetch_attempt = now
            try:
                keys = parse_jwks(self._fetch_json(self.url))
            except Exception as exc:  # any fetch failure means "no key", never a crash
                self._failures += 1
                _log_failure(exc, self._failures)
                return None
            self._failures = 0
            self._jwks = (keys, now)
            return keys.get(kid)

    def _refetch_after(self) -> float:
        """Seconds between the last fetch and the next: ``min_refetch_s`` after a success; after
        failures in a row, 1, 2, 4, ... up to ``min_refetch_s``."""
        if not self._failures:
            return self._min_refetch
        return min(self._min_refetch, 2 ** (self._failures - 1))

    def _cached_keys(self, now: float) -> tuple[dict[str, jwt.PyJWK], bool]:
        """The cached keys and whether they are still within their TTL."""
        cached = self._jwks
        if cached is None:
            return {}, False
        keys, fetched_at = cached
        return keys, 0 <= now - fetched_at < self._ttl


def _log_failure(exc: Exception, failures: int) -> None:
    """A warning an operator can act on: the JWKS endpoint's answer or the network's failure
    (no secret: the JWKS and its URL are public)."""
    from wa_gateway.observability import logger

    logger.warning(
        "JWKS fetch failed: asymmetric tokens are refused until one succeeds",
        extra={"reason": f"{type(exc).__name__}: {exc}", "failures_in_a_row": failures},
    )
