"""Property-based fuzzing of every function's event, in-process as Lambda imports the handlers.

Whatever arrives (random bodies, headers, methods, paths, encodings, huge and nested JSON,
invalid UTF-8, wrong base64 flags, missing or odd event fields), a function answers: never a
crash, never a 5xx, never a stack trace or a secret, always ``{"error": {"code", "message"}}``
with a code of the contract for a non-2xx, and nothing written for a request it refuses.

``FUZZ_EXAMPLES`` (environment) sets the examples per function (default 150) for a deeper run.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from local.dev_auth import issue_access_token
from local.gateway import ROOT, handlers_in_process
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user
from tests.rows import one
from tests.security.inprocess import (
    Handler,
    RowCounter,
    assert_contract_answer,
    invoke,
)
from tests.waiting import wait_until
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.crypto import Keyring
from wa_gateway.messaging.service import UNCONFIRMED_RECIPIENT
from wa_gateway.sessions.accounts import session_name_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
# Refusals after the host was asked: the outbox keeps the attempt (status failed, its error).
ATTEMPTED = {"unknown_recipient", "host_error", "host_timeout"}
URL_FUNCTIONS = ("start-session", "status", "send-message", "disconnect", "qr-webhook")


class World:
    """A linked user the fuzzer acts as, and the secrets no answer may contain."""

    def __init__(self, gateway: Gateway, simulator: Simulator, database: str) -> None:
        self.user, self.token, self.session = connected_user(gateway, simulator, "fuzz")
        self.other_session = session_name_for(gateway.new_user("fuzzother").id)
        self.verify = gateway.local_secrets.verify_token
        self.issuer = gateway.env["SUPABASE_JWT_ISSUER"]
        self.jwt_secret = gateway.local_secrets.jwt_secret
        self.expired, _ = issue_access_token(
            user_id=self.user.id,
            email=self.user.email,
            secret=self.jwt_secret,
            issuer=self.issuer,
            lifetime_s=-3600,
        )
        keyring = Keyring.from_setting(gateway.env["ENCRYPTION_KEY"])
        (sealed,) = one(
            database,
            "select k.host_token from whatsapp_session_secrets k"
            " join whatsapp_sessions s on s.id = k.session_id where s.session_id = %s",
            (self.session,),
        )
        host_token = keyring.decrypt(sealed, context=self.session)
        self.secrets = [
            gateway.local_secrets.jwt_secret,
            gateway.local_secrets.verify_token,
            gateway.local_secrets.encryption_key.split(":", 1)[1],
            gateway.local_secrets.wpp_secret_key,
            host_token,
        ]


@pytest.fixture(scope="module")
def world(gateway: Gateway, simulator: Simulator, database: str) -> Iterator[World]:
    # No acks or QR refreshes arriving later: what the log gets comes from the fuzzed requests.
    with simulator.configured(auto_ack=False, qr_refresh_ms=600_000):
        yield World(gateway, simulator, database)


@pytest.fixture(scope="module")
def handlers(gateway: Gateway) -> Iterator[dict[str, Handler]]:
    # A governor that lets the fuzzer's valid sends through, so they reach the host.
    env = {**gateway.env, "SEND_BURST": "100000", "SEND_RATE_PER_MINUTE": "100000"}
    with handlers_in_process(env) as loaded:
        yield loaded


# --- strategies -------------------------------------------------------------------------------

# Any code point, lone surrogates included: JSON can carry them as \ud800 escapes.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
TEXT = st.one_of(st.text(max_size=40), ANY_TEXT)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about one time in ``n``."""
    return draw(st.integers(1, n)) == n


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int = 4) -> Any:
    """``good``, and one time in ``one_in`` ``odd``: most examples get past the first check."""
    return st.integers(1, one_in).flatmap(lambda n: odd if n == one_in else good)


PHONES = mostly(
    st.sampled_from(["5511987654321", "+55 (11) 98765-4321", "5511912340001"]),
    st.one_of(
        st.sampled_from(["5511900000000", "1234", "", "55 11 9876x4321"]),
        st.from_regex(r"\+?[0-9 ()-]{0,20}", fullmatch=True),
        JSON,
    ),
    one_in=6,
)
MESSAGES = mostly(
    st.one_of(st.just("Olá!"), st.text(min_size=1, max_size=60)),
    st.one_of(
        st.sampled_from([" ", "x" * 4096, "x" * 4097, "a\x00b", "\ud800", "\u202e\ufeff"]),
        ANY_TEXT,
        JSON,
    ),
    one_in=6,
)
ACCOUNTS = mostly(
    st.sampled_from(["default", "work", "a-1"]),
    st.one_of(st.sampled_from(["", "Work", "-x", "x" * 33, "../"]), JSON),
)


