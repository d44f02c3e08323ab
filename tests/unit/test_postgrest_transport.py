"""The supabase-py (PostgREST) transport: the HTTP requests it makes, seen by a local server
that answers as PostgREST would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.processes import free_port
from wa_gateway.caller import Caller
from wa_gateway.errors import StoreUnavailable
from wa_gateway.records import SessionUpdate
from wa_gateway.store import Store
from wa_gateway.store.postgrest import PostgrestTransport

SERVICE_KEY = "service-role-key-for-tests"
SESSION_ROW = {
    "id": "0b7c5f7e-0000-4000-8000-000000000001",
    "user_id": "0b7c5f7e-0000-4000-8000-0000000000aa",
    "session_id": "user_0b7c5f7e-0000-4000-8000-0000000000aa",
    "status": "pairing",
    "qr_code": "2@q",
}


@dataclass
class Recorded:
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    answer: Any = None


@pytest.fixture()
def postgrest() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            recorded.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(self.rfile.read(length) or b"null"),
                }
            )
            payload = json.dumps(recorded.answer).encode()
            self.send_response(recorded.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", recorded
    server.shutdown()
    server.server_close()


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
    assert request["body"]["p_session_name"] == SESSION_ROW["session_id"]
    assert request["body"]["p_status"] == "connected"
    assert request["body"]["p_qr_first_ttl_s"] == 60


def test_user_reads_forward_the_users_own_token(postgrest: tuple[str, Recorded]) -> None:
    url, recorded = postgrest
    recorded.answer = SESSION_ROW
    store = Store(PostgrestTransport(url, SERVICE_KEY))
    caller = Caller(user_id=SESSION_ROW["user_id"], claims={}, token="user.jwt.token")
    session = store.get_session(caller, SESSION_ROW["session_id"])
    assert session is not None and session.qr_code == "2@q"
    request = recorded.requests[0]
    assert request["path"] == "/rest/v1/rpc/gateway_get_session"
    assert request["headers"]["authorization"] == "Bearer user.jwt.token"
    assert request["headers"]["apikey"] == SERVICE_KEY
    assert request["body"] == {"p_session_name": SESSION_ROW["session_id"]}


def test_one_client_serves_service_and_user_calls_without_mixing_tokens(
    postgrest: tuple[str, Recorded],
) -> None:
    url, recorded = postgrest
    recorded.answer = None
    transport = PostgrestTransport(url, SERVICE_KEY)
    caller = Caller(user_id=SESSION_ROW["user_id"], claims={}, token="user.jwt.token")
    transport.rpc("gateway_get_session", {"p_session_name": "x"}, caller=caller)
    transport.rpc("gateway_apply_host_state", {"p_session_name": "x", "p_status": "connected"})
    auths = [r["headers"]["authorization"] for r in recorded.requests]
    assert auths == ["Bearer user.jwt.token", f"Bearer {SERVICE_KEY}"]
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
