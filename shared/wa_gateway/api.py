"""The HTTP face every function shares: the function-URL resolver, the error contract in one
place, ``GET /health``, request-body parsing and the caller's identity.

A handler module does::

    app = FunctionApp("status", needs=("store", "tokens"))

    @app.get("/")
    def read_status() -> Response: ...

    handler = app.handler
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime, services
from wa_gateway.auth.caller import API_KEY_PREFIX, Caller
from wa_gateway.auth.tokens import bearer_token
from wa_gateway.errors import (
    ApiError,
    InsufficientScope,
    InvalidJson,
    InvalidRequest,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
)
from wa_gateway.needs import Need
from wa_gateway.observability import logger, metrics

MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.body(), error.headers)


class FunctionApp:
    """One Lambda function: its routes, its handler, and the request helpers routes use."""

    def __init__(
        self,
        name: str,
        *,
        needs: Iterable[Need] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        key_scope: str | None = None,
    ):
        """``key_scope``: the API key scope its routes need (``send``, ``read``,
        ``sessions``); None: only a user's access token will do."""
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.key_scope = key_scope
        self._key_request = False
        self.settings = runtime.configure(name, needs)
        self.resolver = LambdaFunctionUrlResolver()
        self._one_at_a_time = threading.Lock()
        self.resolver.exception_handler(ApiError)(self._on_api_error)
        self.resolver.exception_handler(Exception)(self._on_unexpected_error)
        self.resolver.not_found(self._on_not_found)
        self.resolver.get("/health")(self._health)
        self.get = self.resolver.get
        self.post = self.resolver.post
        self.delete = self.resolver.delete
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = (
            logger.inject_lambda_context(
                correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL, clear_state=True
            )(metrics.log_metrics(capture_cold_start_metric=True)(self._handle))
        )

    # --- request helpers ----------------------------------------------------------------

    @property
    def event(self) -> Any:
        return self.resolver.current_event

    def header(self, name: str) -> str | None:
        value = self.event.headers.get(name.lower())
        return value if isinstance(value, str) else None

    def query(self, name: str) -> str | None:
        params = self.event.query_string_parameters or {}
        value = params.get(name)
        return value if isinstance(value, str) else None

    def caller(self) -> Caller:
        """The signed-in user, from ``Authorization: Bearer <Supabase access token>``, or the
        owner of ``Authorization: Bearer wak_...`` within the key's scopes."""
        header = self.header("authorization")
        token = bearer_token(header)
        if header and token is None:
            raise InvalidToken()
        if token is not None and token.startswith(API_KEY_PREFIX):
            if self.key_scope is None:
                raise InsufficientScope("API keys cannot do this: sign in.")
            self._key_request = True
            return services.key_callers().caller(token, self.key_scope)
        return services.token_verifier().verify(token)

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        """The request body as a JSON object; ``{}`` for an empty optional body."""
        raw = self.raw_body()
        if not raw.strip():
            if required:
                raise InvalidJson("The request needs a JSON object body.")
            return {}
        try:
            text = raw.decode("utf-8")
            value = json.loads(text, parse_constant=_not_json)
            if _ESCAPED_UNSTORABLE.search(text):
                value = _storable(value)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise InvalidJson() from None
        if not isinstance(value, dict):
            raise InvalidJson("The request body must be a JSON object.")
        return value

    def raw_body(self) -> bytes:
        body = self.event.get("body")
        if body is None:
            return b""
        if not isinstance(body, str):
            raise InvalidJson()
        if len(body) > self.max_body_bytes * 4 // 3 + 4:
            raise PayloadTooLarge()
        if self.event.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidJson() from None
        else:
            data = body.encode("utf-8", "surrogatepass")
        if len(data) > self.max_body_bytes:
            raise PayloadTooLarge()
        return data

    # --- plumbing -----------------------------------------------------------------------

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(function=self.name)
        metrics.add_metric(name=f"{self.name}-requests", unit=MetricUnit.Count, value=1)
        if not _is_url_event(event):
            return _to_lambda(error_response(InvalidRequest("Not a function URL request.")))
        # The resolver holds the request it handles: one at a time, as Lambda runs them.
        with self._one_at_a_time:
            try:
                answer = self.resolver.resolve(event, context)
            finally:
                if self._key_request:
                    self._key_request = False
                    services.key_callers().end_request()
        runtime.start_deliveries()
        return answer

    def _health(self) -> Response:
        return json_response(
            200, {"status": "ok", "function": self.name, "version": self.settings.version}
        )

    def _on_api_error(self, error: ApiError) -> Response:
        if error.status >= 500:
            logger.warning("request failed", extra={"code": error.code, "status": error.status})
        else:
            logger.info("request refused", extra={"code": error.code, "status": error.status})
        return error_response(error)

    def _on_unexpected_error(self, error: Exception) -> Response:
        logger.exception("unexpected error", extra={"error_type": type(error).__name__})
        return error_response(ApiError())

    def _on_not_found(self, _: Exception) -> Response:
        return error_response(NotFound())


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python's extension


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# UTF-8 text cannot hold a lone surrogate and JSON refuses a raw NUL, so only these escapes can
# put either into a parsed body: the body is walked only when its text has one.
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _storable(value: Any) -> Any:
    """``value`` with the text PostgreSQL cannot hold (NUL, lone surrogates) made U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def _is_url_event(event: Any) -> bool:
    """True when the fields the resolver reads have the types a function URL gives them."""

    def strings(value: Any) -> bool:
        """A map of strings, or absent (None); any other falsy value (false, 0, "", []) is
        not one, and the resolver would fail on it."""
        return value is None or (
            isinstance(value, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        )

    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    cookies = event.get("cookies", [])
    return (
        isinstance(http, dict)
        and isinstance(http.get("method"), str)
        and isinstance(context, dict)
        and isinstance(context.get("stage"), str)
        and isinstance(event.get("rawPath"), str)
        and strings(event.get("headers"))
        and strings(event.get("queryStringParameters"))
        and isinstance(cookies, list)
        and all(isinstance(c, str) for c in cookies)
    )


def _to_lambda(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status_code,
        "headers": {k: v for k, v in response.headers.items() if isinstance(v, str)},
        "body": response.body,
        "isBase64Encoded": False,
    }
