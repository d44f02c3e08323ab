"""start-session: link the caller's WhatsApp (QR or pairing code), or return it as it is."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.presenters import session_json
from wa_gateway.validation import parse_start_request

app = FunctionApp(
    "start-session",
    needs=("store", "tokens", "host", "webhook", "crypto"),
    key_scope="sessions",
)


@app.post("/")
def start_session() -> Response:
    caller = app.caller()
    request = parse_start_request(app.json_object(required=False))
    session = services.sessions().start(
        caller, method=request.method, phone=request.phone, account=request.account
    )
    return json_response(200, {"session": session_json(session)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
