"""status: the caller's session as stored, read under their identity."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import runtime
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.presenters import session_json

app = FunctionApp("status", needs=("store", "tokens"))


@app.get("/")
def read_status() -> Response:
    caller = app.caller()
    session = runtime.sessions().status(caller)
    return json_response(200, {"session": session_json(session)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
