"""Starting another function at once (``wa_gateway.lambda_invoke``), through boto3's Lambda
client as in AWS, against the local gateway's stand-in for Lambda's Invoke API: the media
function and the delivery worker are started the one way, by the container's one client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Gateway
from wa_gateway import lambda_invoke
from wa_gateway.lambda_invoke import FunctionStart

AWS_SETTINGS = (
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture()
def pointed_at(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """boto3 pointed at the gateway, as the functions' environment points it."""
    for name in AWS_SETTINGS:
        monkeypatch.setenv(name, gateway.env[name])
    lambda_invoke.forget_client()
    yield gateway
    lambda_invoke.forget_client()


def test_the_media_function_and_the_delivery_worker_are_started_by_one_client(
    pointed_at: Gateway,
) -> None:
    assert FunctionStart("media")(message_ids=[]) is True
    client = lambda_invoke.lambda_client()
    assert FunctionStart("delivery")() is True
    assert lambda_invoke.lambda_client() is client


def test_a_start_lambda_refuses_is_false_and_never_raises(
    pointed_at: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    assert FunctionStart("no-such-function")(message_ids=["x"]) is False
    assert "function not started" in caplog.text


def test_the_stand_in_runs_only_event_invocations_of_the_functions_it_has(
    gateway: Gateway,
) -> None:
    def invoke(name: str, kind: str, body: bytes = b"{}") -> requests.Response:
        return requests.post(
            f"{gateway.url}/2015-03-31/functions/{name}/invocations",
            data=body,
            headers={"x-amz-invocation-type": kind},
            timeout=10,
        )

    assert invoke("media", "Event").status_code == 202
    refused = invoke("media", "RequestResponse")
    assert refused.status_code == 400
    assert refused.headers["x-amzn-errortype"] == "InvalidParameterValueException"
    unknown = invoke("purge", "Event")
    assert unknown.status_code == 404
    assert unknown.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert invoke("delivery", "Event", b"{not json").status_code == 400
