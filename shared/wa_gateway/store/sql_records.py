"""Records into SQL: the one way the store turns a record into what a SQL function takes.

A SQL function that takes more than a few values takes them as one record, in ``jsonb``, and
reads it through a composite type with the record's fields as attributes
(``jsonb_populate_record``). That read skips, without a word, a key the type has no attribute
for; so every record sent is one of :data:`SQL_TYPES`, and sent whole: each of its fields, a
nested record as an object, a tuple of records as an array. A test compares each record's
fields with its type's attributes, both ways.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

# The modules that define the records below. The records are named, not imported: a path
# imports the records it sends and no others (the scheduled passes' and the webhook's records
# stay off the user-facing functions' cold start).
RECORD_MODULES = (
    "wa_gateway.records",
    "wa_gateway.send_records",
    "wa_gateway.pass_records",
    "wa_gateway.event_records",
)

SQL_TYPES: dict[str, str] = {
    "StartRequest": "gateway_start_request",
    "SessionUpdate": "gateway_session_update",
    "OutgoingFile": "gateway_outgoing_file",
    "OutboundRequest": "gateway_outbound_request",
    "FinishedSend": "gateway_finished_send",
    "SendOptions": "gateway_send_options",
    "IncomingFile": "gateway_incoming_file",
    "InboundMessage": "gateway_inbound_message",
    "Ack": "gateway_ack",
    "EventRecord": "gateway_host_event",
    "PurgeLimits": "gateway_purge_limits",
    "ReconcileClaim": "gateway_reconcile_claim",
    "FoundMessage": "gateway_found_message",
    "FoundAck": "gateway_found_ack",
    "ReconcileChat": "gateway_reconcile_chat",
    "ReconcileFindings": "gateway_reconcile_findings",
    "MediaClaim": "gateway_media_claim",
    "MediaOutcome": "gateway_media_outcome",
    "Location": "gateway_location",
    "MessageChange": "gateway_message_change",
    "GroupParticipant": "gateway_group_participant",
    "GroupUpdate": "gateway_group_update",
    "MessageAction": "gateway_message_action",
    "KeyToCreate": "gateway_key_to_create",
    "EndpointToCreate": "gateway_endpoint_to_create",
}
"""Each record the store sends, by its class's name, and the SQL type (in ``public``) that
reads it."""


def record_classes() -> dict[type[Any], str]:
    """Each record class of :data:`SQL_TYPES` (imported from :data:`RECORD_MODULES`) with its
    SQL type; a name found in none of them, or in two, is an error."""
    found: dict[str, type[Any]] = {}
    for module_name in RECORD_MODULES:
        module = importlib.import_module(module_name)
        for name in SQL_TYPES:
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls.__module__ == module_name:
                if name in found:
                    raise TypeError(f"two records named {name}")
                found[name] = cls
    missing = set(SQL_TYPES) - set(found)
    if missing:
        raise TypeError(f"records not found: {sorted(missing)}")
    return {cls: SQL_TYPES[name] for name, cls in found.items()}


def sql_record(record: NamedTuple) -> dict[str, Any]:
    """``record`` as the JSON object its SQL type reads: every field, by name."""
    if type(record).__name__ not in SQL_TYPES or not hasattr(record, "_asdict"):
        raise TypeError(f"{type(record).__name__} is not a record the SQL functions read")
    return {field: _value(value) for field, value in record._asdict().items()}


def _value(value: Any) -> Any:
    if isinstance(value, tuple):
        if hasattr(value, "_asdict"):
            return sql_record(value)  # type: ignore[arg-type]  # a NamedTuple
        return [_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _value(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value
