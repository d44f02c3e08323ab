"""The supabase-py (PostgREST) transport: the HTTP requests it makes, seen by a local server
that answers as PostgREST (or the API gateway in front of it) would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from postgrest import APIError

from local.processes import free_port
from local.threaded_server import serving
from tests.stub_servers import StubHandler
from wa_gateway.auth.caller import Caller
from wa_gateway.errors import SettingsError, StoreUnavailable
from wa_gateway.records import SessionUpdate
from wa_gateway.store import PostgrestTransport, Store

SERVICE_KEY = "service-role-key-for-tests"
SECRET_KEY = "sb_secret_" + "s3cr3t" * 5
PUBLISHABLE_KEY = "sb_publishable_" + "publ1c" * 5
SESSION_ROW = {
    "id": "0b7c5f7e-0000-4000-8000-000000000001",
    "user_id": "0b7c5f7e-0000-4000-8000-0000000000aa",
    "session_id": "user_0b7c5f7e-0000-4000-8000-0000000000aa",
    "status": "pairing",
    "qr_code": "2@q",
}
USER = Caller(user_id=SESSION_ROW["user_id"], claims={}, token="user.jwt.token")
"""A signed-in user, whose reads go with their own token."""
DROP = None
"""An answer that closes the connection without a word."""


def read_as_the_user(transport: PostgrestTransport) -> None:
    transport.rpc("gateway_get_session", {"p_session_name": "x"}, caller=USER)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str | None, message: str = "failed") -> Answer:
    body: dict[str, Any] = {"message": message, "details": None, "hint": None}
    if code is not None:
        body["code"] = code
    return Answer(status, json.dumps(body).encode())


@dataclass
class Recorded:
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    answer: Any = None
    script: list[Answer | None] = field(default_factory=list)
    """Answers to give first, in order; then ``status`` and ``answer``."""


@pytest.fixture()
def postgrest() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(StubHandler):
        def do_POST(self) -> None:
            recorded.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(self.read_body() or b"null"),
                }
            )
            if recorded.script:
                answer = recorded.script.pop(0)
            else:
                answer = Answer(recorded.status, json.dumps(recorded.answer).encode())
            if answer is DROP:
                self.close_connection = True
                return
            self.answer(answer.status, answer.body, answer.content_type, answer.headers)

    with serving(Handler) as server:
        yield server.url, recorded


def test_service_calls_post_to_rpc_with_the_service_key(
    postgrest: tuple[str, Recorded],
) -> None:
    url, recorded = postgrest
    recorded.answer = {"session": SESSION_ROW, "changed": True}
    store = Store(PostgrestTransport(url, SERVICE_KEY), qr_first_ttl_s=60, qr_next_ttl_s=20)
    result = store.apply_host_state(SessionUpdate(SESSION_ROW["session_id"], "connected"))
    assert result is not None and result.changed and result.session.status == "pairing"
    request = recorded.requests[0]
    assert request["path"] == "/rest/v1/rpc/gateway_apply_host_state"
    assert request["headers"]["apikey"] == SERVICE_KEY
    assert request["headers"]["authorization"] == f"Bearer {SERVICE_KEY}"
    assert request["body"]["p_update"]["session_name"] == SESSION_ROW["session_id"]
    assert request["body"]["p_update"]["status"] == "connected"
    assert request["body"]["p_qr_first_ttl_s"] == 60


def test_user_reads_forward_the_users_own_token(postgrest: tuple[str, Recorded]) -> None:
    url, recorded = postgrest
    recorded.answer = SESSION_ROW
    store = Store(PostgrestTransport(url, SERVICE_KEY, publishable_key=PUBLISHABLE_KEY))
    session = store.get_session(USER, SESSION_ROW["session_id"])
    assert session is not None and session.qr_code == "2@q"
    request = recorded.requests[0]
    assert request["path"] == "/rest/v1/rpc/gateway_get_session"
    assert request["headers"]["authorization"] == "Bearer user.jwt.token"
    assert request["headers"]["apikey"] == PUBLISHABLE_KEY
    assert SERVICE_KEY not in json.dumps(request["headers"])
    assert request["body"] == {"p_session_name": SESSION_ROW["session_id"]}


def test_one_client_serves_service_and_user_calls_without_mixing_tokens(
    postgrest: tuple[str, Recorded],
) -> None:
    url, recorded = postgrest
    recorded.answer = None
    transport = PostgrestTransport(url, SERVICE_KEY, publishable_key=PUBLISHABLE_KEY)
    read_as_the_user(transport)
    transport.rpc("gateway_apply_host_state", {"p_update": {"session_name": "x"}})
    auths = [r["headers"]["authorization"] for r in recorded.requests]
    assert auths == ["Bearer user.jwt.token", f"Bearer {SERVICE_KEY}"]
    apikeys = [r["headers"]["apikey"] for r in recorded.requests]
    assert apikeys == [PUBLISHABLE_KEY, SERVICE_KEY]
    assert transport.round_trips == 2


def test_postgrest_unavailable_is_store_unavailable(postgrest: tuple[str, Recorded]) -> None:
    url, recorded = postgrest
    recorded.status = 503
    recorded.answer = {"code": "PGRST001", "message": "Database client error", "details": None}
    with pytest.raises(StoreUnavailable):
        PostgrestTransport(url, SERVICE_KEY).rpc("gateway_get_session", {"p_session_name": "x"})


def test_an_unreachable_api_is_store_unavailable() -> None:
    transport = PostgrestTransport(f"http://127.0.0.1:{free_port()}", SERVICE_KEY, timeout_s=1)
    with pytest.raises(StoreUnavailable):
        transport.rpc("gateway_get_session", {"p_session_name": "x"})


def test_a_secret_key_goes_as_apikey_only(postgrest: tuple[str, Recorded]) -> None:
    """A secret key is not a JWT: Supabase's gateway refuses it as a Bearer token."""
    url, recorded = postgrest
    recorded.answer = None
    PostgrestTransport(url, SECRET_KEY).rpc("gateway_hosts", {})
    headers = recorded.requests[0]["headers"]
    assert headers["apikey"] == SECRET_KEY
    assert "authorization" not in headers


