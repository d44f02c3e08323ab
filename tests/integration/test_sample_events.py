"""The sample events in events/ (for ``sam local invoke -e``) are real function-URL events:
each handler, imported in-process as Lambda imports it, serves them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local.function_url import LambdaContext
from local.gateway import ROOT
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user
from wa_gateway.auth.webhook_proof import session_proof

EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"


def sample(name: str, **replace: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for placeholder, value in replace.items():
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


def invoke(handler: Handler, event: dict[str, Any]) -> tuple[int, Any]:
    result = handler(event, LambdaContext("test", event["requestContext"]["requestId"]))
    return result["statusCode"], json.loads(result["body"])


def test_every_sample_event_parses_as_payload_2() -> None:
    files = sorted(EVENTS.glob("*.json"))
    assert files
    for path in files:
        event = json.loads(path.read_text())
        if event.get("source") == "schedule":  # a schedule's Input, not a URL event
            job = path.name.removesuffix("_scheduled.json")
            assert (FUNCTIONS / job / "app.py").exists(), path.name
            assert event == {"source": "schedule", "job": job}, path.name
            continue
        assert event["version"] == "2.0", path.name
        assert event["requestContext"]["stage"] == "$default", path.name


def test_the_health_sample(handlers: dict[str, Handler]) -> None:
    status, body = invoke(handlers["status"], sample("health.json"))
    assert status == 200 and body["status"] == "ok"


def test_the_start_status_and_webhook_samples(
    handlers: dict[str, Handler], gateway: Gateway
) -> None:
    user = gateway.new_user("samples")
    bearer = {"<a Supabase access token>": gateway.token_for(user)}
    status, body = invoke(handlers["start-session"], sample("start_session.json", **bearer))
    assert status == 200 and body["session"]["status"] == "pairing"
    name = body["session"]["name"]

    status, body = invoke(handlers["status"], sample("status.json", **bearer))
    assert status == 200 and body["session"]["name"] == name

    secret = gateway.local_secrets.verify_token
    placeholder_session = "user_00000000-0000-4000-8000-000000000000"
    by_url = sample(
        "qr_webhook_qrcode.json",
        **{
            placeholder_session: name,
            "<HMAC-SHA256(QR_WEBHOOK_VERIFY_TOKEN, session) hex>": session_proof(secret, name),
        },
    )
    assert invoke(handlers["qr-webhook"], by_url) == (200, {"ok": True})
    by_header = sample(
        "qr_webhook_status_find.json",
        **{placeholder_session: name, "<QR_WEBHOOK_VERIFY_TOKEN>": secret},
    )
    assert invoke(handlers["qr-webhook"], by_header) == (200, {"ok": True})
    status, body = invoke(handlers["status"], sample("status.json", **bearer))
    assert body["session"]["status"] == "connected"


def test_the_messaging_samples(
    handlers: dict[str, Handler], gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "sample-msg")
    bearer = {"<a Supabase access token>": token}
    status, body = invoke(handlers["send-message"], sample("send_message.json", **bearer))
    assert status == 200 and body["message"]["status"] in ("sent", "delivered", "read")
    status, again = invoke(handlers["send-message"], sample("send_message.json", **bearer))
    assert again["message"]["id"] == body["message"]["id"]  # the sample's Idempotency-Key

    secret = {"<QR_WEBHOOK_VERIFY_TOKEN>": gateway.local_secrets.verify_token}
    placeholder = {"user_00000000-0000-4000-8000-000000000000": name}
    for event in ("qr_webhook_onmessage.json", "qr_webhook_onack.json"):
        assert invoke(handlers["qr-webhook"], sample(event, **secret, **placeholder)) == (
            200,
            {"ok": True},
        )
    with psycopg.connect(database) as conn:
        inbound = conn.execute(
            "select body from whatsapp_messages where user_id = %s and direction = 'inbound'",
            (user.id,),
        ).fetchall()
    assert inbound == [("oi",)]

    status, body = invoke(handlers["status"], sample("status_refresh.json", **bearer))
    assert status == 200 and body["session"]["status"] == "connected"
    status, body = invoke(handlers["disconnect"], sample("disconnect.json", **bearer))
    assert status == 200 and body["session"]["status"] == "disconnected"


def test_the_scheduled_purge_sample(handlers: dict[str, Handler]) -> None:
    event = json.loads((EVENTS / "purge_scheduled.json").read_text())
    context = LambdaContext("purge", "c0ffee00-0000-4000-8000-00000000000f", timeout_ms=300_000)
    report = handlers["purge"](event, context)
    assert report["complete"] is True and report["batches"] >= 1
    assert {"qr_cleared", "sessions_deleted", "host_sessions_cleared", "host_errors"} <= set(report)


def test_the_api_keys_samples_and_the_scheduled_delivery(
    handlers: dict[str, Handler], gateway: Gateway
) -> None:
    bearer = {"<a Supabase access token>": gateway.token_for(gateway.new_user("sample-keys"))}
    status, body = invoke(handlers["api-keys"], sample("api_keys_create.json", **bearer))
    assert status == 201 and body["key"]["secret"].startswith("wak_")
    assert body["key"]["scopes"] == ["send", "read"]
    status, body = invoke(handlers["api-keys"], sample("api_keys_endpoint_create.json", **bearer))
    assert status == 201 and body["endpoint"]["secret"].startswith("whsec_")
    endpoint = {"<an endpoint id>": body["endpoint"]["id"]}
    status, body = invoke(
        handlers["api-keys"], sample("api_keys_deliveries.json", **bearer, **endpoint)
    )
    assert (status, body) == (200, {"deliveries": []})

    event = json.loads((EVENTS / "delivery_scheduled.json").read_text())
    context = LambdaContext("delivery", "c0ffee00-0000-4000-8000-000000000023", timeout_ms=60_000)
    report = handlers["delivery"](event, context)
    assert {"endpoints", "delivered", "failed_attempts", "forgotten"} <= set(report)


def test_the_pairing_code_sample(handlers: dict[str, Handler], gateway: Gateway) -> None:
    bearer = {"<a Supabase access token>": gateway.token_for(gateway.new_user("sample-code"))}
    status, body = invoke(handlers["start-session"], sample("start_session_code.json", **bearer))
    assert status == 200 and body["session"]["pairing_code"]


def test_a_sample_with_its_placeholder_token_is_refused(handlers: dict[str, Handler]) -> None:
    status, body = invoke(handlers["status"], sample("status.json"))
    assert status == 401 and body["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(
    ("folder", "missing"),
    [
        ("status", "DATABASE_URL"),
        ("start_session", "WPP_SECRET_KEY"),
        ("qr_webhook", "QR_WEBHOOK_VERIFY_TOKEN"),
        ("start_session", "ENCRYPTION_KEY"),
    ],
)
def test_a_missing_setting_stops_the_function_at_start_up_with_one_clear_line(
    gateway: Gateway, folder: str, missing: str
) -> None:
    env = {k: v for k, v in {**os.environ, **gateway.env}.items() if k != missing}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "shared"), str(ROOT)])
    code = f"from local.gateway import load_handler; load_handler({folder!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and missing in lines[0], output
    assert "Traceback" not in output
    for secret_name in ("SUPABASE_JWT_SECRET", "ENCRYPTION_KEY", "WPP_SECRET_KEY"):
        if secret_name != missing:
            assert gateway.env[secret_name] not in output


def test_events_folder_has_a_sample_per_function() -> None:
    names = {p.stem for p in Path(EVENTS).glob("*.json")}
    folders = [p.parent.name for p in FUNCTIONS.glob("*/app.py")]
    assert len(folders) >= 8
    for folder in folders:
        assert any(n.startswith(folder) for n in names), folder
