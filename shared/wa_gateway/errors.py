"""The error contract: every failure a caller can see is one of these classes.

Each maps to one HTTP status and a snake_case code, and renders as
``{"error": {"code": ..., "message": ...}}``. Messages are written for the
person who reads them; they never carry a secret, a stack trace or a detail
of which internal check failed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SettingsError(Exception):
    """A setting is missing or malformed. The message names it and never holds its value."""


class ApiError(Exception):
    """Base of every error that becomes an HTTP answer."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Something went wrong on our side. Try again later."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class _RetryLater(ApiError):
    """An error whose answer says, in ``Retry-After``, how many seconds to wait before trying
    again."""

    def __init__(self, retry_after: int, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"
    default_message = "The request body is not valid JSON."


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"
    default_message = "The request is not valid."


class MissingToken(ApiError):
    status, code = 401, "missing_token"
    default_message = "Sign in first: send your access token as 'Authorization: Bearer <token>'."


class InvalidToken(ApiError):
    status, code = 401, "invalid_token"
    default_message = "The access token is not valid. Sign in again."


class TokenExpired(ApiError):
    status, code = 401, "token_expired"
    default_message = "The access token has expired. Refresh it or sign in again."


class AnonymousUser(ApiError):
    status, code = 401, "anonymous_user"
    default_message = "Anonymous sign-ins cannot use WhatsApp here. Sign in with an account."


class InvalidVerifyToken(ApiError):
    status, code = 401, "invalid_verify_token"
    default_message = "The webhook proof is missing or wrong."


class Forbidden(ApiError):
    status, code = 403, "forbidden"
    default_message = "You may not use this."


class InsufficientScope(ApiError):
    status, code = 403, "insufficient_scope"
    default_message = "This API key may not do this: it lacks the scope."


class NotFound(ApiError):
    status, code = 404, "not_found"
    default_message = "Nothing is here."


class MessageNotFound(ApiError):
    status, code = 404, "message_not_found"
    default_message = "You have no message with this id."


class GroupNotFound(ApiError):
    status, code = 404, "group_not_found"
    default_message = (
        "This WhatsApp account is not in that group. Check the group's id, or the account."
    )


class SessionNotConnected(ApiError):
    status, code = 409, "session_not_connected"
    default_message = "Your WhatsApp session is not connected. Connect it first."


class AccountLimit(ApiError):
    status, code = 409, "account_limit"
    default_message = "You have linked as many WhatsApp accounts as allowed. Remove one first."


class IdempotencyConflict(ApiError):
    status, code = 409, "idempotency_conflict"
    default_message = "This Idempotency-Key was already used with a different request body."


class NotScheduled(ApiError):
    status, code = 409, "not_scheduled"
    default_message = "This message is no longer scheduled: it has been sent or has failed."


class LimitReached(ApiError):
    status, code = 409, "limit_reached"
    default_message = "You have as many of these as allowed. Delete one first."


class MessageNotSent(ApiError):
    status, code = 409, "message_not_sent"
    default_message = (
        "This message has not reached WhatsApp (it is still being sent, or failed): it cannot "
        "be quoted, reacted to, edited or deleted."
    )


class MessageDeleted(ApiError):
    status, code = 409, "message_deleted"
    default_message = "This message was deleted for everyone."


class NotOwnMessage(ApiError):
    status, code = 409, "not_own_message"
    default_message = "Only messages this account sent can be edited or deleted for everyone."


class NotEditable(ApiError):
    status, code = 409, "not_editable"
    default_message = "Only a text message can be edited; a file's caption cannot."


class EditWindowPassed(ApiError):
    status, code = 409, "edit_window_passed"
    default_message = "WhatsApp lets a message be edited for 15 minutes after it was sent."


class DeleteWindowPassed(ApiError):
    status, code = 409, "delete_window_passed"
    default_message = (
        "WhatsApp lets a message be deleted for everyone for 2 days after it was sent."
    )


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"
    default_message = "The request body is too large."


class InvalidPhone(ApiError):
    status, code = 422, "invalid_phone"
    default_message = "The phone number must have 8 to 15 digits, country code first."


class MessageTooLong(ApiError):
    status, code = 422, "message_too_long"
    default_message = "The message is too long."


class UnsupportedMedia(ApiError):
    status, code = 422, "unsupported_media"
    default_message = (
        "WhatsApp cannot send this file: send a JPEG, PNG or WebP image, an MP4 or 3GPP video, "
        "Ogg, MP3, M4A, AAC or AMR audio, or a PDF, text or Office document, whose type is "
        "what its content is."
    )


class EndpointNotAllowed(ApiError):
    status, code = 422, "endpoint_not_allowed"
    default_message = "Events are posted only to https URLs of public addresses."


class InvalidEmoji(ApiError):
    status, code = 422, "invalid_emoji"
    default_message = (
        "'emoji' must be one emoji (a single character or sequence WhatsApp shows as one "
        'emoji, such as 👍, ❤️, 👍🏽, 🇧🇷 or 👨‍👩‍👧), or "" to take your reaction back.'
    )


class UnknownRecipient(ApiError):
    status, code = 422, "unknown_recipient"
    default_message = "This phone number is not on WhatsApp."


class UnknownTemplate(ApiError):
    status, code = 422, "unknown_template"
    default_message = "You have no template of that name."


class ScheduledLimit(ApiError):
    status, code = 422, "scheduled_limit"
    default_message = (
        "You have as many messages scheduled as allowed. Cancel one, or wait until some are "
        "sent, then schedule again."
    )


class TemplateVariableMissing(ApiError):
    status, code = 422, "template_variable_missing"
    default_message = "The template needs a variable the request did not give."


class RateLimited(_RetryLater):
    status, code = 429, "rate_limited"
    default_message = "Too many messages in a short time. Wait and try again."


class _HostFailure(ApiError):
    """A failure talking to the host. ``maybe_acted``: the host may have done what was asked
    (it got the request and no clear refusal came back), so a blind repeat could do it twice."""

    def __init__(self, message: str | None = None, *, maybe_acted: bool = True):
        super().__init__(message)
        self.maybe_acted = maybe_acted


class HostError(_HostFailure):
    status, code = 502, "host_error"
    default_message = "The WhatsApp host answered with an error. Try again shortly."


class StoreUnavailable(ApiError):
    status, code = 503, "store_unavailable"
    default_message = "The database is unavailable. Try again shortly."


class NoCapacity(ApiError):
    status, code = 503, "no_capacity"
    default_message = "Every WhatsApp host is full right now. Try again later."


class SessionStarting(_RetryLater):
    """The session is linked and its host is still getting it ready (after a scan, or
    restoring it after a restart): nothing was sent, and a retry soon will be."""

    status, code = 503, "session_starting"
    default_message = (
        "Your WhatsApp is linked and the host is still getting it ready. Nothing was sent; "
        "try again in a few seconds."
    )


class HostTimeout(_HostFailure):
    status, code = 504, "host_timeout"
    default_message = "The WhatsApp host did not answer in time. Try again shortly."


class SessionBusy(_RetryLater):
    """The host is still running a pairing the product no longer follows; nothing the host
    offers stops it, so it ends at its own time limit."""

    status, code = 409, "session_busy"
    default_message = (
        "WhatsApp is still showing the previous pairing on the host. It ends within a minute; "
        "try again then."
    )
