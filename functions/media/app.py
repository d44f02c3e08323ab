"""media: received files fetched from their hosts and kept in Storage, off the webhook's path.
Started at once (asynchronously) by qr-webhook and reconcile for the files they stored, and
every minute on a schedule for the files to try again. No URL."""

import uuid
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_gateway import runtime
from wa_gateway.observability import logger, metrics

# The host's address and key are read when a file is fetched (the default host's, or the
# pool's): a start of its own must not wait for qr-webhook's URL, which starts it.
runtime.configure("media", needs=("store", "crypto", "media"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(function="media")
    named = event.get("message_ids") if isinstance(event, dict) else None
    message_ids = [i for i in named if _is_uuid(i)][:100] if isinstance(named, list) else None
    report = runtime.media_pass().run(
        message_ids=message_ids,
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    for state, count in report.outcomes.items():
        metrics.add_metric(name=f"media-{state}", unit=MetricUnit.Count, value=count)
    return report.as_dict()


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True
