"""disconnect: log the caller's WhatsApp out on the host and mark the session disconnected."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.presenters import session_json
from wa_gateway.validation import parse_disconnect_request

app = FunctionApp("disconnect", needs=("store", "tokens", "host", "crypto"), key_scope="sessions")


@app.post("/")
def disconnect() -> Response:
    caller = app.caller()
    account = parse_disconnect_request(app.json_object(required=False))
    session = services.sessions().disconnect(caller, account)
    return json_response(200, {"session": session_json(session)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
