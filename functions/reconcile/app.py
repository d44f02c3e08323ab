"""reconcile: puts every live session right from its host (state, missed messages, acks),
for what no webhook reported (every 5 minutes). No URL."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.observability import logger, metrics

runtime.configure("reconcile", needs=("store", "host", "crypto", "media"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(function="reconcile")
    report = runtime.reconciler().run(
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000
    )
    metrics.add_metric(name="reconcile-repaired", unit=MetricUnit.Count, value=report.repaired)
    metrics.add_metric(name="reconcile-messages", unit=MetricUnit.Count, value=report.messages)
    metrics.add_metric(name="reconcile-acks", unit=MetricUnit.Count, value=report.acks)
    metrics.add_metric(
        name="reconcile-errors", unit=MetricUnit.Count, value=sum(report.errors.values())
    )
    runtime.start_deliveries()  # what the pass sent or found, told to users' endpoints now
    return report.as_dict()
