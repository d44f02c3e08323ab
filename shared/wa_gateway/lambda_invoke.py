"""Starting another of the gateway's functions at once: Lambda's asynchronous Invoke
(``InvocationType=Event``: Lambda queues the event and answers at once, without waiting for
the function to run).

Two functions are started so: the delivery worker (``DELIVERY_FUNCTION``), by a function whose
request or pass queued deliveries (``runtime.start_deliveries``), so an event reaches users'
endpoints within about a second; and the media function (``MEDIA_FUNCTION``), by qr-webhook,
reconcile and a status refresh for the files they stored, so a file is kept seconds after its
message and the webhook's own time does not include the host's download. A start that fails
only costs time: each function's schedule (every minute) takes what a start left. Starts are
not deduplicated: a run that finds its work leased by another leaves it to that one.

boto3 (in the Lambda runtime) is imported at a container's first start, and its one Lambda
client is built then and shared by every start after it: a function that starts nothing (a
text message, a user without endpoints) never loads it. ``AWS_ENDPOINT_URL_LAMBDA`` (boto3's
own setting) points the client elsewhere: the local stack's gateway answers it as Lambda does.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from wa_gateway.observability import logger

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0

_client: Any = None
_client_lock = threading.Lock()


class FunctionStart:
    """Starts the function ``function_name`` with the event ``{"source": "kick", ...}``."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name

    def __repr__(self) -> str:
        return f"FunctionStart({self.function_name!r})"

    def __call__(self, **fields: Any) -> bool:
        """Invoke the function asynchronously, ``fields`` added to its event; False if Lambda
        could not be asked (logged: its schedule takes the work then). Never raises: the
        request or pass that asks has done its own work already."""
        payload = json.dumps({"source": "kick", **fields}, separators=(",", ":")).encode()
        try:
            lambda_client().invoke(
                FunctionName=self.function_name, InvocationType="Event", Payload=payload
            )
        except Exception as error:  # botocore's errors, and any other: the schedule catches up
            logger.warning(
                "function not started",
                extra={"function": self.function_name, "error_type": type(error).__name__},
            )
            return False
        return True


def lambda_client() -> Any:
    """The container's Lambda client, built at its first use (threads of a pass may ask at
    once: it is built once)."""
    global _client
    with _client_lock:
        if _client is None:
            import boto3
            from botocore.config import Config

            _client = boto3.client(
                "lambda",
                config=Config(
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return _client


def forget_client() -> None:
    """Forget the client (tests that change its endpoint call this, through runtime.reset)."""
    global _client
    with _client_lock:
        _client = None