def test_a_user_read_with_a_secret_key_carries_the_publishable_key(
    postgrest: tuple[str, Recorded],
) -> None:
    url, recorded = postgrest
    recorded.answer = None
    read_as_the_user(PostgrestTransport(url, SECRET_KEY, publishable_key=PUBLISHABLE_KEY))
    headers = recorded.requests[0]["headers"]
    assert headers["apikey"] == PUBLISHABLE_KEY
    assert headers["authorization"] == "Bearer user.jwt.token"
    assert SECRET_KEY not in json.dumps(headers)


def test_a_user_read_without_a_publishable_key_is_refused_before_sending(
    postgrest: tuple[str, Recorded],
) -> None:
    url, recorded = postgrest
    with pytest.raises(SettingsError, match="SUPABASE_PUBLISHABLE_KEY"):
        read_as_the_user(PostgrestTransport(url, SECRET_KEY))
    assert recorded.requests == []


# (answer, requests sent for a repeatable call, for a call that is not): see store/failures.py.
UNAVAILABLE: dict[str, tuple[Answer | None, int, int]] = {
    "statement timeout": (
        error(500, "57014", "canceling statement due to statement timeout"),
        1,
        1,
    ),
    "lock timeout": (error(500, "55P03", "canceling statement due to lock timeout"), 1, 1),
    "serialization failure": (error(500, "40001", "could not serialize access"), 2, 2),
    "deadlock": (error(500, "40P01", "deadlock detected"), 2, 2),
    "database unreachable": (error(503, "PGRST000", "Database connection error"), 2, 2),
    "connection failed under the call": (error(503, "PGRST001", "Database client error"), 1, 1),
    "pool wait timed out": (error(504, "PGRST003", "Timed out acquiring connection"), 1, 1),
    "too many connections": (error(503, "53300", "too many connections"), 1, 1),
    "the gateway's 502 page": (Answer(502, b"<html>Bad gateway</html>", "text/html"), 1, 1),
    "the gateway's 520, empty": (Answer(520, b"", "text/plain"), 1, 1),
    "a non-JSON 400": (Answer(400, b"upstream connect error", "text/plain"), 1, 1),
    "the gateway's JSON 503": (error(503, None, "upstream unavailable"), 1, 1),
    "the connection dropped": (DROP, 2, 1),
}


