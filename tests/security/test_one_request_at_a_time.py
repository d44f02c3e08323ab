"""A function's handler never answers one request with another's data.

Powertools' resolver keeps the request being handled on itself, and a function's resolver is
module-level: Lambda hands a container one request at a time, but the local gateway (and any
threaded host) may run the same handler twice at once. Found by the soak: under load a proven
webhook was refused and a send answered another send's message. Here the interleaving is
forced: request A pauses in the middle of its handler until request B has started.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.security.inprocess import Handler, invoke
from wa_gateway import services

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def send_event(token: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/"}, "stage": "$default"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_a_second_request_cannot_swap_the_first_ones_event(
    gateway: Gateway, handlers: dict[str, Handler]
) -> None:
    first_token = gateway.token_for(gateway.new_user("first"))
    second_token = gateway.token_for(gateway.new_user("second"))
    verifier = services.token_verifier()
    verify = verifier.verify
    first_paused, second_started = threading.Event(), threading.Event()

    def pausing_verify(token: str | None) -> Any:
        if token == first_token:
            first_paused.set()
            second_started.wait(0.5)  # a second request gets every chance to run meanwhile
        else:
            second_started.set()
        return verify(token)

    answers: dict[str, Any] = {}

    def call(label: str, token: str, body: dict[str, Any]) -> None:
        answers[label] = invoke(handlers["send-message"], send_event(token, body), "send")

    verifier.verify = pausing_verify  # type: ignore[method-assign]
    try:
        first = threading.Thread(
            target=call, args=("first", first_token, {"phone": "12", "message": "x"})
        )
        second = threading.Thread(
            target=call, args=("second", second_token, {"phone": "5511987654321"})
        )
        first.start()
        assert first_paused.wait(5)
        second.start()
        first.join(10)
        second.join(10)
    finally:
        verifier.verify = verify  # type: ignore[method-assign]
    assert json.loads(answers["first"]["body"])["error"]["code"] == "invalid_phone"
    assert json.loads(answers["second"]["body"])["error"]["code"] == "invalid_request"
