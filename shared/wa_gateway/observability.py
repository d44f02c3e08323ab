"""Logging and metrics, one instance each per container.

Powertools' Logger writes structured JSON with the function URL's request id as correlation
id; Metrics writes CloudWatch EMF. Neither is ever given a token, a secret or a request body.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wa-gateway")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WaGateway"))
