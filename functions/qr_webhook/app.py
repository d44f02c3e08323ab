"""qr-webhook: events from the WPPConnect host (QR codes, status changes, ...)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.auth import webhook_proof
from wa_gateway.errors import ApiError, InvalidRequest
from wa_gateway.observability import logger

# Lambda's own limit for a function URL request; media events carry whole files in base64.
MAX_EVENT_BYTES = 6 * 1024 * 1024

app = FunctionApp("qr-webhook", needs=("store", "webhook", "media"), max_body_bytes=MAX_EVENT_BYTES)


@app.post("/")
def receive_event() -> Response:
    try:
        body = app.json_object()
    except ApiError:
        authenticate(None)  # an unproven caller learns nothing about its body
        raise
    body_session = body.get("session")
    sender = authenticate(body_session if isinstance(body_session, str) else None)
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidRequest("'event' must be a non-empty string.")
    result = services.events().apply(sender.session_name, body, sender.host_id, sender.attempt)
    outcome = {"stored": result.stored, "changed": result.changed, "reason": result.reason}
    # The event log in the database keeps every stored event; the function's log says at INFO
    # only what was dropped, so a busy host doesn't double the log volume; events of no use
    # (presence, reactions...) come all the time and are not worth a line either.
    log = logger.debug if outcome["stored"] or result.reason == "unused" else logger.info
    log("host event", extra={"event": event[:64], **outcome})
    return json_response(200, {"ok": True})


def authenticate(body_session: str | None) -> webhook_proof.WebhookCaller:
    return webhook_proof.authenticate(
        app.settings.webhook_verify_tokens,
        header_token=app.header("x-verify"),
        query_session=app.query("session"),
        query_verify=app.query("verify"),
        query_host=app.query("host"),
        query_attempt=app.query("attempt"),
        body_session=body_session,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
