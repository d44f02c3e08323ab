"""Reading SECRETS_ARN through the AWS Parameters and Secrets Lambda Extension (a stand-in on
127.0.0.1 here); a whole function doing so is tests/integration/test_secrets_extension.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.secrets_extension import SecretsExtensionStandIn
from wa_gateway.aws_secrets import EXTENSION_DEFAULT_PORT, extension_port, read_secret_json
from wa_gateway.errors import SettingsError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wa-gateway/prod-AbCdEf"
TOKEN = "session-token-for-tests"


@pytest.fixture()
def extension() -> Iterator[SecretsExtensionStandIn]:
    stand_in = SecretsExtensionStandIn({ARN: {"WPP_SECRET_KEY": "from-the-extension"}}, TOKEN)
    yield stand_in
    stand_in.close()


def test_the_secret_is_read_with_the_session_token(extension: SecretsExtensionStandIn) -> None:
    assert read_secret_json(ARN, extension.env()) == {"WPP_SECRET_KEY": "from-the-extension"}
    assert extension.asked == [ARN] and extension.refused == 0


def test_a_refusal_stops_with_an_error_that_holds_no_token(
    extension: SecretsExtensionStandIn,
) -> None:
    wrong = "wrong-session-token-value"
    with pytest.raises(SettingsError, match="HTTP 401") as caught:
        read_secret_json(ARN, {**extension.env(), "AWS_SESSION_TOKEN": wrong})
    assert wrong not in str(caught.value) and TOKEN not in str(caught.value)
    assert extension.refused == 1


def test_no_session_token_is_refused_before_asking(extension: SecretsExtensionStandIn) -> None:
    with pytest.raises(SettingsError, match="AWS_SESSION_TOKEN"):
        read_secret_json(ARN, {**extension.env(), "AWS_SESSION_TOKEN": ""})
    assert extension.asked == [] and extension.refused == 0


def test_a_secret_that_is_not_a_json_object_is_refused() -> None:
    stand_in = SecretsExtensionStandIn({ARN: ["not", "an", "object"]}, TOKEN)  # type: ignore[dict-item]
    try:
        with pytest.raises(SettingsError, match="JSON object"):
            read_secret_json(ARN, stand_in.env())
    finally:
        stand_in.close()


def test_the_port_defaults_to_the_extensions() -> None:
    assert extension_port({}) == EXTENSION_DEFAULT_PORT == 2773
    assert extension_port({"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2999"}) == 2999
