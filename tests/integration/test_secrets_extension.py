"""Deployed with the AWS Parameters and Secrets Lambda Extension, a function reads its secret
from the extension's local endpoint with the standard library: a stand-in for the extension on
127.0.0.1 serves the secret (the database URL and the JWT secret), and a fresh interpreter
loads the status function as Lambda does and serves a signed-in request with them, without
importing boto3 or Powertools' parameters utility."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import devdb
from local.dev_auth import issue_access_token
from local.secrets_extension import SecretsExtensionStandIn

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wa-gateway/test-AbCdEf"
# Powertools imports the bare ``botocore`` package for its user agent, whatever the gateway
# does; a Secrets Manager client needs its session and client modules.
NOT_LOADED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "aws_lambda_powertools.utilities.parameters",
)
FIRST_REQUEST = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {str(ROOT / "functions/status/app.py")!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from local.function_url import LambdaContext, build_event
event = build_event(
    method="GET", path="/", raw_query="", headers=[("authorization", "Bearer " + sys.argv[1])],
    body=None,
)
answer = app.handler(event, LambdaContext("status", "first"))
loaded = [name for name in {NOT_LOADED!r} if name in sys.modules]
print(json.dumps({{"status": answer["statusCode"], "body": answer["body"], "loaded": loaded}}))
"""


@pytest.fixture()
def jwt_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture()
def extension(database: str, jwt_secret: str) -> Iterator[SecretsExtensionStandIn]:
    secret = {
        "DATABASE_URL": database,
        "SUPABASE_JWT_SECRET": jwt_secret,
        "WPP_SECRET_KEY": secrets.token_hex(24),
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "SUPABASE_SERVICE_ROLE_KEY": secrets.token_hex(24),  # for Storage (status's media)
    }
    stand_in = SecretsExtensionStandIn({ARN: secret}, session_token=secrets.token_hex(24))
    yield stand_in
    stand_in.close()


def first_request(env: dict[str, str], token: str) -> tuple[int, dict[str, Any]]:
    """Run the status function's first request in a fresh interpreter with only ``env``."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "POWERTOOLS_SERVICE_NAME": "test",
        # Not secrets: the template sets these in the environment.
        "WPP_SERVER_URL": "http://127.0.0.1:9",
        "WEBHOOK_PUBLIC_URL": "http://127.0.0.1:9/qr-webhook/",
        "SUPABASE_STORAGE_URL": "http://127.0.0.1:9/storage/v1",
    }
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST, token],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return done.returncode, {"output": (done.stdout + done.stderr)[-2000:]}
    return done.returncode, json.loads(lines[-1])


def token_for(database: str, jwt_secret: str) -> str:
    user = devdb.create_user(database, f"ext-{secrets.token_hex(5)}@example.com", "pw")
    token, _ = issue_access_token(
        user_id=user.id, email=user.email, secret=jwt_secret, issuer="unchecked"
    )
    return token


def test_the_function_reads_its_secret_through_the_extension_without_boto3(
    database: str, jwt_secret: str, extension: SecretsExtensionStandIn
) -> None:
    env = {"SECRETS_ARN": ARN, **extension.env()}
    code, result = first_request(env, token_for(database, jwt_secret))
    assert code == 0, result
    assert result["status"] == 200 and json.loads(result["body"]) == {"session": None}
    assert result["loaded"] == []
    assert extension.asked == [ARN] and extension.refused == 0


def test_without_the_session_token_the_function_does_not_start(
    database: str, jwt_secret: str, extension: SecretsExtensionStandIn
) -> None:
    env = {"SECRETS_ARN": ARN, **extension.env(), "AWS_SESSION_TOKEN": "not-the-session's"}
    code, _ = first_request(env, token_for(database, jwt_secret))
    assert code != 0
    assert extension.refused == 1 and extension.asked == []
