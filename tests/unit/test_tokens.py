"""TokenVerifier: local verification of Supabase access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from local.threaded_server import ThreadedServer
from tests.stub_servers import StubHandler
from wa_gateway.auth.caller import Caller
from wa_gateway.auth.tokens import MAX_TOKEN_LENGTH, TokenVerifier, bearer_token
from wa_gateway.errors import AnonymousUser, ApiError, InvalidToken, MissingToken, TokenExpired

SECRET = "legacy-jwt-secret-0123456789-abcdefghijklmnop"
SECRET_NEXT = "rotated-jwt-secret-9876543210-zyxwvutsrqponml"
ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1"
USER_ID = "6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f"
NOW = 1_800_000_000.0
JWKS_PATH = "/auth/v1/.well-known/jwks.json"

# Keys are generated once for the whole module (RSA generation is the slow part).
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_KEY_2 = ec.generate_private_key(ec.SECP256R1())


class Clock:
    """A settable clock, so cache and claim timing need no sleeping."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS document and counting requests."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.requests = 0
        server = self

        class Handler(StubHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                body = (
                    server.document
                    if isinstance(server.document, bytes)
                    else json.dumps(server.document).encode()
                )
                self.answer(server.status, body)

        self.httpd = ThreadedServer(Handler).start()
        self.url = f"{self.httpd.url}{JWKS_PATH}"

    def reset(self, *jwks: dict[str, Any]) -> None:
        self.document = {"keys": list(jwks)}
        self.status = 200
        self.requests = 0

    def stop(self) -> None:
        self.httpd.stop()


def changed(fields: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with ``changes`` made: a name given None is removed, any other is set."""
    return {name: value for name, value in (fields | changes).items() if value is not None}


def public_jwk(private_key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    """The JWK Supabase would publish for ``private_key``."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        jwk["alg"] = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        jwk["alg"] = "ES256"
    jwk.update(kid=kid, use="sig", key_ops=["verify"], ext=True)
    return changed(jwk, extra)


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    jwks_server.reset(public_jwk(EC_KEY, "ec-1"), public_jwk(RSA_KEY, "rsa-1"))
    return jwks_server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hs_verifier(clock: Clock) -> TokenVerifier:
    return TokenVerifier(hs256_secrets=[SECRET, SECRET_NEXT], issuer=ISSUER, clock=clock)


@pytest.fixture
def jwks_verifier(jwks: JwksServer, clock: Clock) -> TokenVerifier:
    return TokenVerifier(hs256_secrets=[SECRET], jwks_url=jwks.url, issuer=ISSUER, clock=clock)


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid Supabase user access token at ``NOW``; None removes a claim."""
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "authenticated",
        "exp": int(NOW) + 3600,
        "iat": int(NOW) - 10,
        "sub": USER_ID,
        "email": "user@example.com",
        "phone": "",
        "role": "authenticated",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    return changed(payload, overrides)


def hs256(payload: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def es256(payload: dict[str, Any], kid: str = "ec-1", key: Any = EC_KEY) -> str:
    return jwt.encode(payload, key, algorithm="ES256", headers={"kid": kid})


def rs256(payload: dict[str, Any], kid: str = "rsa-1", key: Any = RSA_KEY) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_built(header: dict[str, Any], payload: Any, hmac_key: bytes | None = None) -> str:
    """A token built without PyJWT; HMAC-SHA256 signed with ``hmac_key`` if given.

    ``payload`` is JSON-encoded unless it is already bytes.
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    signature = (
        hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
        if hmac_key is not None
        else b"not-a-signature"
    )
    return f"{signing_input}.{b64(signature)}"


def assert_invalid(verifier: TokenVerifier, token: Any) -> InvalidToken:
    """``verify`` raises exactly InvalidToken with the default message."""
    with pytest.raises(ApiError) as excinfo:
        verifier.verify(token)
    error = excinfo.value
    assert type(error) is InvalidToken
    assert error.message == InvalidToken.default_message
    assert str(error) == InvalidToken.default_message
    return error


# --- HS256 -----------------------------------------------------------------------------


def test_valid_hs256_token(hs_verifier: TokenVerifier) -> None:
    token = hs256(claims())
    caller = hs_verifier.verify(token)
    assert isinstance(caller, Caller)
    assert caller.user_id == USER_ID
    assert caller.token == token
    assert caller.claims["email"] == "user@example.com"
    assert caller.claims["role"] == "authenticated"


def test_second_rotation_secret(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(hs256(claims(), secret=SECRET_NEXT)).user_id == USER_ID


def test_wrong_secret(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, hs256(claims(), secret="some-other-secret-of-enough-length-1234"))


def test_expired(hs_verifier: TokenVerifier) -> None:
    with pytest.raises(TokenExpired) as excinfo:
        hs_verifier.verify(hs256(claims(exp=int(NOW) - 31)))
    assert excinfo.value.message == TokenExpired.default_message


def test_expired_within_leeway_passes(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(hs256(claims(exp=int(NOW) - 20))).user_id == USER_ID


def test_expiry_follows_the_clock(hs_verifier: TokenVerifier, clock: Clock) -> None:
    token = hs256(claims(exp=int(NOW) + 60))
    hs_verifier.verify(token)
    clock.advance(60 + 30)
    with pytest.raises(TokenExpired):
        hs_verifier.verify(token)


def test_expired_but_otherwise_invalid_is_invalid_not_expired(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, hs256(claims(exp=int(NOW) - 3600, role="anon")))
    assert_invalid(hs_verifier, hs256(claims(exp=int(NOW) - 3600), secret="x" * 40))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid(hs_verifier: TokenVerifier, claim: str) -> None:
    assert_invalid(hs_verifier, hs256(claims(**{claim: int(NOW) + 60})))
    # within the 30 s leeway
    assert hs_verifier.verify(hs256(claims(**{claim: int(NOW) + 20}))).user_id == USER_ID


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_malformed_time_claim(hs_verifier: TokenVerifier, claim: str) -> None:
    assert_invalid(hs_verifier, hs256(claims(**{claim: "yesterday"})))


@pytest.mark.parametrize("exp", ["9999999999", True, [1], {"t": 1}])
def test_malformed_exp(hs_verifier: TokenVerifier, exp: Any) -> None:
    assert_invalid(hs_verifier, hs256(claims(exp=exp)))


def test_missing_exp(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, hs256(claims(exp=None)))


@pytest.mark.parametrize("aud", ["anon", ["other"], 123, [123], {"authenticated": 1}])
def test_wrong_aud(hs_verifier: TokenVerifier, aud: Any) -> None:
    assert_invalid(hs_verifier, hs256(claims(aud=aud)))


def test_missing_aud(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, hs256(claims(aud=None)))


def test_aud_list_containing_authenticated_passes(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(hs256(claims(aud=["x", "authenticated"]))).user_id == USER_ID


def test_wrong_iss(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, hs256(claims(iss="https://other.supabase.co/auth/v1")))
    assert_invalid(hs_verifier, hs256(claims(iss=None)))


def test_iss_not_checked_when_not_configured(clock: Clock) -> None:
    verifier = TokenVerifier(hs256_secrets=[SECRET], clock=clock)
    assert verifier.verify(hs256(claims(iss="anything"))).user_id == USER_ID


def test_tampered_payload(hs_verifier: TokenVerifier) -> None:
    header, _, signature = hs256(claims()).split(".")
    forged = b64(json.dumps(claims(sub=str(uuid.uuid4()))).encode())
    assert_invalid(hs_verifier, f"{header}.{forged}.{signature}")


def test_tampered_signature(hs_verifier: TokenVerifier) -> None:
    token = hs256(claims())
    flipped = "A" if token[-2] != "A" else "B"
    assert_invalid(hs_verifier, token[:-2] + flipped + token[-1])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none(hs_verifier: TokenVerifier, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT"}
    unsigned = hand_built(header, claims()).rsplit(".", 1)[0]
    assert_invalid(hs_verifier, unsigned + ".")
    assert_invalid(hs_verifier, hand_built(header, claims()))
    assert_invalid(hs_verifier, hand_built(header, claims(), hmac_key=SECRET.encode()))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_rejected(hs_verifier: TokenVerifier, alg: str) -> None:
    assert_invalid(hs_verifier, jwt.encode(claims(), SECRET + SECRET, algorithm=alg))


def test_hs256_rejected_without_secret(jwks: JwksServer, clock: Clock) -> None:
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    assert_invalid(verifier, hs256(claims()))
    assert verifier.verify(es256(claims())).user_id == USER_ID


@pytest.mark.parametrize(
    "role",
    ["anon", "service_role"],
)
def test_legacy_api_keys_rejected(hs_verifier: TokenVerifier, role: str) -> None:
    api_key = {
        "iss": "supabase",
        "ref": "abcdefghijklmnop",
        "role": role,
        "iat": int(NOW) - 86400,
        "exp": int(NOW) + 10 * 365 * 86400,
    }
    assert_invalid(hs_verifier, hs256(api_key))
    # and without the issuer check too
    assert_invalid(TokenVerifier(hs256_secrets=[SECRET], clock=Clock()), hs256(api_key))


@pytest.mark.parametrize("role", ["anon", "service_role", "postgres", "", None])
def test_user_token_with_other_role(hs_verifier: TokenVerifier, role: str | None) -> None:
    assert_invalid(hs_verifier, hs256(claims(role=role)))


@pytest.mark.parametrize(
    "sub",
    [
        "not-a-uuid",
        "",
        USER_ID.replace("-", ""),
        "{" + USER_ID + "}",
        "urn:uuid:" + USER_ID,
        USER_ID + "\n",
        USER_ID[:-1] + "g",
        123,
        [USER_ID],
        None,
    ],
)
def test_sub_not_a_uuid(hs_verifier: TokenVerifier, sub: Any) -> None:
    assert_invalid(hs_verifier, hs256(claims(sub=sub)))


def test_sub_is_normalised_to_lower_case(hs_verifier: TokenVerifier) -> None:
    assert hs_verifier.verify(hs256(claims(sub=USER_ID.upper()))).user_id == USER_ID


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "   ", "\t\n"])
def test_missing_token(hs_verifier: TokenVerifier, token: str | None) -> None:
    with pytest.raises(MissingToken):
        hs_verifier.verify(token)


def _garbage() -> list[Any]:
    valid = hs256(claims())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return [
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "..",
        valid + ".",
        valid + ".x",
        "." + valid,
        " " + valid,
        valid.replace(".", ". ", 1),
        "Bearer " + valid,
        "ä.ö.ü",
        valid[:-3] + "é",
        "\x00" * 20,
        "x" * (MAX_TOKEN_LENGTH + 1),
        valid + "A" * (MAX_TOKEN_LENGTH + 1),
        "a." * 10_000 + "a",
        "eyJ" * 5000,
        valid.replace("-", "+").replace("_", "/") + "==",
        f"{b64(b'not json')}.{b64(b'{}')}.{b64(b'sig')}",
        f"{b64(b'[]')}.{b64(b'{}')}.{b64(b'sig')}",
        f"{b64(b'null')}.{b64(b'{}')}.{b64(b'sig')}",
        f"{b64(json.dumps({'alg': 7}).encode())}.{b64(b'{}')}.{b64(b'sig')}",
        f"{b64(json.dumps({'alg': ['HS256']}).encode())}.{b64(b'{}')}.{b64(b'sig')}",
        f"{header}.%%%.{b64(b'sig')}",
        f"{header}.{b64(b'{}')}.{b64(b'sig')}",
        hand_built({"alg": "HS256"}, b"not json", hmac_key=SECRET.encode()),
        hand_built({"alg": "HS256"}, b"[1, 2]", hmac_key=SECRET.encode()),
        hand_built({"alg": "HS256"}, b"[" * 3000, hmac_key=SECRET.encode()),
        hand_built(
            {"alg": "HS256", "crit": ["exp"]}, claims(), hmac_key=SECRET.encode()
        ),  # unsupported critical header
        hand_built(
            {"alg": "HS256", "b64": False, "crit": ["b64"]}, claims(), hmac_key=SECRET.encode()
        ),
        hand_built({"alg": "HS256", "kid": 5}, claims(), hmac_key=SECRET.encode()),
        hand_built(
            {"alg": "HS256"},
            json.dumps(claims(exp=None)).replace("{", '{"exp": NaN, ', 1).encode(),
            hmac_key=SECRET.encode(),
        ),
        hand_built(
            {"alg": "HS256"},
            json.dumps(claims(exp=None)).replace("{", '{"exp": 1e400, ', 1).encode(),
            hmac_key=SECRET.encode(),
        ),
        b"bytes.are.not-a-token",
        12345,
        ["a", "b"],
    ]


@pytest.mark.parametrize("token", _garbage())
def test_garbage_is_invalid_token(hs_verifier: TokenVerifier, token: Any) -> None:
    assert_invalid(hs_verifier, token)


def test_garbage_is_invalid_token_with_jwks(jwks_verifier: TokenVerifier) -> None:
    for token in _garbage():
        assert_invalid(jwks_verifier, token)


# --- ES256 / RS256 from a JWKS over real HTTP --------------------------------------------


def test_es256_from_jwks(jwks_verifier: TokenVerifier, jwks: JwksServer) -> None:
    token = es256(claims())
    caller = jwks_verifier.verify(token)
    assert caller.user_id == USER_ID
    assert caller.token == token
    assert jwks.requests == 1


def test_rs256_from_jwks(jwks_verifier: TokenVerifier, jwks: JwksServer) -> None:
    assert jwks_verifier.verify(rs256(claims())).user_id == USER_ID
    assert jwks.requests == 1


def test_jwks_is_cached_until_ttl(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    for _ in range(5):
        jwks_verifier.verify(es256(claims()))
        jwks_verifier.verify(rs256(claims()))
    assert jwks.requests == 1
    clock.advance(599)
    jwks_verifier.verify(es256(claims(exp=int(clock.now) + 60)))
    assert jwks.requests == 1
    clock.advance(2)
    jwks_verifier.verify(es256(claims(exp=int(clock.now) + 60)))
    assert jwks.requests == 2


def test_asymmetric_token_checks_claims_too(jwks_verifier: TokenVerifier) -> None:
    with pytest.raises(TokenExpired):
        jwks_verifier.verify(es256(claims(exp=int(NOW) - 60)))
    assert_invalid(jwks_verifier, es256(claims(aud="anon")))
    assert_invalid(jwks_verifier, rs256(claims(role="service_role")))
    assert_invalid(jwks_verifier, rs256(claims(iss="https://evil.example/auth/v1")))


def test_asymmetric_token_signed_by_other_key(jwks_verifier: TokenVerifier) -> None:
    assert_invalid(jwks_verifier, es256(claims(), key=EC_KEY_2))
    assert_invalid(jwks_verifier, rs256(claims(), key=RSA_KEY_2))


def test_tampered_asymmetric_payload(jwks_verifier: TokenVerifier) -> None:
    header, _, signature = es256(claims()).split(".")
    forged = b64(json.dumps(claims(sub=str(uuid.uuid4()))).encode())
    assert_invalid(jwks_verifier, f"{header}.{forged}.{signature}")


def test_asymmetric_token_without_kid(jwks_verifier: TokenVerifier) -> None:
    assert_invalid(jwks_verifier, jwt.encode(claims(), EC_KEY, algorithm="ES256"))


def test_asymmetric_token_without_jwks_configured(hs_verifier: TokenVerifier) -> None:
    assert_invalid(hs_verifier, es256(claims()))
    assert_invalid(hs_verifier, rs256(claims()))


def test_unknown_kid_refetches_once_then_rate_limited(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    jwks_verifier.verify(es256(claims()))  # warm the cache
    assert jwks.requests == 1
    clock.advance(31)
    assert_invalid(jwks_verifier, es256(claims(), kid="unknown-1"))
    assert jwks.requests == 2  # refetched once

    for n in range(50):  # a flood of made-up kids within the refetch interval
        assert_invalid(jwks_verifier, es256(claims(), kid=f"random-{n}"))
    assert jwks.requests == 2
    assert jwks_verifier.verify(es256(claims())).user_id == USER_ID  # known keys still work
    assert jwks.requests == 2

    clock.advance(31)
    assert_invalid(jwks_verifier, es256(claims(), kid="unknown-2"))
    assert jwks.requests == 3


def test_unknown_kid_on_cold_cache_fetches_once(
    jwks_verifier: TokenVerifier, jwks: JwksServer
) -> None:
    assert_invalid(jwks_verifier, es256(claims(), kid="unknown"))
    assert_invalid(jwks_verifier, es256(claims(), kid="unknown"))
    assert jwks.requests == 1


def test_key_added_later_is_picked_up(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    jwks.reset(public_jwk(EC_KEY, "ec-1"))
    jwks_verifier.verify(es256(claims()))
    new_token = es256(claims(exp=int(NOW) + 3600), kid="ec-2", key=EC_KEY_2)
    assert_invalid(jwks_verifier, new_token)  # not published yet
    jwks.document["keys"].append(public_jwk(EC_KEY_2, "ec-2"))
    clock.advance(31)
    assert jwks_verifier.verify(new_token).user_id == USER_ID
    assert jwks.requests == 2
    assert jwks_verifier.verify(es256(claims())).user_id == USER_ID  # old key still there


def test_key_removed_from_jwks_stops_working_after_ttl(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    token = rs256(claims(exp=int(NOW) + 7200))
    jwks_verifier.verify(token)
    jwks.reset(public_jwk(EC_KEY, "ec-1"))  # rsa-1 revoked
    clock.advance(601)
    assert_invalid(jwks_verifier, token)
    assert jwks.requests == 1


def test_jwks_server_down(clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = TokenVerifier(
        hs256_secrets=[SECRET], jwks_url=f"http://127.0.0.1:{port}{JWKS_PATH}", clock=clock
    )
    assert_invalid(verifier, es256(claims()))
    assert verifier.verify(hs256(claims())).user_id == USER_ID  # HS256 unaffected


@pytest.mark.parametrize(
    "document", [b"not json", b"[]", b'{"keys": "none"}', b"{}", b'{"keys": [1, "x", null]}']
)
def test_jwks_bad_document(jwks_verifier: TokenVerifier, jwks: JwksServer, document: bytes) -> None:
    jwks.document = document
    assert_invalid(jwks_verifier, es256(claims()))


def test_jwks_error_status_then_recovery(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    jwks.status = 500
    assert_invalid(jwks_verifier, es256(claims()))
    assert_invalid(jwks_verifier, es256(claims()))
    assert jwks.requests == 1  # a failing endpoint is not hammered either
    jwks.status = 200
    clock.advance(31)
    assert jwks_verifier.verify(es256(claims())).user_id == USER_ID
    assert jwks.requests == 2


def test_stale_keys_not_used_when_refresh_fails(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    jwks_verifier.verify(es256(claims()))
    jwks.status = 503
    clock.advance(601)
    token = es256(claims(exp=int(clock.now) + 60))
    assert_invalid(jwks_verifier, token)
    assert_invalid(jwks_verifier, token)  # nor while the next fetch is rate limited
    assert jwks.requests == 2


def test_fetch_json_exception_is_invalid_token(clock: Clock) -> None:
    def broken(url: str) -> Any:
        raise RuntimeError("boom")

    verifier = TokenVerifier(
        jwks_url="https://example.invalid/jwks", fetch_json=broken, clock=clock
    )
    assert_invalid(verifier, es256(claims()))


def test_custom_fetch_json_receives_url(clock: Clock) -> None:
    seen: list[str] = []

    def fetch(url: str) -> Any:
        seen.append(url)
        return {"keys": [public_jwk(EC_KEY, "ec-1")]}

    url = "https://ref.supabase.co/auth/v1/.well-known/jwks.json"
    verifier = TokenVerifier(jwks_url=url, fetch_json=fetch, clock=clock)
    assert verifier.verify(es256(claims())).user_id == USER_ID
    assert seen == [url]


# --- algorithm confusion and JWK/header mismatches -------------------------------------


def _rsa_public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "hmac_key",
    [
        _rsa_public_pem(),
        _rsa_public_pem().decode().replace("\n", "").encode(),
        RSA_KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(public_jwk(RSA_KEY, "rsa-1")).encode(),
        EC_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ],
)
@pytest.mark.parametrize("kid", [None, "rsa-1", "ec-1"])
def test_hs256_signed_with_public_key_rejected(
    jwks_verifier: TokenVerifier, hmac_key: bytes, kid: str | None
) -> None:
    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    assert_invalid(jwks_verifier, hand_built(header, claims(), hmac_key=hmac_key))


def test_header_alg_must_match_the_key(jwks_verifier: TokenVerifier) -> None:
    assert_invalid(jwks_verifier, rs256(claims(), kid="ec-1"))  # RSA signature, EC key
    assert_invalid(jwks_verifier, es256(claims(), kid="rsa-1"))  # EC signature, RSA key


@pytest.mark.parametrize(
    "jwk",
    [
        public_jwk(EC_KEY, "k", alg="RS256"),  # alg does not match kty
        public_jwk(EC_KEY, "k", alg="HS256"),
        public_jwk(EC_KEY, "k", kty="RSA"),  # kty does not match the key data
        public_jwk(EC_KEY, "k", kty="oct", k=b64(SECRET.encode())),
        public_jwk(EC_KEY, "k", use="enc"),
        public_jwk(EC_KEY, "k", key_ops=["encrypt"]),
        public_jwk(EC_KEY, "k", crv="P-384"),
        {name: v for name, v in public_jwk(EC_KEY, "k").items() if name != "kid"},
    ],
)
def test_unusable_jwk_rejected(jwks: JwksServer, clock: Clock, jwk: dict[str, Any]) -> None:
    jwks.reset(jwk)
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    assert_invalid(verifier, es256(claims(), kid="k"))


def test_jwk_without_alg_uses_key_type(jwks: JwksServer, clock: Clock) -> None:
    jwks.reset(public_jwk(EC_KEY, "e", alg=None), public_jwk(RSA_KEY, "r", alg=None))
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    assert verifier.verify(es256(claims(), kid="e")).user_id == USER_ID
    assert verifier.verify(rs256(claims(), kid="r")).user_id == USER_ID
    assert_invalid(verifier, rs256(claims(), kid="e"))


def test_hs256_jwk_in_jwks_is_ignored(jwks: JwksServer, clock: Clock) -> None:
    oct_key = {"kty": "oct", "kid": "h", "alg": "HS256", "k": b64(SECRET.encode())}
    jwks.reset(oct_key)
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    assert_invalid(verifier, hs256(claims(), kid="h"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_weak_rsa_key_rejected(jwks: JwksServer, clock: Clock) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    jwks.reset(public_jwk(weak, "weak"))
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    assert_invalid(verifier, rs256(claims(), kid="weak", key=weak))


def test_other_asymmetric_algorithms_rejected(jwks: JwksServer, clock: Clock) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwks.reset(ECAlgorithm.to_jwk(p384.public_key(), as_dict=True) | {"kid": "p384"})
    verifier = TokenVerifier(jwks_url=jwks.url, clock=clock)
    token = jwt.encode(claims(), p384, algorithm="ES384", headers={"kid": "p384"})
    assert_invalid(verifier, token)
    assert_invalid(
        verifier, jwt.encode(claims(), RSA_KEY, algorithm="PS256", headers={"kid": "rsa-1"})
    )


# --- error messages, concurrency, configuration -----------------------------------------


def test_error_messages_identical_across_failures(
    jwks_verifier: TokenVerifier, jwks: JwksServer
) -> None:
    failing = [
        hs256(claims(), secret="another-secret-that-is-long-enough-12345"),
        hs256(claims(aud="x")),
        hs256(claims(aud=None)),
        hs256(claims(iss="x")),
        hs256(claims(exp=None)),
        hs256(claims(nbf=int(NOW) + 3600)),
        hs256(claims(sub="x")),
        hs256(claims(role="anon")),
        hand_built({"alg": "none"}, claims()),
        hand_built({"alg": "HS256", "kid": "rsa-1"}, claims(), hmac_key=_rsa_public_pem()),
        es256(claims(), kid="nope"),
        rs256(claims(), kid="ec-1"),
        "garbage",
        "x" * 10_000,
    ]
    bodies = set()
    for token in failing:
        error = assert_invalid(jwks_verifier, token)
        bodies.add(json.dumps(error.body(), sort_keys=True))
    assert len(bodies) == 1
    with pytest.raises(TokenExpired) as expired:
        jwks_verifier.verify(hs256(claims(exp=int(NOW) - 3600)))
    assert expired.value.message != InvalidToken.default_message


def test_concurrent_unknown_kids_fetch_once(clock: Clock) -> None:
    fetches = 0
    gate = threading.Event()

    def slow_fetch(url: str) -> Any:
        nonlocal fetches
        fetches += 1
        gate.wait(0.05)
        return {"keys": [public_jwk(EC_KEY, "ec-1")]}

    verifier = TokenVerifier(jwks_url="https://x.invalid/jwks", fetch_json=slow_fetch, clock=clock)
    verifier.verify(es256(claims()))
    clock.advance(31)
    errors: list[BaseException] = []
    results: list[str] = []

    def worker(n: int) -> None:
        try:
            token = es256(claims(), kid=f"bogus-{n}") if n % 2 else es256(claims())
            results.append(verifier.verify(token).user_id)
        except InvalidToken:
            results.append("invalid")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert fetches == 2  # the warm-up plus exactly one refetch
    assert results.count(USER_ID) == 8 and results.count("invalid") == 8


def test_concurrent_refresh_of_stale_cache_fetches_once(clock: Clock) -> None:
    fetches = 0
    lock = threading.Lock()

    def slow_fetch(url: str) -> Any:
        nonlocal fetches
        with lock:
            fetches += 1
        threading.Event().wait(0.05)
        return {"keys": [public_jwk(EC_KEY, "ec-1")]}

    verifier = TokenVerifier(
        jwks_url="https://x.invalid/jwks",
        jwks_min_refetch_s=0,
        fetch_json=slow_fetch,
        clock=clock,
    )
    verifier.verify(es256(claims()))
    clock.advance(601)
    token = es256(claims(exp=int(clock.now) + 60))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(verifier.verify(token).user_id))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [USER_ID] * 8
    assert fetches == 2  # the warm-up plus one refresh shared by all threads


def test_token_size_limit(hs_verifier: TokenVerifier) -> None:
    big = hs256(claims(pad="x" * 5500))
    assert len(big) < MAX_TOKEN_LENGTH
    assert hs_verifier.verify(big).user_id == USER_ID
    huge = hs256(claims(pad="x" * 5500, more="y" * 800))
    assert len(huge) > MAX_TOKEN_LENGTH
    assert_invalid(hs_verifier, huge)


def test_caller_repr_hides_token_and_claims(hs_verifier: TokenVerifier) -> None:
    token = hs256(claims())
    caller = hs_verifier.verify(token)
    assert token not in repr(caller)
    assert "user@example.com" not in repr(caller)
    assert USER_ID in repr(caller)
    # What a log line's JSON encoder makes of it (Powertools falls back to str()).
    logged = json.dumps({"caller": caller}, default=str)
    assert token not in logged and "user@example.com" not in logged


def test_verifier_repr_hides_secrets(hs_verifier: TokenVerifier) -> None:
    assert SECRET not in repr(hs_verifier) and SECRET_NEXT not in repr(hs_verifier)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hs256_secrets": SECRET},  # a bare string, not a list
        {"hs256_secrets": ["too-short"]},
        {"hs256_secrets": [SECRET, ""]},
        {"hs256_secrets": [SECRET], "jwks_ttl_s": 0},
        {"hs256_secrets": [SECRET], "leeway_s": -1},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as excinfo:
        TokenVerifier(**kwargs)
    assert "too-short" not in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_module_does_not_import_requests() -> None:
    code = "import sys, wa_gateway.auth.tokens; sys.exit('requests' in sys.modules)"
    shared = Path(__file__).resolve().parents[2] / "shared"
    env = {**os.environ, "PYTHONPATH": str(shared)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- bearer_token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc", "abc"),
        ("BeArEr abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer\tabc", "abc"),
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearerabc", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("abc.def.ghi", None),
        ("Bearer abc def", None),
        ("Bearer Bearer abc", None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_bearer_token_then_verify(hs_verifier: TokenVerifier) -> None:
    token = hs256(claims())
    assert hs_verifier.verify(bearer_token(f"Bearer {token}")).user_id == USER_ID
    with pytest.raises(MissingToken):
        hs_verifier.verify(bearer_token("Basic abc"))


def test_an_anonymous_sign_in_is_refused_by_default(hs_verifier: TokenVerifier) -> None:
    with pytest.raises(AnonymousUser):
        hs_verifier.verify(hs256(claims(is_anonymous=True)))
    assert hs_verifier.verify(hs256(claims(is_anonymous=False))).user_id == USER_ID


def test_an_expired_anonymous_token_is_still_refused_as_anonymous(
    hs_verifier: TokenVerifier, clock: Clock
) -> None:
    """Refreshing it would not help: the answer says what would."""
    with pytest.raises(AnonymousUser):
        hs_verifier.verify(hs256(claims(is_anonymous=True, exp=int(NOW) - 3600)))


def test_anonymous_sign_ins_are_accepted_when_allowed(clock: Clock) -> None:
    verifier = TokenVerifier(hs256_secrets=[SECRET], allow_anonymous=True, clock=clock)
    caller = verifier.verify(hs256(claims(is_anonymous=True)))
    assert caller.user_id == USER_ID and caller.claims["is_anonymous"] is True


@pytest.mark.parametrize("value", ["true", 1, None, "false"])
def test_is_anonymous_must_be_a_boolean(hs_verifier: TokenVerifier, value: Any) -> None:
    token = hs256({**claims(), "is_anonymous": value})
    with pytest.raises(InvalidToken):
        hs_verifier.verify(token)


def test_a_forged_anonymous_token_is_invalid_not_anonymous(hs_verifier: TokenVerifier) -> None:
    """Only a token that passes every other check is told apart as anonymous."""
    with pytest.raises(InvalidToken):
        hs_verifier.verify(hs256(claims(is_anonymous=True), secret="another-" + "x" * 40))


def test_a_failed_jwks_fetch_is_tried_again_soon_then_less_and_less_often(
    jwks_verifier: TokenVerifier, jwks: JwksServer, clock: Clock
) -> None:
    """One failed fetch (a blip at a container's first request) must not refuse every
    asymmetric token for the whole refetch interval: the next fetch may go a second later,
    then after 2, 4, 8 and 16 seconds while it keeps failing, and every 30 at most."""
    jwks.status = 503
    assert_invalid(jwks_verifier, es256(claims()))
    clock.advance(1)
    assert_invalid(jwks_verifier, es256(claims()))
    assert jwks.requests == 2
    for wait in (2, 4, 8, 16, 30, 30):
        clock.advance(wait - 0.5)
        assert_invalid(jwks_verifier, es256(claims()))  # not yet: no fetch
        clock.advance(0.5)
        assert_invalid(jwks_verifier, es256(claims()))
    assert jwks.requests == 8
    jwks.status = 200
    clock.advance(30)
    assert jwks_verifier.verify(es256(claims())).user_id == USER_ID
    assert jwks.requests == 9


def test_a_failed_jwks_fetch_is_logged_with_its_reason(
    jwks_verifier: TokenVerifier, jwks: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator sees why asymmetric tokens are refused."""
    jwks.status = 503
    with caplog.at_level("WARNING"):
        assert_invalid(jwks_verifier, es256(claims()))
    [record] = [r for r in caplog.records if "JWKS" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "503" in str(getattr(record, "reason", ""))
