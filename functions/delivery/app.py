"""delivery: posts what is pending to users' endpoints, signed, in order per endpoint. Invoked
asynchronously by a function whose request queued deliveries (``{"source": "kick"}``), and
every minute by its schedule, which also forgets old notifications. No URL."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.observability import logger, metrics

runtime.configure("delivery", needs=("store", "crypto"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(function="delivery")
    kicked = isinstance(event, dict) and event.get("source") == "kick"
    report = runtime.deliverer().run(
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000, sweep=not kicked
    )
    metrics.add_metric(name="delivery-delivered", unit=MetricUnit.Count, value=report.delivered)
    metrics.add_metric(
        name="delivery-failed-attempts", unit=MetricUnit.Count, value=report.failed_attempts
    )
    return report.as_dict()
