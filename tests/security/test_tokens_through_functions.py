"""Access tokens through the functions: every way a token can be wrong gets 401, and the answer
says no more than its code (one message for every failure but expiry). The verifier on its own
is tests/unit/test_tokens.py; here it is the functions, behind the gateway, with a JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from local import devdb
from local.stack import LocalSecrets
from local.threaded_server import ThreadedServer
from tests.conftest import Gateway, Simulator, own_gateway
from tests.e2e.flows import assert_error, connected_user
from tests.stub_servers import StubHandler

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

KID = "sig-key-1"
SEND = {"phone": "5511987654321", "message": "not from you"}
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "start-session": ("POST", {}),
    "status": ("GET", {}),
    "send-message": ("POST", {"json": SEND}),
    "disconnect": ("POST", {}),
}


class Jwks:
    """A JWKS endpoint on 127.0.0.1 with one ES256 key, counting its fetches."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.document = {"keys": [{**jwk, "kid": KID, "alg": "ES256", "use": "sig"}]}
        self.fetches = 0
        owner = self

        class Handler(StubHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                self.answer(200, json.dumps(owner.document).encode())

        self.server = ThreadedServer(Handler).start()
        self.url = f"{self.server.url}/auth/v1/.well-known/jwks.json"

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def close(self) -> None:
        self.server.stop()


@dataclass
class World:
    gateway: Gateway
    jwks: Jwks
    victim: devdb.DevUser
    victim_token: str
    victim_session: str
    intruder: devdb.DevUser

    def claims(self, user: devdb.DevUser | None = None, **changes: Any) -> dict[str, Any]:
        """Claims shaped like Supabase Auth's, for ``user`` (the intruder by default)."""
        user = user or self.intruder
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.gateway.env["SUPABASE_JWT_ISSUER"],
            "sub": user.id,
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": user.email,
            "role": "authenticated",
            "aal": "aal1",
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not ...}

    def hs256(self, claims: dict[str, Any], secret: str | None = None, **header: Any) -> str:
        key = secret or self.gateway.local_secrets.jwt_secret
        return jwt.encode(claims, key, algorithm="HS256", headers=header or None)

    def es256(self, claims: dict[str, Any], kid: str = KID, key: Any = None) -> str:
        return jwt.encode(claims, key or self.jwks.key, algorithm="ES256", headers={"kid": kid})


@pytest.fixture(scope="module")
def world(
    database: str, simulator: Simulator, local_secrets: LocalSecrets, output_dir: Path
) -> Iterator[World]:
    jwks = Jwks()
    try:
        with own_gateway(
            database,
            simulator,
            local_secrets,
            output_dir / "gateway-tokens.log",
            SUPABASE_JWKS_URL=jwks.url,
        ) as gateway:
            victim, victim_token, victim_session = connected_user(gateway, simulator, "victim")
            intruder = gateway.new_user("intruder")
            yield World(gateway, jwks, victim, victim_token, victim_session, intruder)
    finally:
        jwks.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), signature])


