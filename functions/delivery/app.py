"""delivery: posts what is pending to users' endpoints, signed, in order per endpoint. Invoked
asynchronously by a function whose request queued deliveries (``{"source": "kick"}``), and
every minute by its schedule, which also forgets old notifications. No URL."""

from typing import Any

from wa_gateway import services
from wa_gateway.job_app import JobApp


def delivery_options(event: Any) -> dict[str, Any]:
    """A kick delivers what is pending; the schedule's run also sweeps old notifications."""
    kicked = isinstance(event, dict) and event.get("source") == "kick"
    return {"sweep": not kicked}


app = JobApp(
    "delivery", needs=("store", "crypto"), runner=services.deliverer, options=delivery_options
)
handler = app.handler
