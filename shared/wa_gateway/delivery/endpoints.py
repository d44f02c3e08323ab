"""The api-keys function's endpoints: add one (its signing secret shown once), list, delete,
list its deliveries, replay the failed ones."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from wa_gateway.crypto import Keyring
from wa_gateway.delivery import signing
from wa_gateway.delivery.addresses import Unreachable, address_for, parse_url
from wa_gateway.errors import EndpointNotAllowed, InvalidRequest, LimitReached
from wa_gateway.presenters import iso_utc
from wa_gateway.records import EndpointToCreate
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport
from wa_gateway.validation import is_plain_text, parse_choices, reject_unknown_fields

EVENTS = ("message.received", "message.sent", "message.status", "session.status")
STATUSES = ("pending", "delivered", "failed")
MAX_DESCRIPTION = 200
MAX_LIST = 100


class NewEndpoint(NamedTuple):
    url: str
    events: list[str]
    description: str | None


class DeliveryQuery(NamedTuple):
    status: str | None = None
    before: int | None = None
    limit: int = 50


def parse_new_endpoint(body: Mapping[str, Any], *, allow_local: bool) -> NewEndpoint:
    reject_unknown_fields(dict(body), {"url", "events", "description"})
    url = parse_url(body.get("url"), allow_local=allow_local).url
    events = parse_choices(body.get("events", list(EVENTS)), "events", EVENTS)
    description = body.get("description")
    if description is not None and (
        not isinstance(description, str)
        or len(description) > MAX_DESCRIPTION
        or not is_plain_text(description)
    ):
        raise InvalidRequest(f"'description' must be text of at most {MAX_DESCRIPTION} characters.")
    return NewEndpoint(url, events, description or None)


def parse_delivery_query(
    status: str | None, before: str | None, limit: str | None
) -> DeliveryQuery:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"'status' must be one of {', '.join(STATUSES)}.")
    return DeliveryQuery(
        status, _whole("before", before, 1, 2**62), _whole("limit", limit, 1, MAX_LIST) or 50
    )


def parse_replay(body: Mapping[str, Any]) -> str:
    """The moment to replay from (``since``: ISO 8601 with an offset), as the database takes it."""
    reject_unknown_fields(dict(body), {"since"})
    since = body.get("since")
    try:
        moment = (
            datetime.fromisoformat(since) if isinstance(since, str) and len(since) <= 64 else None
        )
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest("'since' must be a time in ISO 8601 with its offset.")
    return moment.isoformat()


def _whole(name: str, value: str | None, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}.")
    return int(value)


def endpoint_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": row["events"],
        "description": row.get("description"),
        "created_at": iso_utc(row["created_at"]),
        "pending": row.get("pending", 0),
        "failed": row.get("failed", 0),
    }


def delivery_json(row: Mapping[str, Any]) -> dict[str, Any]:
    times = ("next_attempt_at", "last_attempt_at", "delivered_at", "created_at")
    return {**row, **{name: iso_utc(row.get(name)) for name in times}}


class Endpoints:
    def __init__(
        self, transport: Transport, keyring: Keyring, *, max_endpoints: int, allow_local: bool
    ) -> None:
        self.transport = transport
        self.keyring = keyring
        self.max_endpoints = max_endpoints
        self.allow_local = allow_local

    def create(self, user_id: str, request: NewEndpoint) -> dict[str, Any]:
        """The new endpoint, with ``secret`` (``whsec_...``): kept only encrypted."""
        try:  # a name that resolves inside is refused now; it is checked again at delivery
            address_for(parse_url(request.url, allow_local=self.allow_local),
                        allow_local=self.allow_local)  # fmt: skip
        except Unreachable as refused:
            if refused.reason == "blocked_address":
                raise EndpointNotAllowed(
                    "Events are posted only to public addresses: the URL's host resolves to "
                    "one that is not."
                ) from None
        endpoint_id = str(uuid.uuid4())
        secret = signing.new_secret()
        record = EndpointToCreate(
            id=endpoint_id,
            user_id=user_id,
            url=request.url,
            events=tuple(request.events),
            description=request.description,
            secret=self.keyring.encrypt(secret, context=endpoint_id),
            max_endpoints=self.max_endpoints,
        )
        result = self.transport.rpc("gateway_create_endpoint", {"p_endpoint": sql_record(record)})
        if result["outcome"] == "limit":
            raise LimitReached(
                f"You have {self.max_endpoints} endpoints, the most allowed. Delete one."
            )
        return {**endpoint_json(result["endpoint"]), "secret": secret}

    def owned(self, user_id: str) -> list[dict[str, Any]]:
        rows = self.transport.rpc("gateway_endpoints", {"p_record": {"user_id": user_id}})
        return [endpoint_json(row) for row in rows]

    def delete(self, user_id: str, endpoint_id: str) -> dict[str, Any] | None:
        row = self.transport.rpc(
            "gateway_delete_endpoint", {"p_record": {"user_id": user_id, "id": endpoint_id}}
        )
        return None if row is None else endpoint_json(row)

    def deliveries(
        self, user_id: str, endpoint_id: str, query: DeliveryQuery
    ) -> list[dict[str, Any]] | None:
        rows = self.transport.rpc(
            "gateway_endpoint_deliveries",
            {"p_record": {"user_id": user_id, "id": endpoint_id, **query._asdict()}},
        )
        return None if rows is None else [delivery_json(row) for row in rows]

    def replay(self, user_id: str, endpoint_id: str, since: str) -> int | None:
        """How many failed deliveries made since ``since`` are queued again, in order."""
        result = self.transport.rpc(
            "gateway_replay_deliveries",
            {"p_record": {"user_id": user_id, "id": endpoint_id, "since": since}},
        )
        return None if result is None else int(result["replayed"])