def with_a_stray_field(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """``body``, now and then with a field of any name and value."""
    if one_in(draw, 6):
        body[draw(TEXT)] = draw(JSON)
    return body


@st.composite
def start_bodies(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["method"] = draw(mostly(st.sampled_from(["qr", "code"]), JSON))
    if draw(st.booleans()):
        body["phone"] = draw(PHONES)
    if one_in(draw, 4):
        body["account"] = draw(ACCOUNTS)
    return with_a_stray_field(draw, body)


@st.composite
def account_bodies(draw: st.DrawFn) -> Any:
    body = {"account": draw(ACCOUNTS)} if draw(st.booleans()) else {}
    return with_a_stray_field(draw, body)


@st.composite
def send_bodies(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {}
    if not one_in(draw, 7):
        body["phone"] = draw(PHONES)
    if not one_in(draw, 7):
        body["message"] = draw(MESSAGES)
    if one_in(draw, 3):
        body["contactName"] = draw(mostly(st.text(max_size=20), st.one_of(ANY_TEXT, JSON)))
    if one_in(draw, 6):
        body["account"] = draw(ACCOUNTS)
    if one_in(draw, 8):
        body[draw(st.sampled_from(["isGroup", "session", "to", ""]) | TEXT)] = draw(JSON)
    return body


EVENT_NAMES = mostly(
    st.sampled_from(
        [
            "qrcode",
            "phoneCode",
            "status-find",
            "onmessage",
            "onselfmessage",
            "unreadmessages",
            "onack",
            "closesession",
            "logoutsession",
            "incomingcall",
            "onpresencechanged",
        ]
    ),
    st.one_of(st.just(""), TEXT, JSON),
)
JIDS = mostly(
    st.sampled_from(
        [
            "5511912340000@c.us",
            "5511912340000:12@c.us",
            "123456789012345@lid",
            "120363000000000000@g.us",
            "status@broadcast",
        ]
    ),
    st.one_of(st.just("@c.us"), TEXT, st.fixed_dictionaries({"_serialized": TEXT}), JSON),
)


@st.composite
def host_events(draw: st.DrawFn, world: World) -> Any:
    body: dict[str, Any] = {}
    if not one_in(draw, 9):
        body["event"] = draw(EVENT_NAMES)
    if not one_in(draw, 4):
        body["session"] = draw(
            mostly(
                st.just(world.session),
                st.one_of(st.sampled_from([world.other_session, "../x", ""]), JSON),
            )
        )
    optional = {
        "status": mostly(
            st.sampled_from(
                [
                    "inChat",
                    "isLogged",
                    "notLogged",
                    "qrReadSuccess",
                    "browserClose",
                    "desconnectedMobile",
                    "autocloseCalled",
                    "CONNECTED",
                    "QRCODE",
                ]
            ),
            JSON,
        ),
        "qrcode": st.one_of(st.just("data:image/png;base64,iVBORw0KGgo="), JSON),
        "urlcode": st.one_of(st.just("2@abc,def,ghi,jkl"), st.text(max_size=3000), JSON),
        "phoneCode": st.one_of(st.just("ABCD-EFGH"), JSON),
        "id": st.one_of(
            st.uuids().map(lambda u: f"false_5511912340000@c.us_{u.hex}"),
            st.fixed_dictionaries({"_serialized": TEXT, "remote": JIDS}),
            JSON,
        ),
        "from": JIDS,
        "to": JIDS,
        "chatId": JIDS,
        "body": st.one_of(MESSAGES, st.just("A" * 70_000)),
        "caption": TEXT,
        "type": mostly(st.sampled_from(["chat", "image", "ptt", "sticker"]), JSON),
        "ack": mostly(st.integers(-2, 5), JSON),
        "fromMe": JSON,
        "isGroupMsg": JSON,
        "notifyName": st.one_of(TEXT, st.just("N" * 500), JSON),
        "sender": JSON,
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=8, unique=True)):
        body[key] = draw(optional[key])
    return body


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def raw_bodies(draw: st.DrawFn, structured: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    """(body field, isBase64Encoded field); ``...`` leaves a field out of the event."""
    kind = draw(st.integers(-4, 11))
    ascii_only = draw(st.booleans())
    if kind <= 3:
        text = json.dumps(draw(structured), ensure_ascii=ascii_only)
    elif kind == 4:
        text = json.dumps(draw(JSON), ensure_ascii=ascii_only)
    elif kind == 5:
        text = draw(st.sampled_from([deep(10_000), '{"a":' * 3000 + "1" + "}" * 3000]))
    elif kind == 6:
        size = draw(st.sampled_from([64 * 1024, 64 * 1024 + 1, 300_000, 7 * 1024 * 1024]))
        text = json.dumps({"phone": "5511987654321", "message": "x" * size})
    elif kind == 7:
        text = draw(ANY_TEXT)
    elif kind == 8:  # bytes, often not UTF-8, sent the way Lambda sends binary bodies
        data = draw(st.binary(max_size=200))
        return base64.b64encode(data).decode(), True
    elif kind == 9:  # the flag says base64 and the body is not (or the other way round)
        text = json.dumps(draw(structured))
        flag = draw(st.booleans())
        return (text if flag else base64.b64encode(text.encode()).decode()), flag
    elif kind == 10:
        return ..., draw(st.one_of(st.just(...), JSON))
    else:
        return draw(JSON), draw(st.one_of(st.just(...), JSON))
    if one_in(draw, 5):
        encoded = text.encode("utf-8", "surrogatepass")
        return base64.b64encode(encoded).decode(), True
    return text, draw(st.one_of(st.just(False), st.just(...), JSON))


def authorization(world: World) -> st.SearchStrategy[Any]:
    return mostly(
        st.just(f"Bearer {world.token}"),
        st.one_of(
            st.just(...),
            st.sampled_from(
                [
                    f"Bearer {world.token}",
                    f"bearer   {world.token}  ",
                    f"Bearer {world.expired}",
                    f"Bearer {world.token}x",
                    f"Bearer {world.token[:-4]}",
                    "Bearer",
                    "Basic YWxpY2U6cGFzc3dvcmQ=",
                    f"Bearer {world.token} {world.token}",
                ]
            ),
            TEXT,
        ),
        one_in=3,
    )


def webhook_proof(world: World) -> st.SearchStrategy[tuple[dict[str, str], dict[str, Any]]]:
    """(headers, query) carrying one of the proofs, a wrong one, or none."""
    good_query = {"session": world.session, "verify": session_proof(world.verify, world.session)}
    return mostly(
        st.sampled_from([({"x-verify": world.verify}, {}), ({}, good_query)]),
        st.sampled_from(
            [
                ({"x-verify": world.verify + "x"}, {}),
                ({}, good_query),
                ({}, {"session": world.other_session, "verify": good_query["verify"]}),
                ({}, {**good_query, "verify": "0" * 64}),
                ({}, {}),
            ]
        ),
    )


@st.composite
def url_events(draw: st.DrawFn, function: str, world: World) -> Any:
    """A function URL event (payload 2.0) for ``function``: mostly well-formed, often odd."""
    if one_in(draw, 30):
        return draw(JSON)  # not an event at all
    webhook = function == "qr-webhook"
    structured: st.SearchStrategy[Any] = {
        "start-session": start_bodies(),
        "send-message": send_bodies(),
        "disconnect": account_bodies(),
        "qr-webhook": host_events(world),
    }.get(function, JSON)
    method = "GET" if function == "status" else "POST"
    if one_in(draw, 10):
        method = draw(
            st.one_of(
                st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
                TEXT,
            )
        )
    path = "/"
    if one_in(draw, 10):
        path = draw(
            st.one_of(st.sampled_from(["/health", "/health/", "", "//", "/x", "/%00"]), TEXT)
        )
    headers: dict[str, Any] = {"content-type": "application/json"}
    query: dict[str, Any] = {}
    if webhook:
        proof_headers, proof_query = draw(webhook_proof(world))
        headers.update(proof_headers)
        query.update(proof_query)
    else:
        auth = draw(authorization(world))
        if auth is not ...:
            headers["authorization"] = auth
    if function == "send-message" and draw(st.booleans()):
        headers["idempotency-key"] = draw(
            mostly(st.uuids().map(str), st.one_of(st.sampled_from(["k" * 256, " \t"]), TEXT))
        )
    if function == "status" and draw(st.booleans()):
        query["refresh"] = draw(mostly(st.sampled_from(["true", "false", "1"]), TEXT))
    if function == "status" and one_in(draw, 4):
        query["account"] = draw(mostly(st.sampled_from(["default", "work"]), TEXT))
    if one_in(draw, 4):
        for name, value in draw(st.dictionaries(TEXT.map(str.lower), TEXT, max_size=3)).items():
            headers.setdefault(name, value)
    if one_in(draw, 6):
        headers["content-type"] = draw(st.one_of(st.just("text/plain"), TEXT))
    body, b64 = draw(raw_bodies(structured))

    try:
        raw_query = urlencode(query)
    except (TypeError, UnicodeEncodeError):
        raw_query = ""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "fuzz",
            "domainName": "fuzz.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "fuzz",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "fuzz",
            },
            "requestId": "fuzz",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:08:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
    }
    if query:
        event["queryStringParameters"] = query
    if body is not ...:
        event["body"] = body
    if b64 is not ...:
        event["isBase64Encoded"] = b64
    return draw(odd_fields(event))


TOP_FIELDS = [
    "version",
    "rawPath",
    "rawQueryString",
    "headers",
    "queryStringParameters",
    "cookies",
    "requestContext",
    "body",
    "isBase64Encoded",
    "pathParameters",
]
CONTEXT_FIELDS = ["http", "requestId", "stage", "timeEpoch", "domainName", "authorizer"]
HTTP_FIELDS = ["method", "path", "sourceIp"]


@st.composite
def odd_fields(draw: st.DrawFn, event: dict[str, Any]) -> dict[str, Any]:
    """Drop or replace a few of the event's fields (what a broken caller or a test tool sends)."""
    if not one_in(draw, 6):
        return event
    changes = draw(st.integers(0, 1))
    event = copy.deepcopy(event)
    for _ in range(changes + 1):
        where, fields = draw(
            st.sampled_from(
                [
                    ((), TOP_FIELDS),
                    (("requestContext",), CONTEXT_FIELDS),
                    (("requestContext", "http"), HTTP_FIELDS),
                ]
            )
        )
        target: Any = event
        for key in where:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        field = draw(st.sampled_from(fields))
        if draw(st.booleans()):
            target.pop(field, None)
        else:
            target[field] = draw(
                st.one_of(JSON, st.dictionaries(TEXT, st.one_of(JSON, TEXT), max_size=3))
            )
    return event


# --- the properties ---------------------------------------------------------------------------


def _unconfirmed_recipient(result: dict[str, Any]) -> bool:
    error = json.loads(result["body"])["error"]
    return result["statusCode"] == 502 and error["message"] == UNCONFIRMED_RECIPIENT


@pytest.mark.parametrize("function", URL_FUNCTIONS)
def test_any_event_gets_a_contract_answer_and_a_refusal_writes_nothing(
    function: str,
    handlers: dict[str, Handler],
    world: World,
    database: str,
    simulator: Simulator,
) -> None:
    @FUZZ
    @given(url_event=url_events(function, world))
    def check(url_event: Any) -> None:
        note(f"event: {url_event!r:.3000}")
        # An earlier example's host call (a logout) may still have its webhook on the way:
        # what it writes is not this example's doing.
        wait_until(lambda: simulator.delivered(world.session), within_s=5.0)
        before = rows()
        result = invoke(handlers[function], url_event, function)
        status, _ = assert_contract_answer(result, world.secrets)
        # The one 5xx a valid request may get: the host's "does not exist" for a number with
        # no account, which it cannot prove (it may have sent): 502 host_error, saying so.
        assert status < 500 or _unconfirmed_recipient(result), result
        if status >= 300 and json.loads(result["body"])["error"]["code"] not in ATTEMPTED:
            assert rows() == before, (status, result["body"])

    rows = RowCounter(database, world.session)
    try:
        check()
    finally:
        rows.close()


@settings(max_examples=min(EXAMPLES, 40), deadline=None, database=None)
@given(event=st.one_of(st.just({"source": "schedule", "job": "purge"}), JSON))
def test_the_purge_runs_whatever_its_scheduled_event_holds(
    handlers: dict[str, Handler], event: Any
) -> None:
    report = invoke(handlers["purge"], event, "purge", timeout_ms=300_000)
    assert isinstance(report, dict) and report["complete"] is True
    assert report["batches"] >= 1 and report["host_errors"] == 0


@pytest.mark.parametrize("field", ["headers", "queryStringParameters"])
@pytest.mark.parametrize("value", [False, 0, "", []], ids=["false", "zero", "empty", "list"])
def test_a_map_field_that_is_not_a_map_is_refused_even_when_falsy(
    handlers: dict[str, Handler], field: str, value: Any
) -> None:
    event = json.loads((ROOT / "events" / "send_message.json").read_text())
    event[field] = value
    status, body = assert_contract_answer(
        invoke(handlers["send-message"], event, "send-message"), []
    )
    assert status == 400 and body["error"]["code"] == "invalid_request", body
