"""Sending a message: idempotent, rate-governed, and exactly once per key.

1. ``gateway_begin_send`` (one round trip) decides: replay a finished send, report one still
   in flight, refuse a reused key with another body, a session that is not connected or an
   empty token bucket; or write the outbox row (queued, with a lease) and go on.
2. The host is called once.
3. ``gateway_finish_send`` (one round trip) records what happened. If the host may have sent
   the message without answering (a timeout), the row stays queued under its lease: a late
   ``onack`` for the same number and text matches it, and a retry with the same key after the
   lease sends it only if no ack came.

A send with a template or a time is decided by ``send_options.prepare`` instead of step 1;
the scheduler sends what it claims through step 2 and 3 (``deliver``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from wa_gateway import send_options
from wa_gateway.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import (
    ApiError,
    HostError,
    HostTimeout,
    IdempotencyConflict,
    RateLimited,
    SessionNotConnected,
    UnknownRecipient,
)
from wa_gateway.host import HostSessionClosed, HostUnknownRecipient
from wa_gateway.host_directory import HostDirectory
from wa_gateway.host_session import HostSession
from wa_gateway.records import MessageRecord, OutboundRequest, SendPlan, SessionUpdate
from wa_gateway.sessions import session_name_for
from wa_gateway.store import Store
from wa_gateway.validation import SendRequest

# A send that failed for good answers the same error to every retry with its key.
_FINAL_ERRORS: dict[str, type[ApiError]] = {
    SessionNotConnected.code: SessionNotConnected,
    UnknownRecipient.code: UnknownRecipient,
}


def request_hash(request: SendRequest) -> str:
    fields: list[object] = [request.account, request.phone, request.message, request.contact_name]
    if request.template is not None or request.send_at is not None:
        fields += [
            request.template,
            dict(sorted((request.variables or {}).items())),
            request.send_at.isoformat() if request.send_at else None,
        ]
    canonical = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class MessageService:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None

    def send(
        self, caller: Caller, request: SendRequest, *, idempotency_key: str | None = None
    ) -> MessageRecord:
        name = session_name_for(caller.user_id, request.account)
        outbound = OutboundRequest(
            user_id=caller.user_id,
            session_name=name,
            phone=request.phone,
            body=request.message,
            contact_name=request.contact_name,
            idempotency_key=idempotency_key,
            request_hash=request_hash(request),
        )
        if request.template is not None or request.send_at is not None:
            prepared = send_options.prepare(self.store, outbound, request)
            if isinstance(prepared, MessageRecord):
                return prepared  # scheduled
            plan = prepared
        else:
            plan = self.store.begin_send(outbound)
        if plan.outcome == "conflict":
            raise IdempotencyConflict()
        if plan.outcome == "not_connected":
            raise SessionNotConnected()
        if plan.outcome == "rate_limited":
            raise RateLimited(plan.retry_after_s)
        assert plan.message is not None
        if plan.outcome in ("replay", "in_flight"):
            error = _FINAL_ERRORS.get(plan.message.error_code or "")
            if plan.message.status == "failed" and error is not None:
                raise error()
            return plan.message
        return self.deliver(name, plan)

    def deliver(self, name: str, plan: SendPlan) -> MessageRecord:
        """Send an outbox row this caller holds (``plan.outcome`` "send") through the host of
        session ``name``, and record what happened."""
        assert self.keyring is not None and plan.message is not None
        host = HostSession(self.hosts.client_for(plan.host), self.keyring, name, plan.host_token)
        message_id = plan.message.id
        phone, text = plan.message.phone, plan.message.body
        try:
            sent = host.call(
                lambda token: host.host.send_message(name, token, phone=phone, message=text)
            )
        except HostSessionClosed:
            self.store.finish_send(
                message_id, "failed", error_code=SessionNotConnected.code, session_lost=True
            )
            raise SessionNotConnected() from None
        except HostUnknownRecipient:
            self.store.finish_send(message_id, "failed", error_code=UnknownRecipient.code)
            raise UnknownRecipient() from None
        except (HostError, HostTimeout) as failure:
            self.store.finish_send(
                message_id,
                "unknown" if failure.maybe_acted else "retryable",
                error_code=failure.code,
            )
            raise
        finally:
            if host.new_token_ciphertext:
                self.store.apply_host_state(
                    SessionUpdate(name, "connected", host_token=host.new_token_ciphertext)
                )
        return self.store.finish_send(message_id, "sent", wpp_message_id=sent.wpp_message_id)
