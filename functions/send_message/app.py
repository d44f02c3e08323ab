"""send-message: send a WhatsApp text or file from the caller's connected session, to a contact
or a group, maybe quoting a message, idempotently, now or (a text) at a time; ``POST /cancel``
cancels a scheduled one; ``/react``, ``/edit``, ``/delete`` change a message on WhatsApp and
``/read`` marks a conversation read."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import runtime, services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.auth.caller import Caller
from wa_gateway.message_requests import (
    parse_cancel_request,
    parse_delete_request,
    parse_edit_request,
    parse_react_request,
    parse_read_request,
    parse_send_request,
)
from wa_gateway.messaging import send_options
from wa_gateway.presenters import message_json, read_json
from wa_gateway.validation import parse_idempotency_key

# Lambda's own limit for a function URL request: a file of 4 MiB sent inline, as base64.
MAX_REQUEST_BYTES = 6 * 1024 * 1024

app = FunctionApp(
    "send-message",
    needs=("store", "tokens", "host", "crypto", "media"),
    max_body_bytes=MAX_REQUEST_BYTES,
    key_scope="send",
)


def keyed[Request](
    parse: Callable[[dict[str, Any]], Request],
) -> tuple[Caller, Request, str | None]:
    """The caller, their body as ``parse`` reads it, and the request's Idempotency-Key (in
    that order: who calls is checked before anything they sent)."""
    caller = app.caller()
    key = parse_idempotency_key(app.header("idempotency-key"))
    return caller, parse(app.json_object()), key


@app.post("/")
def send_message() -> Response:
    caller, request, key = keyed(parse_send_request)
    message = services.messages().send(caller, request, idempotency_key=key)
    return json_response(
        202 if message.status == "scheduled" else 200, {"message": message_json(message)}
    )


@app.post("/cancel")
def cancel_message() -> Response:
    caller = app.caller()
    message_id = parse_cancel_request(app.json_object())
    message = send_options.cancel(runtime.store(), caller, message_id)
    return json_response(200, {"message": message_json(message)})


@app.post("/react")
def react() -> Response:
    caller, request, key = keyed(parse_react_request)
    message = services.actions().react(caller, request, key)
    return json_response(200, {"message": message_json(message), "emoji": request.emoji})


@app.post("/edit")
def edit() -> Response:
    message = services.actions().edit(*keyed(parse_edit_request))
    return json_response(200, {"message": message_json(message)})


@app.post("/delete")
def delete() -> Response:
    message = services.actions().delete(*keyed(parse_delete_request))
    return json_response(200, {"message": message_json(message)})


@app.post("/read")
def read() -> Response:
    result = services.actions().read(*keyed(parse_read_request))
    return json_response(200, read_json(result.chat, result.marked))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
