"""The face every function without a URL shares, the twin of ``api.FunctionApp`` for the
passes EventBridge runs (purge, scheduler, reconcile) and those other functions also start
(media, delivery): the settings checked at start-up, the log's context and cold-start metric,
the pass's options read off the invoking event, the time the invocation has left, the pass's
counts as metrics and its report as the answer; and what the pass queued for users'
endpoints, started at once (``runtime.start_deliveries``).

A handler module does::

    app = JobApp("purge", needs=("store",), runner=services.purger)
    handler = app.handler
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.needs import Need
from wa_gateway.observability import logger, metrics


class PassReport(Protocol):
    def as_dict(self) -> Mapping[str, Any]: ...

    def counts(self) -> Mapping[str, int]:
        """What the pass did, as the metrics ``<job>-<name>``."""
        ...


class Pass(Protocol):
    def run(self, remaining_s: Callable[[], float]) -> PassReport: ...


class JobApp:
    """One scheduled function: ``runner`` gives what runs its pass (``services.purger``: built
    once per container); ``options``, if given, reads the pass's options off the invoking
    event; a setting the function ``needs`` that is missing stops it at start-up, as it stops a
    ``FunctionApp``."""

    def __init__(
        self,
        name: str,
        *,
        needs: Iterable[Need],
        runner: Callable[[], Pass],
        options: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.settings = runtime.configure(name, needs)
        self._runner = runner
        self._options = options
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = (
            logger.inject_lambda_context(clear_state=True)(
                metrics.log_metrics(capture_cold_start_metric=True)(self._handle)
            )
        )

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(function=self.name)
        options = self._options(event) if self._options is not None else {}
        report = self._runner().run(
            remaining_s=lambda: context.get_remaining_time_in_millis() / 1000, **options
        )
        for name, value in report.counts().items():
            metrics.add_metric(name=f"{self.name}-{name}", unit=MetricUnit.Count, value=value)
        runtime.start_deliveries()  # what the pass sent or found, told to users' endpoints now
        return dict(report.as_dict())
