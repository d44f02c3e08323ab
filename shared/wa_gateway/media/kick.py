"""Starting the media function at once for files just stored (Lambda's asynchronous Invoke).

The webhook and reconcile store a message with its file pending and answer; the file is
fetched by the media function, which this starts without waiting for it (``InvocationType``
``Event``: Lambda queues the event and answers 202 at once), so a file is kept seconds after
its message and the webhook's own time does not include the host's download. A start that
fails only costs time: the media function's schedule (every minute) takes the file then.

boto3 is imported with the first start and its client kept while the container is warm: a
text message never loads it. Locally, ``AWS_ENDPOINT_URL_LAMBDA`` points the client at the
local gateway, which runs the function as Lambda would.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wa_gateway.observability import logger

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0


class MediaKick:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self._client: Any = None

    def __repr__(self) -> str:
        return f"MediaKick({self.function_name!r})"

    def __call__(self, message_ids: Sequence[str]) -> bool:
        """Start the media function for these messages' files; False if Lambda could not be
        asked (the schedule fetches them then). Never raises."""
        if not message_ids:
            return True
        payload = json.dumps({"source": "kick", "message_ids": list(message_ids)})
        try:
            self._lambda().invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=payload.encode(),
            )
        except Exception as exc:  # botocore's errors, and any other: the schedule catches up
            logger.warning("media function not started", extra={"reason": type(exc).__name__})
            return False
        return True

    def _lambda(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "lambda",
                config=Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return self._client
