"""What AWS Lambda does around a function URL: turn an HTTP request into the payload 2.0 event,
and the function's result back into an HTTP response, CORS included.

Follows the function-URL invocation docs: lower-cased headers (repeats joined with ','),
cookies moved out of the headers, ``queryStringParameters`` and ``body`` omitted when absent,
binary bodies base64-encoded, and ``requestContext.stage`` set to ``$default``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class LambdaContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    timeout_ms: int = 30_000
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


def build_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
    source_ip: str = "127.0.0.1",
    domain: str = "localhost",
) -> dict[str, Any]:
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value

    now = time.time()
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if body:
        content_type = merged.get("content-type", "").lower()
        text = None
        if content_type.startswith(TEXT_TYPES):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def to_http(result: Any) -> HttpResponse:
    """The HTTP response Lambda makes of a function's return value."""
    if not isinstance(result, Mapping) or "statusCode" not in result:
        return HttpResponse(
            200, [("content-type", "application/json")], json.dumps(result).encode("utf-8")
        )
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return HttpResponse(int(result["statusCode"]), headers, body)


@dataclass(frozen=True)
class CorsConfig:
    """A function URL's CORS settings; Lambda applies them over whatever the function says."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ("GET", "POST")
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "idempotency-key")
    expose_headers: tuple[str, ...] = ("retry-after",)
    max_age: int = 300

    def origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.allow_origins or origin in self.allow_origins)

    def preflight(self, origin: str | None) -> HttpResponse:
        if not self.origin_allowed(origin):
            return HttpResponse(200)
        assert origin is not None
        return HttpResponse(
            200,
            [
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", ",".join(self.allow_methods)),
                ("access-control-allow-headers", ",".join(self.allow_headers)),
                ("access-control-max-age", str(self.max_age)),
                ("vary", "Origin"),
            ],
        )

    def apply(self, response: HttpResponse, origin: str | None) -> None:
        response.headers = [
            (k, v) for k, v in response.headers if not k.lower().startswith("access-control-")
        ]
        if self.origin_allowed(origin):
            assert origin is not None
            response.headers += [
                ("access-control-allow-origin", origin),
                ("access-control-expose-headers", ",".join(self.expose_headers)),
                ("vary", "Origin"),
            ]
