"""purge: the scheduled clean-up (old QR codes, long-disconnected sessions). No URL."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.observability import logger, metrics

# The host and the encryption key are optional: without them, nothing is closed on the host.
runtime.configure("purge", needs=("store",))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(function="purge")
    report = runtime.purger().run(remaining_s=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(
        name="purge-sessions-deleted", unit=MetricUnit.Count, value=report.sessions_deleted
    )
    metrics.add_metric(name="purge-qr-cleared", unit=MetricUnit.Count, value=report.qr_cleared)
    metrics.add_metric(name="purge-host-errors", unit=MetricUnit.Count, value=report.host_errors)
    return report.as_dict()
