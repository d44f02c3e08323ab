"""Realistic invocations: function-URL events (payload 2.0, built by ``local.function_url``
exactly as the local gateway builds them) and the WPPConnect host's webhook bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from local.function_url import LambdaContext, build_event

DOMAIN = "abcdefghij.lambda-url.eu-west-1.on.aws"
ORIGIN = "https://app.example.com"
# What the real host sends with every qrcode event: its PNG of the QR (about 6 KB), in raw
# base64 without the data: prefix.
QR_PNG_BASE64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(6000)).decode()


def http_event(
    method: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: Any = None,
    query: str = "",
) -> dict[str, Any]:
    raw = None if body is None else json.dumps(body).encode()
    all_headers = [("host", DOMAIN), ("user-agent", "Mozilla/5.0"), *(headers or [])]
    if raw is not None:
        all_headers.append(("content-type", "application/json"))
    return build_event(
        method=method,
        path="/",
        raw_query=query,
        headers=all_headers,
        body=raw,
        source_ip="203.0.113.10",
        domain=DOMAIN,
    )


def browser_event(
    method: str, token: str, body: Any = None, *, extra: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    headers = [("authorization", f"Bearer {token}"), ("origin", ORIGIN), *(extra or [])]
    return http_event(method, headers=headers, body=body)


def status_event(token: str) -> dict[str, Any]:
    return browser_event("GET", token)


def start_event(token: str) -> dict[str, Any]:
    return browser_event("POST", token, {"method": "qr"})


def send_event(token: str, text: str, phone: str = "+55 11 98765-4321") -> dict[str, Any]:
    return browser_event(
        "POST",
        token,
        {"phone": phone, "message": text, "contactName": "João"},
        extra=[("idempotency-key", str(uuid.uuid4()))],
    )


def disconnect_event(token: str) -> dict[str, Any]:
    return browser_event("POST", token)


def scheduled_event() -> dict[str, Any]:
    return {"source": "schedule", "job": "purge"}


def context(function: str, event: dict[str, Any], timeout_ms: int = 30_000) -> LambdaContext:
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    return LambdaContext(function_name=function, aws_request_id=request_id, timeout_ms=timeout_ms)


# --- the host's webhooks ---------------------------------------------------------------


def session_proof(secret: str, session: str) -> str:
    """The URL proof start-session registers (docs/architecture.md: "The webhook's proof")."""
    return hmac.new(secret.encode(), session.encode(), hashlib.sha256).hexdigest()


def webhook_by_url(secret: str, session: str, body: dict[str, Any]) -> dict[str, Any]:
    """As a stock wppconnect-server posts: the session's signed URL, no header."""
    query = f"session={session}&verify={session_proof(secret, session)}"
    return http_event("POST", headers=[("user-agent", "axios/1.7.7")], body=body, query=query)


def webhook_by_header(secret: str, body: dict[str, Any]) -> dict[str, Any]:
    """As a patched host or a proxy posts: ``x-verify``."""
    return http_event("POST", headers=[("x-verify", secret)], body=body)


def new_urlcode() -> str:
    """A login ref shaped like WhatsApp's (as the simulator makes them)."""

    def b64(n: int) -> str:
        return base64.b64encode(secrets.token_bytes(n)).decode()

    return f"2@{b64(66)},{b64(32)},{b64(32)},{b64(16)}"


def qrcode_body(session: str) -> dict[str, Any]:
    return {
        "event": "qrcode",
        "session": session,
        "qrcode": QR_PNG_BASE64,
        "urlcode": new_urlcode(),
        "attempt": 2,
    }


def status_find_body(session: str, status: str = "inChat") -> dict[str, Any]:
    return {"event": "status-find", "session": session, "status": status}


def onmessage_body(session: str, account_phone: str, sender_phone: str, n: int) -> dict[str, Any]:
    jid = f"{sender_phone}@c.us"
    return {
        "event": "onmessage",
        "session": session,
        "id": f"false_{jid}_3A{secrets.token_hex(9).upper()}",
        "body": f"Oi! Mensagem {n}, tudo bem?",
        "type": "chat",
        "t": int(time.time()),
        "notifyName": "Ana",
        "from": jid,
        "to": f"{account_phone}@c.us",
        "fromMe": False,
        "isGroupMsg": False,
        "chatId": jid,
        "sender": {"id": jid, "pushname": "Ana", "isMe": False},
        "ack": 1,
    }


def onack_body(
    session: str, wpp_id: str, ack: int, account_phone: str, to_phone: str, text: str
) -> dict[str, Any]:
    parts = wpp_id.split("_", 2)
    return {
        "event": "onack",
        "session": session,
        "id": {
            "fromMe": True,
            "remote": f"{to_phone}@c.us",
            "id": parts[-1],
            "_serialized": wpp_id,
        },
        "ack": ack,
        "body": text,
        "type": "chat",
        "from": f"{account_phone}@c.us",
        "to": f"{to_phone}@c.us",
        "t": int(time.time()),
    }