def hmac_token(claims: dict[str, Any], key: bytes, alg: str = "HS256", **header: Any) -> str:
    """An HS256 token signed with any bytes (PyJWT refuses a PEM key as an HMAC secret)."""
    head = b64(json.dumps({"alg": alg, "typ": "JWT", **header}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its signature kept."""
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


Maker = Callable[[World], str]
NOW = int(time.time())

INVALID: dict[str, Maker] = {
    "not yet valid": lambda w: w.hs256(w.claims(nbf=int(time.time()) + 3600)),
    "issued in the future": lambda w: w.hs256(w.claims(iat=int(time.time()) + 3600)),
    "wrong audience": lambda w: w.hs256(w.claims(aud="anon")),
    "no audience": lambda w: w.hs256(w.claims(aud=...)),
    "wrong issuer": lambda w: w.hs256(w.claims(iss="https://attacker.example/auth/v1")),
    "no expiry": lambda w: w.hs256(w.claims(exp=...)),
    "expiry not a number": lambda w: w.hs256(w.claims(exp="never")),
    "role service_role": lambda w: w.hs256(w.claims(role="service_role")),
    "subject not a uuid": lambda w: w.hs256(w.claims(sub="admin")),
    "unknown kid": lambda w: w.es256(w.claims(), kid="no-such-key"),
    "known kid, another key": lambda w: w.es256(
        w.claims(), key=ec.generate_private_key(ec.SECP256R1())
    ),
    "RS256 header on the EC key": lambda w: unsigned(
        {"alg": "RS256", "kid": KID, "typ": "JWT"}, w.claims(), b64(b"x" * 256)
    ),
    "tampered payload": lambda w: tampered(w.hs256(w.claims()), sub=w.victim.id),
    "tampered ES256 payload": lambda w: tampered(w.es256(w.claims()), sub=w.victim.id),
    "alg none": lambda w: unsigned({"alg": "none", "typ": "JWT"}, w.claims(sub=w.victim.id)),
    "alg none, signature kept": lambda w: unsigned(
        {"alg": "none"}, w.claims(), w.hs256(w.claims()).split(".")[2]
    ),
    "HS256 signed with the public key": lambda w: hmac_token(
        w.claims(sub=w.victim.id), w.jwks.public_pem(), kid=KID
    ),
    "HS256 signed with the JWK": lambda w: hmac_token(
        w.claims(), json.dumps(w.jwks.document["keys"][0]).encode(), kid=KID
    ),
    "HS512 with the secret": lambda w: jwt.encode(
        w.claims(), w.gateway.local_secrets.jwt_secret, algorithm="HS512"
    ),
    "another secret": lambda w: w.hs256(w.claims(), secret="another-secret-" + "x" * 40),
    "anon key": lambda w: w.hs256(
        {"iss": "supabase", "ref": "local", "role": "anon", "iat": NOW, "exp": NOW + 10**8}
    ),
    "service-role key": lambda w: w.hs256(
        {"iss": "supabase", "ref": "local", "role": "service_role", "iat": NOW, "exp": NOW + 10**8}
    ),
    "publishable key": lambda w: "sb_publishable_" + "A1b2" * 8,
    "secret key": lambda w: "sb_secret_" + "A1b2" * 8,
    "garbage": lambda w: "not.a.token",
    "oversized": lambda w: w.hs256(w.claims(pad="x" * 10_000)),
    "two tokens": lambda w: f"{w.victim_token} {w.victim_token}",
}
EXPIRED: dict[str, Maker] = {
    "expired HS256": lambda w: w.hs256(w.claims(exp=int(time.time()) - 3600)),
    "expired ES256": lambda w: w.es256(w.claims(exp=int(time.time()) - 3600)),
}


def call(world: World, function: str, authorization: str | None) -> Any:
    method, extra = CALLS[function]
    headers = {} if authorization is None else {"Authorization": authorization}
    return world.gateway.call(method, function, headers=headers, **extra)


def test_valid_tokens_of_both_kinds_are_accepted(world: World) -> None:
    for token in (world.hs256(world.claims()), world.es256(world.claims())):
        answer = call(world, "status", f"Bearer {token}")
        assert answer.status_code == 200 and answer.json() == {"session": None}, answer.text


@pytest.mark.parametrize("function", sorted(CALLS))
def test_every_wrong_token_is_401_with_one_message(world: World, function: str) -> None:
    messages = set()
    for name, make in INVALID.items():
        answer = call(world, function, f"Bearer {make(world)}")
        assert answer.status_code == 401, (name, answer.text)
        assert_error(answer, 401, "invalid_token")
        assert "www-authenticate" not in {k.lower() for k in answer.headers}, name
        messages.add(answer.json()["error"]["message"])
    assert len(messages) == 1, messages
    for name, make in EXPIRED.items():
        answer = call(world, function, f"Bearer {make(world)}")
        assert_error(answer, 401, "token_expired")
        assert answer.json()["error"]["message"] not in messages, name


@pytest.mark.parametrize("function", sorted(CALLS))
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Bearer", "invalid_token"),
        ("Bearer ", "invalid_token"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "invalid_token"),
        ("Token abc.def.ghi", "invalid_token"),
    ],
)
def test_a_missing_or_malformed_header(
    world: World, function: str, authorization: str | None, code: str
) -> None:
    assert_error(call(world, function, authorization), 401, code)


def test_nothing_a_refused_token_asked_for_happened(world: World, database: str) -> None:
    """After every refused call above and here, the victim is as they were and the intruder
    has nothing: no session started, no message sent, nothing disconnected."""
    forged = INVALID["HS256 signed with the public key"](world)
    for function in CALLS:
        assert call(world, function, f"Bearer {forged}").status_code == 401
    with psycopg.connect(database) as conn:
        intruder_rows = conn.execute(
            "select (select count(*) from whatsapp_sessions where user_id = %(u)s)"
            " + (select count(*) from whatsapp_messages where user_id = %(u)s)",
            {"u": world.intruder.id},
        ).fetchone()
        victim = conn.execute(
            "select status from whatsapp_sessions where session_id = %s",
            (world.victim_session,),
        ).fetchone()
        victim_sent = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s and direction = 'outbound'",
            (world.victim.id,),
        ).fetchone()
    assert intruder_rows == (0,)
    assert victim == ("connected",) and victim_sent == (0,)
    mine = world.gateway.call("GET", "status", world.victim_token).json()["session"]
    assert mine["status"] == "connected"


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once(world: World) -> None:
    call(world, "status", f"Bearer {world.es256(world.claims())}")  # the keys are cached
    before = world.jwks.fetches
    for _ in range(25):
        token = world.es256(world.claims(), kid=f"kid-{uuid.uuid4().hex}")
        assert_error(call(world, "status", f"Bearer {token}"), 401, "invalid_token")
    assert world.jwks.fetches - before <= 1


@pytest.mark.parametrize("function", sorted(CALLS))
def test_an_anonymous_sign_in_is_refused_with_its_own_code(world: World, function: str) -> None:
    """A valid token of an anonymous sign-in (role authenticated, is_anonymous true) is not a
    user's: refused unless ALLOW_ANONYMOUS_USERS, with a code that says why."""
    for token in (
        world.hs256(world.claims(is_anonymous=True)),
        world.es256(world.claims(is_anonymous=True)),
    ):
        answer = call(world, function, f"Bearer {token}")
        assert_error(answer, 401, "anonymous_user")
        assert "anonym" in answer.json()["error"]["message"].lower()
