"""Each function's first request loads only the layer's packages its path uses (a cold start
pays for every module imported): a fresh interpreter loads the function as Lambda does, serves
one request against the local stack, and lists the layer's modules it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.function_url import build_event
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user

ROOT = Path(__file__).resolve().parents[2]
# Nothing but the function is imported in that interpreter: the event comes built.
FIRST_REQUEST = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
class Context:
    function_name, aws_request_id, memory_limit_in_mb = "first", "first", 256
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:first"
    def get_remaining_time_in_millis(self):
        return 20000
answer = app.handler(json.loads(sys.argv[2]), Context())
loaded = sorted(
    name for name in sys.modules
    if name.startswith("wa_gateway.") or name in ("uuid", "requests", "urllib3")
)
print(json.dumps({"status": answer["statusCode"], "loaded": loaded}))
"""
# What no path below needs: the scheduled passes and their records, and files (the messages
# here carry none).
NEVER = ("wa_gateway.jobs", "wa_gateway.pass_records", "wa_gateway.media")
# The layer's HTTP is the standard library's: these cost a cold start several times as much.
HTTP_LIBRARIES = ("requests", "urllib3")


def first_request(
    gateway: Gateway, function: str, method: str, headers: dict[str, str], body: Any = None
) -> list[str]:
    """The layer's modules a fresh interpreter imported to serve one request of ``function``."""
    env = {
        **os.environ,
        **gateway.env,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    }
    event = build_event(
        method=method,
        path="/",
        raw_query="",
        headers=list(headers.items()),
        body=None if body is None else json.dumps(body).encode(),
    )
    app = ROOT / "functions" / function / "app.py"
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST, str(app), json.dumps(event)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200, answer
    loaded: list[str] = answer["loaded"]
    return loaded


def under(loaded: list[str], *packages: str) -> list[str]:
    return [m for m in loaded if any(m == p or m.startswith(p + ".") for p in packages)]


@pytest.fixture(scope="module")
def linked(gateway: Gateway, simulator: Simulator) -> tuple[str, str]:
    """A linked user's access token and session name."""
    _, token, name = connected_user(gateway, simulator, "imports")
    return token, name


def test_a_status_read_loads_nothing_of_the_host_messaging_or_events(
    gateway: Gateway, linked: tuple[str, str]
) -> None:
    token, _ = linked
    loaded = first_request(gateway, "status", "GET", {"authorization": f"Bearer {token}"})
    assert "wa_gateway.sessions.accounts" in loaded  # the path ran
    assert under(loaded, "wa_gateway.host", "wa_gateway.messaging", "wa_gateway.events") == []
    assert under(loaded, "wa_gateway.sessions.service", *NEVER) == []
    assert under(loaded, "wa_gateway.event_records") == []  # the webhook's
    assert "uuid" not in loaded  # only a cancel reads a message id


def test_a_webhook_event_loads_nothing_of_the_host_or_messaging(
    gateway: Gateway, linked: tuple[str, str]
) -> None:
    _, name = linked
    loaded = first_request(
        gateway,
        "qr_webhook",
        "POST",
        {"x-verify": gateway.env["QR_WEBHOOK_VERIFY_TOKEN"], "content-type": "application/json"},
        {"event": "status-find", "session": name, "status": "inChat"},
    )
    assert "wa_gateway.events.service" in loaded
    assert under(loaded, "wa_gateway.host", "wa_gateway.messaging", *NEVER) == []
    assert under(loaded, "wa_gateway.sessions.service") == []


def test_a_text_send_loads_nothing_of_starting_sessions(
    gateway: Gateway, linked: tuple[str, str]
) -> None:
    token, _ = linked
    loaded = first_request(
        gateway,
        "send_message",
        "POST",
        {"authorization": f"Bearer {token}", "content-type": "application/json"},
        {"phone": "5511987654321", "message": "first"},
    )
    assert "wa_gateway.messaging.service" in loaded
    assert under(loaded, "wa_gateway.sessions.service", "wa_gateway.sessions.qr", *NEVER) == []
    assert under(loaded, "wa_gateway.auth.webhook_proof") == []
    assert "uuid" not in loaded
    assert under(loaded, *HTTP_LIBRARIES) == []


def test_starting_and_cancelling_a_session_load_no_http_library(gateway: Gateway) -> None:
    """The two other functions that call the host, on their first request, call it with the
    layer's own client."""
    headers = {"authorization": f"Bearer {gateway.token_for(gateway.new_user('imports-http'))}"}
    for function in ("start_session", "disconnect"):
        loaded = first_request(gateway, function, "POST", headers)
        assert "wa_gateway.host.client" in loaded, function  # the host was called
        assert under(loaded, *HTTP_LIBRARIES) == [], function
