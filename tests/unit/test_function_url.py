"""The local gateway builds the events AWS builds, and maps results back the way AWS does."""

from __future__ import annotations

import base64
import json

import pytest

from local.function_url import CorsConfig, HttpResponse, build_event, to_http


def test_a_request_becomes_a_payload_2_event() -> None:
    event = build_event(
        method="POST",
        path="/",
        raw_query="a=1&a=2&b=",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Many", "1"),
            ("x-many", "2"),
            ("Cookie", "k=v; j=w"),
        ],
        body=b'{"x": 1}',
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-many"] == "1,2"
    assert "cookie" not in event["headers"] and event["cookies"] == ["k=v", "j=w"]
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "$default" and context["http"]["method"] == "POST"
    assert isinstance(context["timeEpoch"], int) and context["requestId"]


def test_absent_parts_are_left_out() -> None:
    event = build_event(method="GET", path="/", raw_query="", headers=[], body=None)
    assert "body" not in event and "queryStringParameters" not in event
    assert "cookies" not in event


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"\xff\xfe"), ("application/octet-stream", b"abc")],
    ids=["not utf-8", "octets"],
)
def test_binary_bodies_are_base64(content_type: str, body: bytes) -> None:
    event = build_event(
        method="POST", path="/", raw_query="", headers=[("content-type", content_type)], body=body
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_results_map_back_to_http() -> None:
    response = to_http(
        {
            "statusCode": 201,
            "headers": {"x-a": "1"},
            "cookies": ["c=1"],
            "body": "hi",
            "isBase64Encoded": False,
        }
    )
    assert response.status == 201 and response.body == b"hi"
    assert ("x-a", "1") in response.headers and ("set-cookie", "c=1") in response.headers
    bare = to_http({"ok": True})
    assert bare.status == 200 and json.loads(bare.body) == {"ok": True}


def test_cors_is_applied_over_the_functions_own_headers() -> None:
    cors = CorsConfig(allow_origins=("https://app.example",))
    response = HttpResponse(200, [("access-control-allow-origin", "*")])
    cors.apply(response, "https://app.example")
    assert ("access-control-allow-origin", "https://app.example") in response.headers
    assert ("access-control-allow-origin", "*") not in response.headers
    stranger = HttpResponse(200, [])
    cors.apply(stranger, "https://evil.example")
    assert not any(k.startswith("access-control") for k, _ in stranger.headers)
    preflight = cors.preflight("https://app.example")
    assert ("access-control-allow-headers", "authorization,content-type,idempotency-key") in (
        preflight.headers
    )
