"""Logging and metrics, one instance each per container.

Powertools' Logger writes structured JSON with the function URL's request id as correlation
id; Metrics writes CloudWatch EMF. Neither is ever given a token, a secret or a request body.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wa-gateway")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WaGateway"))


def report_fields(report: Any) -> dict[str, Any]:
    """A run's report (a dataclass) as its log line carries it: every field but the private
    ones, a count by name sorted by name, the seconds to the millisecond."""
    logged: dict[str, Any] = {}
    for item in dataclasses.fields(report):
        if item.name.startswith("_"):
            continue
        value = getattr(report, item.name)
        if isinstance(value, dict):
            value = dict(sorted(value.items()))
        logged[item.name] = round(value, 3) if item.name == "seconds" else value
    return logged
