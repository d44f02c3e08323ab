"""Logging and metrics, one instance each per container.

Powertools' Logger writes structured JSON with the function URL's request id as correlation
id; Metrics writes CloudWatch EMF. Neither is ever given a token, a secret or a request body.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wa-gateway")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WaGateway"))


class RunReport:
    """What a job's run reports (a dataclass): its log line (``as_dict``) and its metrics
    (``counts``, the fields named in ``metric_fields``)."""

    metric_fields: ClassVar[tuple[str, ...]] = ()
    """The fields counted as metrics, each under its name with dashes; a count by name
    (a dict) as its total."""

    def as_dict(self) -> dict[str, Any]:
        """Every field but the private ones, a count by name sorted by name, the seconds to
        the millisecond."""
        logged: dict[str, Any] = {}
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            if item.name.startswith("_"):
                continue
            value = getattr(self, item.name)
            if isinstance(value, dict):
                value = dict(sorted(value.items()))
            logged[item.name] = round(value, 3) if item.name == "seconds" else value
        return logged

    def counts(self) -> dict[str, int]:
        """The metrics of a run (``<function>-<name>``)."""
        counted: dict[str, int] = {}
        for name in self.metric_fields:
            value = getattr(self, name)
            total = sum(value.values()) if isinstance(value, dict) else value
            counted[name.replace("_", "-")] = total
        return counted
