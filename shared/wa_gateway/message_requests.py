"""Checks of what send-message's routes take, each failure an error of the contract naming the
field: a send (a text or a file, to a contact or a group, maybe quoting a message, with a
template or a time), a cancel, and the actions on a message (react, edit, delete) or a
conversation (read)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from wa_gateway.emoji import is_emoji
from wa_gateway.errors import InvalidEmoji, InvalidPhone, InvalidRequest, MessageTooLong
from wa_gateway.validation import (
    DEFAULT_ACCOUNT,
    normalize_phone,
    parse_account,
    reject_unknown_fields,
)

if TYPE_CHECKING:
    from wa_gateway.media.outgoing import MediaRequest

MAX_MESSAGE_CHARS = 4096
MAX_CONTACT_NAME_CHARS = 200


LID_SUFFIX = "@lid"
_LID = re.compile(r"^([0-9]{5,20})@lid$")
# The host sends to a LID whatever has more than 14 characters (its contactToArray).
MAX_SENDABLE_PHONE_DIGITS = 14


class SendRequest(NamedTuple):
    """A send: ``message`` is the text, or "" when ``template`` names the caller's template to
    render with ``variables``; ``send_at`` (aware, UTC) schedules it. With ``media``,
    ``message`` is the file's caption (maybe ""). To a group, ``phone`` is "" and ``group``
    names it; ``reply_to`` quotes one of the caller's messages of the same chat."""

    phone: str  # digits, or "<digits>@lid" for a contact known by their privacy id (LID)
    message: str
    contact_name: str | None = None
    account: str = DEFAULT_ACCOUNT
    template: str | None = None
    variables: Mapping[str, str] | None = None
    send_at: datetime | None = None
    media: MediaRequest | None = None
    group: str | None = None  # "<digits>[-<digits>]@g.us" in place of phone
    reply_to: str | None = None  # the id of the caller's message this one quotes

    @property
    def lid(self) -> str | None:
        """The LID's digits when the message goes to a LID, else None."""
        return self.phone.removesuffix(LID_SUFFIX) if self.phone.endswith(LID_SUFFIX) else None


def parse_recipient(value: Any) -> str:
    """A phone number the host can send to (8 to 14 digits), or a LID as ``<digits>@lid``."""
    if isinstance(value, str) and value.strip().lower().endswith(LID_SUFFIX):
        lid = _LID.match(value.strip().lower())
        if lid is None:
            raise InvalidPhone("A LID is its digits followed by '@lid', like 123456789012345@lid.")
        return f"{lid.group(1)}{LID_SUFFIX}"
    digits = normalize_phone(value)
    if len(digits) > MAX_SENDABLE_PHONE_DIGITS:
        raise InvalidPhone(
            f"The phone number has {len(digits)} digits: the WhatsApp host reads anything longer "
            f"than {MAX_SENDABLE_PHONE_DIGITS} digits as a privacy id (LID), not a phone "
            "number, so it cannot send there. Check the number, or write a LID as "
            "'<digits>@lid'."
        )
    return digits


def parse_send_request(body: dict[str, Any], *, now: datetime | None = None) -> SendRequest:
    reject_unknown_fields(
        body,
        {
            "phone",
            "group",
            "message",
            "contactName",
            "account",
            "template",
            "variables",
            "send_at",
            "media",
            "reply_to",
        },
    )
    phone, group = parse_chat(body)
    reply_to = parse_message_id(body["reply_to"], "reply_to") if "reply_to" in body else None
    if reply_to is not None and "send_at" in body:
        raise InvalidRequest("'reply_to' goes with a message sent now, not with 'send_at'.")
    template, variables = parse_template_fields(body)
    message = body.get("message")
    media = None
    if "media" in body:
        from wa_gateway.media.outgoing import parse_caption, parse_media

        if template is not None or "send_at" in body:
            raise InvalidRequest(
                "A file is sent now and as it is: not with 'template' or 'send_at'."
            )
        message = parse_caption(message)
        media = parse_media(body["media"])
    elif template is not None:
        message = ""
    else:
        message = parse_text(message)
    contact = body.get("contactName")
    if contact is not None and (
        not isinstance(contact, str) or len(contact) > MAX_CONTACT_NAME_CHARS
    ):
        raise InvalidRequest(
            f"'contactName' must be a string of at most {MAX_CONTACT_NAME_CHARS} characters."
        )
    return SendRequest(
        phone,
        message,
        contact or None,
        parse_account(body.get("account")),
        template,
        variables,
        parse_send_at(body.get("send_at"), now or datetime.now(UTC)),
        media,
        group,
        reply_to,
    )


GROUP_ID = re.compile(r"^[0-9]{5,24}(-[0-9]{1,20})?@g\.us$")


def parse_group(value: Any) -> str:
    """A group's id as WhatsApp names it: ``<digits>-<digits>@g.us`` or ``<digits>@g.us``."""
    if not isinstance(value, str) or not GROUP_ID.match(value.strip()):
        raise InvalidRequest(
            "'group' must be a group's id: '<digits>-<digits>@g.us' or '<digits>@g.us'."
        )
    return value.strip()


