"""api-keys: a user's API keys and event endpoints (a signed-in user only: keys cannot make
keys). Keys: ``POST /``, ``GET /``, ``DELETE /<id>``. Endpoints: ``POST /endpoints``,
``GET /endpoints``, ``DELETE /endpoints/<id>``, ``GET /endpoints/<id>/deliveries``,
``POST /endpoints/<id>/replay``."""

import uuid
from typing import Any

from aws_lambda_powertools.event_handler import Response

from wa_gateway import services
from wa_gateway.api import FunctionApp, json_response
from wa_gateway.delivery.endpoints import parse_delivery_query, parse_new_endpoint, parse_replay
from wa_gateway.errors import NotFound
from wa_gateway.keys.service import parse_new_key

app = FunctionApp("api-keys", needs=("store", "tokens", "crypto"))


@app.post("/")
def create_key() -> Response:
    caller = app.caller()
    request = parse_new_key(app.json_object())
    return json_response(201, {"key": services.api_keys().create(caller.user_id, request)})


@app.get("/")
def list_keys() -> Response:
    caller = app.caller()
    return json_response(200, {"keys": services.api_keys().owned(caller.user_id)})


@app.delete("/<key_id>")
def revoke_key(key_id: str) -> Response:
    caller = app.caller()
    key = services.api_keys().revoke(caller.user_id, known_id(key_id, "API key"))
    return json_response(200, {"key": found(key, "API key")})


@app.post("/endpoints")
def create_endpoint() -> Response:
    caller = app.caller()
    request = parse_new_endpoint(app.json_object(), allow_local=app.settings.delivery.allow_local)
    return json_response(201, {"endpoint": services.endpoints().create(caller.user_id, request)})


@app.get("/endpoints")
def list_endpoints() -> Response:
    caller = app.caller()
    return json_response(200, {"endpoints": services.endpoints().owned(caller.user_id)})


@app.delete("/endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id: str) -> Response:
    caller = app.caller()
    endpoint = services.endpoints().delete(caller.user_id, known_id(endpoint_id, "endpoint"))
    return json_response(200, {"endpoint": found(endpoint, "endpoint")})


@app.get("/endpoints/<endpoint_id>/deliveries")
def list_deliveries(endpoint_id: str) -> Response:
    caller = app.caller()
    query = parse_delivery_query(app.query("status"), app.query("before"), app.query("limit"))
    deliveries = services.endpoints().deliveries(
        caller.user_id, known_id(endpoint_id, "endpoint"), query
    )
    return json_response(200, {"deliveries": found(deliveries, "endpoint")})


@app.post("/endpoints/<endpoint_id>/replay")
def replay(endpoint_id: str) -> Response:
    caller = app.caller()
    since = parse_replay(app.json_object())
    replayed = services.endpoints().replay(caller.user_id, known_id(endpoint_id, "endpoint"), since)
    return json_response(200, {"replayed": found(replayed, "endpoint")})


def known_id(value: str, what: str) -> str:
    """An id from the path: another user's, or not an id at all, is the same 404."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"You have no {what} with this id.") from None


def found[Found](value: Found | None, what: str) -> Found:
    """What the call found of the caller's ``what``; None (none of theirs) is the 404."""
    if value is None:
        raise NotFound(f"You have no {what} with this id.")
    return value


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(event, context)
