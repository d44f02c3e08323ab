"""scheduler: sends the scheduled messages that are due (every minute). No URL."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.observability import logger, metrics

runtime.configure("scheduler", needs=("store", "host", "crypto"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(function="scheduler")
    report = runtime.scheduler().run(
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000
    )
    metrics.add_metric(name="scheduler-sent", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="scheduler-failed", unit=MetricUnit.Count, value=report.failed)
    runtime.start_deliveries()  # what the pass sent or found, told to users' endpoints now
    return report.as_dict()