@pytest.mark.parametrize("case", sorted(UNAVAILABLE))
@pytest.mark.parametrize("repeatable", [True, False])
def test_unavailable_answers_are_store_unavailable_retried_only_where_safe(
    postgrest: tuple[str, Recorded], case: str, repeatable: bool
) -> None:
    url, recorded = postgrest
    answer, when_repeatable, otherwise = UNAVAILABLE[case]
    recorded.script = [answer, answer]
    transport = PostgrestTransport(url, SERVICE_KEY, timeout_s=2)
    with pytest.raises(StoreUnavailable):
        transport.rpc("gateway_begin_send", {"p_body": "hi"}, repeatable=repeatable)
    assert len(recorded.requests) == (when_repeatable if repeatable else otherwise)


def test_a_retried_call_returns_the_second_answer(postgrest: tuple[str, Recorded]) -> None:
    url, recorded = postgrest
    recorded.script = [error(500, "40P01", "deadlock detected")]
    recorded.answer = {"changed": True}
    transport = PostgrestTransport(url, SERVICE_KEY)
    assert transport.rpc("gateway_apply_ack", {"p_status": "read"}) == {"changed": True}
    assert len(recorded.requests) == 2 and transport.round_trips == 2


@pytest.mark.parametrize(
    "answer",
    [
        error(400, "P0001", "a SQL function refused"),
        error(403, "42501", "permission denied for function"),
        error(401, None, "Invalid API key"),
        error(500, "XX000", "internal error"),
    ],
    ids=["raise", "grant", "gateway's bad key", "internal"],
)
def test_other_errors_are_not_unavailability_and_are_sent_once(
    postgrest: tuple[str, Recorded], answer: Answer
) -> None:
    url, recorded = postgrest
    recorded.script = [answer]
    with pytest.raises(APIError):
        PostgrestTransport(url, SERVICE_KEY).rpc("gateway_hosts", {})
    assert len(recorded.requests) == 1


def test_a_call_that_queued_deliveries_says_so_through_its_header(
    postgrest: tuple[str, Recorded],
) -> None:
    """PostgREST turns ``response.headers`` (set by gateway_notify) into a header; a key's
    request goes as one RPC to gateway_keyed_call, as the service."""
    import contextvars

    from wa_gateway.keys.gate import KeyCheck, KeyedTransport, owe
    from wa_gateway.store.transport import deliveries_queued

    url, recorded = postgrest
    recorded.script = [
        Answer(200, b"true"),
        Answer(200, b"true", headers={"x-gateway-deliveries": "queued"}),
        Answer(200, b'{"result": {"stored": true}}'),
    ]
    transport = PostgrestTransport(url, SERVICE_KEY, publishable_key=PUBLISHABLE_KEY)

    def request() -> tuple[bool, bool]:
        transport.rpc("gateway_record_media", {"p_message_id": "x"})
        first = deliveries_queued.get()
        transport.rpc("gateway_record_media", {"p_message_id": "y"})
        return first, deliveries_queued.get()

    assert contextvars.copy_context().run(request) == (False, True)
    keyed = KeyedTransport(transport, burst=5, rate_per_s=1)

    def keyed_request() -> object:
        owe(KeyCheck("a" * 64, SESSION_ROW["user_id"], "send"))
        return keyed.rpc("gateway_ingest_event", {"p_session_name": "x"})

    assert contextvars.copy_context().run(keyed_request) == {"stored": True}
    last = recorded.requests[-1]
    assert last["path"] == "/rest/v1/rpc/gateway_keyed_call"
    assert last["headers"]["authorization"] == f"Bearer {SERVICE_KEY}"
    assert last["body"]["p_call"]["function"] == "gateway_ingest_event"
    assert last["body"]["p_call"]["params"] == {"p_session_name": "x"}
    assert last["body"]["p_call"]["scope"] == "send" and last["body"]["p_call"]["count"]
