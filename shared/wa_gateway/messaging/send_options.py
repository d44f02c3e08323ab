"""Sends with a template or a time, and cancelling a scheduled one.

``gateway_prepare_send`` (one round trip) renders the caller's own template, if named, and
then either decides the send as ``gateway_begin_send`` does (the plan goes on to the host as a
plain send's) or writes the outbox row as ``scheduled`` for the scheduler. A retry with an
Idempotency-Key already used answers from the stored row: the key covers the request as sent
(template name, variables, time), and the text rendered the first time stands even if the
template has changed since.
"""

from __future__ import annotations

from collections.abc import Callable

from wa_gateway.auth.caller import Caller
from wa_gateway.errors import (
    ApiError,
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
from wa_gateway.send_records import OutboundRequest, PreparedSend, SendOptions, SendPlan
from wa_gateway.store import Store

# What a template or a time refused answers: told the request's template, what
# ``gateway_prepare_send`` found, and the user's limit of scheduled messages.
_REFUSALS: dict[str, Callable[[str | None, PreparedSend, int], ApiError]] = {
    "unknown_template": lambda template, _, __: UnknownTemplate(
        f"You have no template named '{template}'."
    ),
    "template_variable_missing": lambda template, found, _: TemplateVariableMissing(
        f"Template '{template}' needs the variable '{found.variable}'."
    ),
    "template_variable_unknown": lambda template, found, _: InvalidRequest(
        f"Unknown variable '{found.variable}': template '{template}' has no "
        f"{{{{{found.variable}}}}}."
    ),
    "message_too_long": lambda _, found, __: MessageTooLong(
        f"The rendered message has {found.length} characters; at most {MAX_MESSAGE_CHARS}."
    ),
    "scheduled_limit": lambda _, __, limit: ScheduledLimit(
        f"You have {limit} messages scheduled, the most allowed. Cancel one, or wait until some "
        "are sent, then schedule again."
    ),
}


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
    if prepared.outcome in _REFUSALS:
        raise _REFUSALS[prepared.outcome](request.template, prepared, max_scheduled)
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
