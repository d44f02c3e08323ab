"""A stand-in for the AWS Parameters and Secrets Lambda Extension, on 127.0.0.1: it answers
``GET /secretsmanager/get?secretId=<arn>`` as the extension does (Secrets Manager's
GetSecretValue JSON) when the ``X-Aws-Parameters-Secrets-Token`` header holds the expected
session token, and 401 otherwise. For the tests and the bench; it counts what it was asked."""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from local.threaded_server import ThreadedServer

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 (a header name)


class SecretsExtensionStandIn:
    def __init__(self, secrets: dict[str, dict[str, Any]], session_token: str) -> None:
        """``secrets``: ARN -> the secret's JSON object."""
        self.secrets = secrets
        self.session_token = session_token
        self.asked: list[str] = []
        self.refused = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in two writes: without this, Nagle's algorithm holds
            # the body for the client's delayed ack, which the real extension does not cost.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                arn = urllib.parse.parse_qs(url.query).get("secretId", [""])[0]
                if self.headers.get(TOKEN_HEADER) != owner.session_token:
                    owner.refused += 1
                    self._answer(401, {"message": "missing or wrong token"})
                elif url.path != "/secretsmanager/get" or arn not in owner.secrets:
                    self._answer(400, {"__type": "ResourceNotFoundException"})
                else:
                    owner.asked.append(arn)
                    value = json.dumps(owner.secrets[arn])
                    self._answer(200, {"ARN": arn, "Name": "gateway", "SecretString": value})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadedServer(Handler).start()
        self.port = self._server.server_port

    def env(self) -> dict[str, str]:
        """The environment a function with the extension attached runs with."""
        return {
            "SECRETS_EXTENSION": "true",
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.port),
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def close(self) -> None:
        self._server.stop()
