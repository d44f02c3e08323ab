"""Shapes of what the functions answer (openapi.yaml's Session and Message schemas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wa_gateway.records import MessageRecord, SessionRecord
from wa_gateway.send_records import ChatRecord


def iso_utc(value: str | None) -> str | None:
    """A database timestamp as ``2026-11-22T12:00:20Z``."""
    if not value:
        return None
    moment = datetime.fromisoformat(value).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_until(value: str | None) -> int | None:
    if not value:
        return None
    left = datetime.fromisoformat(value) - datetime.now(UTC)
    return max(0, int(left.total_seconds()))


def session_json(record: SessionRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    pairing = record.status == "pairing"
    qr = None
    if pairing and record.pairing_method == "qr" and record.qr_code:
        qr = {
            "data_url": record.qr_image,
            "raw": record.qr_code,
            "expires_at": iso_utc(record.qr_expires_at),
            # The same moment as seconds from now, for countdowns on a clock that may be off.
            "expires_in": _seconds_until(record.qr_expires_at),
        }
    return {
        "id": record.id,
        "name": record.session_id,
        "account": record.account,
        "status": record.status,
        "status_reason": record.status_reason,
        "qr": qr,
        "pairing_code": record.pairing_code
        if pairing and record.pairing_method == "code"
        else None,
        "phone_number": record.phone_number,
        "last_activity": iso_utc(record.last_activity),
        "updated_at": iso_utc(record.updated_at),
    }


def message_json(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "to": record.group_id or record.phone or f"{record.contact_lid}@lid",
        "wpp_message_id": record.wpp_message_id,
        "created_at": iso_utc(record.created_at),
        "send_at": iso_utc(record.send_at),
        "template": record.template_name,
        "media": _media_json(record),
        "body": record.body,
        "group": record.group_id,
        "reply_to": record.reply_to,
        "edited_at": iso_utc(record.edited_at),
        "deleted_at": iso_utc(record.deleted_at),
    }


def read_json(chat: ChatRecord | None, marked: int) -> dict[str, Any]:
    """send-message/read's answer: the chat's unread count now, and how many were marked."""
    return {
        "conversation": None
        if chat is None
        else {"account": chat.account, "chat_id": chat.chat_id, "unread": chat.unread},
        "marked": marked,
    }


def _media_json(record: MessageRecord) -> dict[str, Any] | None:
    if record.media_state is None:
        return None
    return {
        "type": record.message_type,
        "mime_type": record.mime_type,
        "filename": record.filename,
        "size": record.size,
        "sha256": record.sha256,
        "path": record.media_path,
        "state": record.media_state,
    }
