"""qr-webhook: events from the WPPConnect host (QR codes, status changes, ...)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import runtime, webhook_auth
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.errors import ApiError, InvalidRequest
from wa_gateway.events import apply_event
from wa_gateway.observability import logger

# Lambda's own limit for a function URL request; media events carry whole files in base64.
MAX_EVENT_BYTES = 6 * 1024 * 1024

app = FunctionApp("qr-webhook", needs=("store", "webhook"), max_body_bytes=MAX_EVENT_BYTES)


@app.post("/")
def receive_event() -> Response:
    try:
        body = app.json_object()
    except ApiError:
        authenticate(None)  # an unproven caller learns nothing about its body
        raise
    body_session = body.get("session")
    session_name = authenticate(body_session if isinstance(body_session, str) else None)
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidRequest("'event' must be a non-empty string.")
    changed = bool(session_name) and apply_event(
        runtime.store(), str(session_name), body, runtime.event_policy()
    )
    logger.info("host event", extra={"event": event[:64], "changed": changed})
    return json_response(200, {"ok": True})


def authenticate(body_session: str | None) -> str | None:
    return webhook_auth.authenticate(
        app.settings.webhook_verify_tokens,
        header_token=app.header("x-verify"),
        query_session=app.query("session"),
        query_verify=app.query("verify"),
        body_session=body_session,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
