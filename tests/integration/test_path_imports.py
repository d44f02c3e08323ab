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


# Each path's first request: a module it must load (the path ran), and what it must not.
PATHS = {
    # A status read: nothing of the host, messaging or events, nor the webhook's records; no
    # uuid (only a cancel reads a message id).
    "status": (
        "wa_gateway.sessions.accounts",
        (
            "wa_gateway.host",
            "wa_gateway.messaging",
            "wa_gateway.events",
            "wa_gateway.event_records",
            "wa_gateway.sessions.service",
            "uuid",
            *NEVER,
        ),
    ),
    # A webhook event: nothing of the host, messaging or starting sessions.
    "qr_webhook": (
        "wa_gateway.events.service",
        ("wa_gateway.host", "wa_gateway.messaging", "wa_gateway.sessions.service", *NEVER),
    ),
    # A text send: nothing of starting sessions, nor the webhook's proof; no uuid.
    "send_message": (
        "wa_gateway.messaging.service",
        (
            "wa_gateway.sessions.service",
            "wa_gateway.sessions.qr",
            "wa_gateway.auth.webhook_proof",
            "uuid",
            *HTTP_LIBRARIES,
            *NEVER,
        ),
    ),
}


@pytest.mark.parametrize("function", list(PATHS))
def test_a_first_request_loads_only_what_its_path_uses(
    gateway: Gateway, linked: tuple[str, str], function: str
) -> None:
    token, name = linked
    method, headers, body = {
        "status": ("GET", {"authorization": f"Bearer {token}"}, None),
        "qr_webhook": (
            "POST",
            {
                "x-verify": gateway.env["QR_WEBHOOK_VERIFY_TOKEN"],
                "content-type": "application/json",
            },
            {"event": "status-find", "session": name, "status": "inChat"},
        ),
        "send_message": (
            "POST",
            {"authorization": f"Bearer {token}", "content-type": "application/json"},
            {"phone": "5511987654321", "message": "first"},
        ),
    }[function]
    ran, absent = PATHS[function]
    loaded = first_request(gateway, function, method, headers, body)
    assert ran in loaded
    assert under(loaded, *absent) == []


def test_starting_and_cancelling_a_session_load_no_http_library(gateway: Gateway) -> None:
    """The two other functions that call the host, on their first request, call it with the
    layer's own client."""
    headers = {"authorization": f"Bearer {gateway.token_for(gateway.new_user('imports-http'))}"}
    for function in ("start_session", "disconnect"):
        loaded = first_request(gateway, function, "POST", headers)
        assert "wa_gateway.host.client" in loaded, function  # the host was called
        assert under(loaded, *HTTP_LIBRARIES) == [], function
