"""status: the caller's session; ``?refresh=true`` first puts it right from its host (the
reconcile of that one session: its state, missed messages and acks)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import runtime, services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.presenters import session_json
from wa_gateway.sessions.accounts import stored_session
from wa_gateway.validation import parse_status_request

# The host is only called for ?refresh=true; its client is built on first use.
app = FunctionApp("status", needs=("store", "tokens", "host", "crypto"), key_scope="read")


@app.get("/")
def read_status() -> Response:
    caller = app.caller()
    request = parse_status_request(app.query("refresh"), app.query("account"))
    if request.refresh:
        session = services.reconciler().refresh(caller, request.account)
    else:
        session = stored_session(runtime.store(), caller, request.account)
    return json_response(200, {"session": session_json(session)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
