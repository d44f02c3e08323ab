"""Reading the gateway's Secrets Manager secret (``SECRETS_ARN``), once per container.

With ``SECRETS_EXTENSION`` set (the template sets it when it attaches the AWS Parameters and
Secrets Lambda Extension), the secret is asked of the extension's local HTTP endpoint with the
standard library: no boto3 client, no Powertools parameters utility, so the cold start does not
import them. The extension authenticates the request by the function's session token, calls
Secrets Manager with the function's role and caches the answer itself (``SECRETS_MANAGER_TTL``).
Without it, Powertools' parameters utility and boto3 read the secret.

A secret that cannot be read is a ``SettingsError`` naming neither its value nor the token.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from wa_gateway.errors import SettingsError

EXTENSION_DEFAULT_PORT = 2773
EXTENSION_TIMEOUT_S = 5.0


def read_secret_json(arn: str, env: Mapping[str, str]) -> Mapping[str, Any]:
    """The secret ``arn`` as a JSON object, through the extension when ``SECRETS_EXTENSION``
    is set in ``env``, otherwise through Powertools and boto3."""
    if (env.get("SECRETS_EXTENSION") or "").strip().lower() in {"1", "true", "yes", "on"}:
        value = _through_extension(arn, env)
    else:
        value = _through_powertools(arn)
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SettingsError("SECRETS_ARN must name a secret holding a JSON object")
    return data


def extension_path(arn: str) -> str:
    return "/secretsmanager/get?" + urllib.parse.urlencode({"secretId": arn})


def extension_port(env: Mapping[str, str]) -> int:
    port = (env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") or "").strip()
    return int(port) if port.isdigit() else EXTENSION_DEFAULT_PORT


def _through_extension(arn: str, env: Mapping[str, str]) -> str:
    token = env.get("AWS_SESSION_TOKEN") or ""
    if not token:
        raise SettingsError("SECRETS_EXTENSION is set but AWS_SESSION_TOKEN is not")
    # http.client, not urllib.request: an opener builds an HTTPS context (~15 ms) that a
    # request to localhost never uses, and no proxy setting may apply here.
    connection = http.client.HTTPConnection(
        "localhost", extension_port(env), timeout=EXTENSION_TIMEOUT_S
    )
    try:
        connection.request(
            "GET", extension_path(arn), headers={"X-Aws-Parameters-Secrets-Token": token}
        )
        response = connection.getresponse()
        status, body = response.status, response.read()
    except OSError:
        raise SettingsError(
            "the Parameters and Secrets extension did not answer for SECRETS_ARN"
        ) from None
    finally:
        connection.close()
    if status != 200:
        raise SettingsError(
            f"the Parameters and Secrets extension refused SECRETS_ARN (HTTP {status})"
        )
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    value = answer.get("SecretString") if isinstance(answer, dict) else None
    if not isinstance(value, str):
        raise SettingsError("SECRETS_ARN must name a secret holding a JSON object")
    return value


def _through_powertools(arn: str) -> Any:
    """Powertools' parameters utility (boto3), cached for 5 minutes per container."""
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_secret(arn, max_age=300)
