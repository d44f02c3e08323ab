"""Starting the delivery worker at once: an asynchronous invocation of its Lambda function.

A function whose request queued deliveries (``gateway_notify`` says so in the answer of the
call that did) invokes ``DELIVERY_FUNCTION`` with ``InvocationType=Event``: Lambda queues the
event and answers at once, and the worker delivers within about a second of the host's event.
Kicks are not deduplicated: a run that finds the endpoint leased by another leaves it to that
one, which takes every batch due before giving it back. The worker's schedule (every minute)
delivers whatever a failed kick left.

boto3 (in the Lambda runtime) is imported for the first kick only: a function serving users
without endpoints never loads it. ``AWS_ENDPOINT_URL_LAMBDA`` (boto3's own setting) points the
kick elsewhere: the local stack's gateway answers it as Lambda does.
"""

from __future__ import annotations

import threading
from typing import Any

from wa_gateway.observability import logger

KICK = b'{"source":"kick"}'


class DeliveryKick:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        """Invoke the worker asynchronously; a failure is logged and left to the schedule."""
        try:
            self._lambda().invoke(
                FunctionName=self.function_name, InvocationType="Event", Payload=KICK
            )
        except Exception as error:  # never fail the request that queued the deliveries
            logger.warning("delivery kick failed", extra={"error_type": type(error).__name__})

    def _lambda(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "lambda",
                    config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
                )
            return self._client
