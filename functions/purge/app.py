"""Placeholder handler: replaced by the function's real code."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 501, "body": "not implemented"}
