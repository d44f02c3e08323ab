"""Sends with a template or a time, and cancelling a scheduled one.

``gateway_prepare_send`` (one round trip) renders the caller's own template, if named, and
then either decides the send as ``gateway_begin_send`` does (the plan goes on to the host as a
plain send's) or writes the outbox row as ``scheduled`` for the scheduler. A retry with an
Idempotency-Key already used answers from the stored row: the key covers the request as sent
(template name, variables, time), and the text rendered the first time stands even if the
template has changed since.
"""

from __future__ import annotations

from wa_gateway.auth.caller import Caller
from wa_gateway.errors import (
    InvalidRequest,
    MessageTooLong,
    NotFound,
    NotScheduled,
    ScheduledLimit,
    TemplateVariableMissing,
    UnknownTemplate,
)
from wa_gateway.message_requests import MAX_MESSAGE_CHARS, SendRequest
from wa_gateway.records import MessageRecord
from wa_gateway.send_records import OutboundRequest, SendOptions, SendPlan
from wa_gateway.store import Store


def prepare(
    store: Store, outbound: OutboundRequest, request: SendRequest, *, max_scheduled: int
) -> SendPlan | MessageRecord:
    """The plan of a send with a template or a time: a :class:`SendPlan` to go on with, or
    the scheduled message itself. Raises the contract's error for a template problem, or when
    the user has ``max_scheduled`` messages waiting already (nothing is stored then)."""
    prepared = store.prepare_send(
        outbound,
        SendOptions(
            request.template, request.variables, request.send_at, MAX_MESSAGE_CHARS, max_scheduled
        ),
    )
    if prepared.outcome == "unknown_template":
        raise UnknownTemplate(f"You have no template named '{request.template}'.")
    if prepared.outcome == "template_variable_missing":
        raise TemplateVariableMissing(
            f"Template '{request.template}' needs the variable '{prepared.variable}'."
        )
    if prepared.outcome == "template_variable_unknown":
        raise InvalidRequest(
            f"Unknown variable '{prepared.variable}': template '{request.template}' has no "
            f"{{{{{prepared.variable}}}}}."
        )
    if prepared.outcome == "message_too_long":
        raise MessageTooLong(
            f"The rendered message has {prepared.length} characters; at most {MAX_MESSAGE_CHARS}."
        )
    if prepared.outcome == "scheduled_limit":
        raise ScheduledLimit(
            f"You have {max_scheduled} messages scheduled, the most allowed. Cancel one, or wait "
            "until some are sent, then schedule again."
        )
    if prepared.outcome == "scheduled":
        assert prepared.message is not None
        return prepared.message
    assert prepared.plan is not None
    return prepared.plan


def cancel(store: Store, caller: Caller, message_id: str) -> MessageRecord:
    """Cancel the caller's scheduled message (again: the same answer); NotScheduled once the
    scheduler has taken it, NotFound for an id that is not the caller's."""
    outcome, message = store.cancel_scheduled(user_id=caller.user_id, message_id=message_id)
    if outcome == "not_found" or message is None:
        raise NotFound("You have no message with this id.")
    if outcome == "gone":
        raise NotScheduled()
    return message