def parse_chat(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """(phone, group) of a call that names a chat: ``phone`` (a number or ``<digits>@lid``) or
    ``group``, exactly one of them; the phone is "" for a group."""
    if "phone" in body and "group" in body:
        raise InvalidRequest("Send either 'phone' or 'group', not both.")
    if "group" in body:
        return "", parse_group(body["group"])
    if "phone" not in body:
        raise InvalidRequest("'phone' (or 'group') is required.")
    return parse_recipient(body["phone"]), None


def chat_id_of(phone: str, group: str | None) -> str:
    """The chat a call names, as WhatsApp names it (``whatsapp_messages.chat_id``)."""
    if group is not None:
        return group
    return phone if phone.endswith(LID_SUFFIX) else f"{phone}@c.us"


def parse_message_id(value: Any, field: str = "id") -> str:
    """The id of one of the caller's messages, as send-message answered it (a UUID)."""
    import uuid  # only a call naming a message reads an id: 2 ms off every other cold start

    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(
            f"'{field}' must be the id of a message, as send-message answered it."
        ) from None


class ReactRequest(NamedTuple):
    id: str
    emoji: str  # "" takes the reaction back


def parse_react_request(body: Mapping[str, Any]) -> ReactRequest:
    """``{"id", "emoji"}``: one emoji (``wa_gateway.emoji``), or "" to take it back."""
    reject_unknown_fields(dict(body), {"id", "emoji"})
    message_id = parse_message_id(body.get("id"))
    emoji = body.get("emoji")
    if not isinstance(emoji, str):
        raise InvalidRequest("'emoji' must be a string: one emoji, or \"\" to take it back.")
    if emoji and not is_emoji(emoji):
        raise InvalidEmoji()
    return ReactRequest(message_id, emoji)


class EditRequest(NamedTuple):
    id: str
    message: str


def parse_edit_request(body: Mapping[str, Any]) -> EditRequest:
    """``{"id", "message"}``: the new text, 1 to 4096 characters, not only spaces."""
    reject_unknown_fields(dict(body), {"id", "message"})
    message_id = parse_message_id(body.get("id"))
    return EditRequest(message_id, parse_text(body.get("message")))


def parse_delete_request(body: Mapping[str, Any]) -> str:
    """``{"id"}``: the message to delete for everyone."""
    reject_unknown_fields(dict(body), {"id"})
    return parse_message_id(body.get("id"))


class ReadRequest(NamedTuple):
    account: str
    chat_id: str  # "<digits>@c.us", "<digits>@lid" or "<group>@g.us"


def parse_read_request(body: Mapping[str, Any]) -> ReadRequest:
    """``{"account"?, "phone" | "group"}``: the chat whose incoming messages to mark read."""
    reject_unknown_fields(dict(body), {"account", "phone", "group"})
    phone, group = parse_chat(body)
    return ReadRequest(parse_account(body.get("account")), chat_id_of(phone, group))


def parse_text(message: Any) -> str:
    """A message's text: 1 to 4096 characters, not only spaces."""
    if not isinstance(message, str) or not message.strip():
        raise InvalidRequest("'message' must be a non-empty string.")
    if len(message) > MAX_MESSAGE_CHARS:
        raise MessageTooLong(
            f"The message has {len(message)} characters; at most {MAX_MESSAGE_CHARS}."
        )
    return message


_TEMPLATE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def parse_template_fields(body: Mapping[str, Any]) -> tuple[str | None, dict[str, str] | None]:
    """``template`` and ``variables`` of a send (both absent, or a template name instead of
    ``message`` with its variables, names mapped to strings)."""
    template = body.get("template")
    variables = body.get("variables")
    if template is None:
        if variables is not None:
            raise InvalidRequest("'variables' goes with 'template'.")
        return None, None
    if "message" in body:
        raise InvalidRequest("Send either 'message' or 'template', not both.")
    if not isinstance(template, str) or not _TEMPLATE_NAME.match(template):
        raise InvalidRequest("'template' must be a template name: 1 to 64 of a-z, 0-9, _ and -.")
    if variables is None:
        return template, {}
    if not isinstance(variables, dict):
        raise InvalidRequest("'variables' must be an object of names and texts.")
    for name, value in variables.items():
        if not _VARIABLE_NAME.match(name):
            raise InvalidRequest(
                f"Variable '{name}' is not a placeholder name: a-z first, then up to 31 of "
                "a-z, 0-9 and _."
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"Variable '{name}' must be a string.")
    return template, dict(variables)


SCHEDULE_MIN_AHEAD = timedelta(minutes=1)
SCHEDULE_MAX_AHEAD = timedelta(days=30)


def parse_send_at(value: Any, now: datetime) -> datetime | None:
    """An ISO 8601 time with its offset, one minute to 30 days after ``now``, in UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(
            "'send_at' must be an ISO 8601 time with its offset, such as 2026-12-01T09:30:00-03:00."
        )
    if not now + SCHEDULE_MIN_AHEAD <= moment <= now + SCHEDULE_MAX_AHEAD:
        raise InvalidRequest("'send_at' must be between one minute and 30 days from now.")
    return moment.astimezone(UTC)


def parse_cancel_request(body: Mapping[str, Any]) -> str:
    """The id of the scheduled message to cancel."""
    reject_unknown_fields(dict(body), {"id"})
    return parse_message_id(body.get("id"))
