"""media: received files fetched from their hosts and kept in Storage, off the webhook's path.
Started at once (asynchronously) by qr-webhook, reconcile and a status refresh for the files
they stored (``{"source": "kick", "message_ids": [...]}``), and every minute on a schedule for
the files to try again. No URL."""

import uuid
from typing import Any

from wa_gateway import services
from wa_gateway.job_app import JobApp

MAX_NAMED = 100  # message ids a start may name


def media_options(event: Any) -> dict[str, Any]:
    """A start fetches the files of the messages it names (ids, at most 100); the schedule's
    run fetches any file that is due."""
    named = event.get("message_ids") if isinstance(event, dict) else None
    if not isinstance(named, list):
        return {}
    return {"message_ids": [i for i in named if _is_uuid(i)][:MAX_NAMED]}


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


# The host's address and key are read when a file is fetched (the default host's, or the
# pool's): a start of its own must not wait for qr-webhook's URL, which starts it.
app = JobApp(
    "media", needs=("store", "crypto", "media"), runner=services.media_pass, options=media_options
)
handler = app.handler
