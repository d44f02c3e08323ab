"""Sending a message: idempotent, rate-governed, and exactly once per key.

1. ``gateway_begin_send`` (one round trip) decides: replay a finished send, report one still
   in flight, refuse a reused key with another body, a session that is not connected or an
   empty token bucket; or write the outbox row (queued, with a lease) and go on.
2. The host is asked whether the session is connected, and only then to send, once
   (``messaging.connection``: in a warm container the check runs beside step 1; a session
   the host is still bringing up is ``503 session_starting``, one it no longer has ``409
   session_not_connected``; a session still syncing is sent to as soon as the host has it).
3. ``gateway_finish_send`` (one round trip) records what happened, naming the contact by the
   canonical id the host sent to. If the host may have sent the message without answering (a
   timeout), the row stays queued under its lease: a late ``onack`` for the same contact and
   text matches it, and a retry with the same key after the lease sends it only if no ack
   came. The host's 400 "number does not exist" is such a case too: the middleware answers so
   also when WhatsApp's server failed the lookup (which wa-js then keeps as a miss for 15 s,
   so the host's own check cannot tell), and sends anyway. No ack by the end of the lease
   decides it: ``unknown_recipient``.

Each take of an outbox row counts one more attempt, and the attempt is the fence
(``messaging.fence``): ``gateway_finish_send`` changes nothing for an attempt that lost the row.

A send with a template or a time is decided by ``send_options.prepare`` instead of step 1;
the scheduler sends what it claims through step 2 and 3 (``deliver``). A scheduled message
whose session is not connected, or that the host refused before sending, waits again for a
later claim instead of failing.

A send to a group goes only to a group the account is in (``messaging.groups``, before step
1); a reply (``reply_to``) quotes one of the caller's messages of the same chat that WhatsApp
has, checked in step 1, and the host gets its WhatsApp id as ``options.quotedMsg``.

A send with a file (``media.outgoing``) is checked, and an upload read from Storage, before
step 1; the row keeps the file's type, name, size and sha256 (which the Idempotency-Key covers
instead of the bytes). A file sent inline is stored in the bucket at the row's ``media_path``
between step 1 and 2, so the row points at it whatever the host does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wa_gateway.auth.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import (
    ApiError,
    HostError,
    HostTimeout,
    IdempotencyConflict,
    InvalidRequest,
    MessageDeleted,
    MessageNotFound,
    MessageNotSent,
    RateLimited,
    SessionNotConnected,
    UnknownRecipient,
)
from wa_gateway.events.host_messages import digits_of, lid_of
from wa_gateway.host.answers import HostSessionClosed, HostUnknownRecipient, SentMessage
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.message_requests import SendRequest
from wa_gateway.messaging import chats, send_options
from wa_gateway.messaging.connection import ConnectionChecks, EarlyCheck, not_connected
from wa_gateway.messaging.fence import Hold, LeaseLost
from wa_gateway.records import (
    MessageRecord,
    SessionUpdate,
)
from wa_gateway.send_records import OutboundRequest, SendPlan
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import Store

if TYPE_CHECKING:
    from wa_gateway.media.outgoing import OutgoingMedia
    from wa_gateway.media.storage import MediaStore

# A send that failed for good answers the same error to every retry with its key.
_FINAL_ERRORS: dict[str, type[ApiError]] = {
    SessionNotConnected.code: SessionNotConnected,
    UnknownRecipient.code: UnknownRecipient,
}


# What a reply's check answers, when the quoted message will not do.
_REPLY_REFUSALS: dict[str, Callable[[], ApiError]] = {
    "message_not_found": lambda: MessageNotFound("'reply_to' names no message of yours."),
    "reply_other_chat": lambda: InvalidRequest("'reply_to' must be a message of the same chat."),
    "message_not_sent": MessageNotSent,
    "message_deleted": MessageDeleted,
}

UNCONFIRMED_RECIPIENT = (
    "The WhatsApp host said the number does not exist but could not confirm it, and may have "
    "sent the message. Retry with the same Idempotency-Key to learn what happened."
)


def request_hash(request: SendRequest, media: OutgoingMedia | None = None) -> str:
    fields: list[object] = [request.account, request.phone, request.message, request.contact_name]
    if media is not None:
        fields += [media.sha256, media.mime_type, media.filename]
    if request.template is not None or request.send_at is not None:
        fields += [
            request.template,
            dict(sorted((request.variables or {}).items())),
            request.send_at.isoformat() if request.send_at else None,
        ]
    if request.group is not None or request.reply_to is not None:
        fields += [request.group, request.reply_to]
    canonical = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class MessageService:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    media_store: Callable[[], MediaStore] | None = None  # built when a send first has a file
    max_scheduled: int = 1000  # messages a user may have waiting for their time
    connections: ConnectionChecks = field(default_factory=ConnectionChecks, init=False, repr=False)

    def send(
        self, caller: Caller, request: SendRequest, *, idempotency_key: str | None = None
    ) -> MessageRecord:
        name = session_name_for(caller.user_id, request.account)
        media = None
        if request.media is not None:
            from wa_gateway.media import outgoing as outgoing_media

            assert self.media_store is not None
            media = outgoing_media.resolve(caller.user_id, request.media, self.media_store())
            if media.kind == "ptt" and request.message:
                raise InvalidRequest("A voice note has no caption: send the text apart.")
        if request.group is not None:
            from wa_gateway.messaging.groups import ensure_member

            ensure_member(self, caller, name, request.group)
        outbound = OutboundRequest(
            user_id=caller.user_id,
            session_name=name,
            phone=None if request.lid or request.group else request.phone,
            contact_lid=request.lid,
            body=request.message,
            contact_name=request.contact_name,
            idempotency_key=idempotency_key,
            request_hash=request_hash(request, media),
            media=media.file if media else None,
            reply_to=request.reply_to,
            group_id=request.group,
        )
        early = self.connections.early(self, name) if request.send_at is None else None
        if request.template is not None or request.send_at is not None:
            prepared = send_options.prepare(
                self.store, outbound, request, max_scheduled=self.max_scheduled
            )
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
        if plan.outcome in _REPLY_REFUSALS:
            raise _REPLY_REFUSALS[plan.outcome]()
        assert plan.message is not None
        if plan.outcome in ("replay", "in_flight"):
            error = _FINAL_ERRORS.get(plan.message.error_code or "")
            if plan.message.status == "failed" and error is not None:
                raise error()
            return plan.message
        if media is not None and media.path is None:
            from wa_gateway.media.outgoing import store_inline

            assert self.media_store is not None
            store_inline(self.store, self.media_store, plan.message, media)
        try:
            return self.deliver(name, plan, media, early=early)
        except LeaseLost as lost:
            return lost.message  # another attempt holds it: answered as in flight

    def send_bound_s(self, *, media: bool = False) -> float:
        """The longest one send takes once its row is held (the host's answer, its record)."""
        return self.hosts.send_bound_s(media=media)

    def deliver(
        self,
        name: str,
        plan: SendPlan,
        media: OutgoingMedia | None = None,
        *,
        early: EarlyCheck | None = None,
    ) -> MessageRecord:
        """Send an outbox row this caller holds (``plan.outcome`` "send") through the host of
        session ``name``, with its file if it has one, once the host says it has the
        session's client, and record what happened. :class:`LeaseLost` when the row turned
        out to be another attempt's."""
        assert self.keyring is not None and plan.message is not None
        held = plan.message
        hold = Hold(self.store, plan, self.send_bound_s(media=media is not None))
        chat, text, quoted = chats.of_message(held), held.body, held.reply_to_wpp_id
        scheduled = held.send_at is not None
        host: HostSession | None = None
        token_kept = False
        try:
            host, connected = self.connections.checked(self, name, plan, early)
            if not connected:
                not_connected(self.store, host, plan)
            if plan.syncing or host.new_token_ciphertext:
                # The host has the client: the session is usable, whatever events are late.
                self.store.apply_host_state(
                    SessionUpdate(name, "connected", host_token=host.new_token_ciphertext)
                )
                token_kept = True
            sent = host.call(
                lambda token: _send(
                    host.host, name, token, chat, text, media, quoted, hold.before_send
                )
            )
        except HostSessionClosed:
            # A scheduled message waits for its session (up to the grace) instead of failing
            # on one answer: a host restarting, or a login still syncing, is back in moments.
            # Whether the session is gone is for its events and reconcile to say.
            self.store.finish_send(
                held,
                "retryable" if scheduled else "failed",
                error_code=SessionNotConnected.code,
                session_lost=not scheduled,
            )
            raise SessionNotConnected() from None
        except HostUnknownRecipient:
            # Not proof: the host answers so when WhatsApp's server failed the lookup, and
            # sends all the same. An ack settles it; none by the end of the lease, the lease.
            self.store.finish_send(held, "unknown", error_code=UnknownRecipient.code)
            raise HostError(UNCONFIRMED_RECIPIENT) from None
        except (HostError, HostTimeout) as failure:
            self.store.finish_send(
                held,
                "unknown" if failure.maybe_acted else "retryable",
                error_code=failure.code,
            )
            raise
        finally:
            if host is not None and host.new_token_ciphertext and not token_kept:
                # Only the token: "starting" comes first in an attempt, so it moves nothing.
                self.store.apply_host_state(
                    SessionUpdate(name, "starting", host_token=host.new_token_ciphertext)
                )
        # A group's message names the group; a contact's the canonical id it went to.
        to = None if chat.is_group else sent.to
        return self.store.finish_send(
            held,
            "sent",
            wpp_message_id=sent.wpp_message_id,
            phone=None if lid_of(to) else digits_of(to),
            contact_lid=lid_of(to),
        )


def _send(
    client: HostClient,
    name: str,
    token: str,
    chat: chats.HostChat,
    text: str,
    media: OutgoingMedia | None,
    quoted: str | None,
    before_send: Callable[[], None],
) -> SentMessage:
    """The host's send call for a text or a file, once the caller made sure it still holds
    the row (``before_send``)."""
    before_send()
    if media is not None:
        from wa_gateway.media.outgoing import send

        return send(client, name, token, chat, media, caption=text, quoted=quoted)
    return client.send_message(name, token, chat, text, quoted=quoted)
