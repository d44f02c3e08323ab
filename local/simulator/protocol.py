"""The request and response values passed between the HTTP layer and the route handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from local.simulator.forms import UploadedFile


@dataclass
class Request:
    method: str
    path: str
    # Path segments, percent-decoded, without empty ones.
    segments: list[str]
    query: dict[str, str]
    headers: Message
    raw_body: bytes
    body: dict[str, Any] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    # What the server's res.send wrapper would add as `session` (None: the key is dropped).
    client_session: str | None = ""
    # A middleware answered an error and called next() anyway: the controller's own answer
    # then fails (ERR_HTTP_HEADERS_SENT), an unhandled rejection.
    answered_twice: bool = False

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


@dataclass
class Response:
    status: int
    # JSON-serialisable value, or bytes sent as they are.
    body: Any = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection without sending anything (the client sees a connection error).
    no_answer: bool = False
    # Exit the process with this status once the answer is written.
    exit_after: int | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(status: int, body: Any) -> Response:
    # A copy, so that adding the `session` key never touches a shared constant.
    return Response(status, dict(body) if isinstance(body, dict) else body)


def html_response(status: int, text: str) -> Response:
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Error</title>\n</head>\n<body>\n<pre>{text}</pre>\n</body>\n</html>\n"
    )
    return Response(status, page.encode(), "text/html; charset=utf-8")


def cannot(method: str, path: str) -> Response:
    """Express's answer for an unknown route."""
    return html_response(404, f"Cannot {method} {path}")


NO_ANSWER = Response(0, no_answer=True)
