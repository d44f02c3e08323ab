"""Messages in and out of a connected session: sends, acks, incoming messages, read marks.

Every sent message lands in the session's outbox (``GET /_sim/<session>/outbox``). By
default each one is acked 2 (received) and then 3 (read) a little later, each ack an
``onack`` webhook whose ``id`` is an object. Incoming messages become ``onmessage``; when
that webhook gets a 2xx answer the chat is marked read (``sendSeen``), recorded in the
session's ``seen`` list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.simulator.config import Settings
from local.simulator.forms import UploadedFile, js_truthy
from local.simulator.messages import (
    ack_payload,
    derived_group_id,
    derived_lid,
    derived_number,
    incoming_message,
    message_type_for,
    now,
    outgoing_message,
    presence,
    thumbnail_of,
    to_wid,
)
from local.simulator.phones import (
    canonical_number,
    check_number_status,
    contact_to_array,
    number_exists,
    skips_number_check,
)
from local.simulator.scheduler import Scheduler
from local.simulator.state import Client, SessionManager
from local.simulator.webhooks import Webhooks

_DATA_URI = re.compile(r"^data:([^;,]*)(;[^,]*)?,(.*)$", re.DOTALL)


class SendFailed(Exception):
    """The library threw while sending; ``error`` is what JSON.stringify makes of it."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__("send failed")
        self.error = error


@dataclass
class Recipients:
    """Recipients after ``statusConnection``: ``(chat id, exists)`` in request order."""

    targets: list[tuple[str, bool]]
    first_unknown: str | None


@dataclass
class FileSpec:
    filename: str
    mimetype: str
    size: int
    sha256: str | None = None  # of the bytes, when the library had them
    data: str | None = None  # the bytes in base64, when the library had them


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SentRecord:
    id: str
    route: str
    chat_id: str
    type: str
    body: str
    t: int
    message: dict[str, Any]
    ack: int = 1
    manual_ack: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    file_data: str | None = None  # a sent file's bytes in base64 (autoDownload's ack body)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "to": self.chat_id,
            "type": self.type,
            "body": self.body,
            "t": self.t,
            "ack": self.ack,
            **self.extra,
        }


def _incoming_file(spec: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The file of an incoming message: ``media: {data, mime_type, filename?}`` or the older
    ``base64`` and ``mimetype``; ``(None, None, None)`` without one."""
    media = spec.get("media")
    if media is None:
        data, mimetype = spec.get("base64"), spec.get("mimetype")
        if isinstance(data, str) and isinstance(mimetype, str):
            return data, mimetype, None
        return None, None, None
    if not isinstance(media, dict):
        raise ValueError('"media" must be an object with "data" and "mime_type"')
    data, mimetype, filename = media.get("data"), media.get("mime_type"), media.get("filename")
    if not isinstance(data, str) or not isinstance(mimetype, str) or not mimetype:
        raise ValueError('"media" needs "data" (base64) and "mime_type"')
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('"media.data" must be base64') from None
    if filename is not None and not isinstance(filename, str):
        raise ValueError('"media.filename" must be a string')
    return data, mimetype, filename


class Messenger:
    def __init__(
        self,
        manager: SessionManager,
        settings: Settings,
        webhooks: Webhooks,
        scheduler: Scheduler,
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.webhooks = webhooks
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self._outbox: dict[str, list[SentRecord]] = {}
        self._inbox: dict[str, list[dict[str, Any]]] = {}
        self._seen: dict[str, list[dict[str, Any]]] = {}
        # Per session, the incoming messages not marked read yet: message id -> chat id.
        self._unread: dict[str, dict[str, str]] = {}
        # Incoming media by message id: (base64, mimetype), for download-media.
        self._media: dict[str, tuple[str, str]] = {}
        # Contacts WhatsApp knows: phone number -> LID digits, and wid -> push name.
        self._lids: dict[str, str] = {}
        self._pushnames: dict[str, str] = {}
        # Per (session, contact): the canonical id of a number found, and when a lookup last
        # came back empty (wa-js keeps that for number_miss_cache_ms).
        self._found: dict[tuple[str, str], str] = {}
        self._misses: dict[tuple[str, str], float] = {}

    # ----------------------------------------------------------------- recipients

    def resolve_recipients(self, name: str, body: dict[str, Any]) -> Recipients:
        """``contactToArray`` then ``checkNumberStatus``; raises TypeError like the server.

        A contact whose lookup misses (no account, a failed lookup, or a miss still cached)
        is answered "does not exist" and left as written; a host that goes on after that
        answer sends to it all the same when the number has an account."""
        phone = body.get("phone")
        contacts = contact_to_array(
            phone if js_truthy(phone) else [],
            body.get("isGroup"),
            body.get("isNewsletter"),
            body.get("isLid"),
        )
        config = self.settings.config
        targets: list[tuple[str, bool]] = []
        first_unknown: str | None = None
        for contact in contacts:
            if skips_number_check(contact, body):
                targets.append((contact, True))
                continue
            canonical = self.lookup(name, contact)
            if canonical is None:
                number = contact.split("@")[0]
                if first_unknown is None:
                    first_unknown = number
                sends_anyway = config.answer_after_error and number_exists(config, number)
                targets.append((contact, sends_anyway))
            else:
                targets.append((canonical, True))
        return Recipients(targets, first_unknown)

    def lookup(self, name: str, contact: str) -> str | None:
        """``WPP.contact.queryWidExists`` of a ``...@c.us`` contact in session ``name``: its
        canonical id, or None. A number found once is known from then on (the contact store:
        WhatsApp's server is not asked again). A lookup the server fails comes back as None
        too, and a None is kept for ``number_miss_cache_ms``: the checks meanwhile answer it
        again without asking."""
        config = self.settings.config
        key = (name, contact)
        with self._lock:
            known = self._found.get(key)
            missed_at = self._misses.get(key)
        if known is not None:
            return known
        keep_s = config.number_miss_cache_ms / 1000
        if missed_at is not None and time.monotonic() < missed_at + keep_s:
            return None
        canonical = None
        if not self.settings.draw_number_check_fault():
            canonical = check_number_status(config, contact)
        with self._lock:
            if canonical is not None:
                self._found[key] = canonical
            else:
                self._misses[key] = time.monotonic()
        return canonical

    # ----------------------------------------------------------------- sending

    def send_text(
        self, client: Client, chat_id: str, text: Any, quoted: Any, route: str
    ) -> dict[str, Any]:
        if text is None or isinstance(text, dict | list):
            raise SendFailed({})
        body = ("true" if text else "false") if isinstance(text, bool) else str(text)
        quoted_id = quoted if isinstance(quoted, str) else None
        message = outgoing_message(client.wid or "", chat_id, body, quoted_msg_id=quoted_id)
        self._record(client, route, message, {})
        self._wait_for_server()
        return message

    def _wait_for_server(self) -> None:
        """The library's ``waitForAck``: the message is on its way, and the answer comes once
        WhatsApp's server has taken it (``send_time_ms``)."""
        delay_ms = self.settings.config.send_time_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)

    @staticmethod
    def load_file(source: Any, upload: UploadedFile | None, filename: Any) -> FileSpec:
        """What the library makes of ``path``/``base64``/an upload, or SendFailed."""
        name = filename if isinstance(filename, str) and filename else "file"
        if upload is not None and not js_truthy(source):
            if not upload.data:
                raise SendFailed({"code": "empty_file"})
            mimetype = upload.mimetype
            if not mimetype or mimetype == "application/octet-stream":
                mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
            return FileSpec(
                name,
                mimetype,
                len(upload.data),
                _sha256(upload.data),
                base64.b64encode(upload.data).decode(),
            )
        if not isinstance(source, str) or not source:
            raise SendFailed({})
        match = _DATA_URI.match(source)
        if source.startswith("data:") and match:
            mimetype = match.group(1) or "text/plain"
            try:
                data = base64.b64decode(match.group(3), validate=False)
            except (binascii.Error, ValueError):
                data = b""
            if not data:
                raise SendFailed({"code": "empty_file"})
            return FileSpec(
                name, mimetype, len(data), _sha256(data), base64.b64encode(data).decode()
            )
        if source.startswith(("http://", "https://")):
            # A URL the real host would download; it is accepted here without fetching.
            guessed = mimetypes.guess_type(source.split("?")[0])[0]
            return FileSpec(name, guessed or "application/octet-stream", 0)
        if os.path.isfile(source):
            guessed = mimetypes.guess_type(source)[0]
            return FileSpec(name, guessed or "application/octet-stream", os.path.getsize(source))
        # Neither a data URI, a URL nor a file: "Empty or invalid file or base64".
        raise SendFailed({"code": "empty_file"})

    def send_file(
        self,
        client: Client,
        chat_id: str,
        spec: FileSpec,
        caption: Any,
        quoted: Any,
        route: str,
        msg_type: str | None = None,
    ) -> dict[str, Any]:
        text = caption if isinstance(caption, str) else ""
        msg_type = msg_type or message_type_for(spec.mimetype)
        media: dict[str, Any] = {
            "mimetype": spec.mimetype,
            "filename": spec.filename,
            "size": spec.size,
            # wa-js writes the file's name as the caption of a file sent without one.
            "caption": text or spec.filename,
        }
        if spec.sha256 is not None:
            media["filehash"] = base64.b64encode(bytes.fromhex(spec.sha256)).decode()
        message = outgoing_message(
            client.wid or "",
            chat_id,
            thumbnail_of(msg_type, spec.sha256),
            msg_type=msg_type,
            quoted_msg_id=quoted if isinstance(quoted, str) else None,
            media=media,
        )
        outbox = {
            "mimetype": spec.mimetype,
            "filename": spec.filename,
            "size": spec.size,
            "mime_type": spec.mimetype,
            "sha256": spec.sha256,
            **({"caption": text} if text else {}),
        }
        self._record(client, route, message, outbox, shown_body=text, file_data=spec.data)
        self._wait_for_server()
        return {"ack": message["ack"], "id": message["id"]}

    def _record(
        self,
        client: Client,
        route: str,
        message: dict[str, Any],
        extra: dict[str, Any],
        *,
        shown_body: str | None = None,
        file_data: str | None = None,
    ) -> None:
        """Keep a sent message in the outbox (``shown_body``: the text the outbox shows, the
        message's body otherwise) and schedule its acks, after the send's answer."""
        record = SentRecord(
            id=message["id"],
            route=route,
            chat_id=message["to"],
            type=message["type"],
            body=message["body"] if shown_body is None else shown_body,
            t=message["t"],
            message=message,
            extra=dict(extra),
            file_data=file_data,
        )
        with self._lock:
            self._outbox.setdefault(client.name, []).append(record)
        config = self.settings.config
        if config.on_self_message:
            self.manager.emit(client, "onselfmessage", message)
        if config.auto_ack:
            for level, delay in ((2, config.ack_received_ms), (3, config.ack_read_ms)):
                if delay is not None:
                    self._schedule_ack(client, record, level, config.send_time_ms + delay)

    def _schedule_ack(self, client: Client, record: SentRecord, level: int, delay_ms: int) -> None:
        epoch = client.epoch

        def run() -> None:
            with self.manager.lock:
                if self.manager.client(client.name) is not client or client.epoch != epoch:
                    return
                if record.manual_ack or record.ack >= level:
                    return
                self._apply_ack(client, record, level)

        self.scheduler.call_later(delay_ms / 1000, run)

    def _apply_ack(self, client: Client, record: SentRecord, level: int) -> None:
        record.ack = level
        record.message["ack"] = level
        config = self.settings.config
        if config.listen_acks:
            # webhook.autoDownload replaces a file message's body with the whole file.
            body = record.file_data if config.auto_download else None
            self.manager.emit(client, "onack", ack_payload(record.message, level, body=body))

    def ack(self, name: str, message_id: str, level: int) -> SentRecord | str | None:
        """Set an ack by hand; 'not_connected' when the session has no live client."""
        with self.manager.lock:
            client = self.manager.client(name)
            if client is None or not client.live:
                return "not_connected"
            with self._lock:
                record = next((r for r in self._outbox.get(name, []) if r.id == message_id), None)
                received = next(
                    (m for m in self._inbox.get(name, []) if m["id"] == message_id), None
                )
            if record is None:
                if received is None:
                    return None
                # An incoming message's ack (read, played...): id.fromMe is false.
                received["ack"] = level
                if self.settings.config.listen_acks:
                    self.manager.emit(client, "onack", ack_payload(received, level))
                return SentRecord(
                    id=received["id"],
                    route="incoming",
                    chat_id=received["chatId"],
                    type=received["type"],
                    body=received["body"],
                    t=received["t"],
                    message=received,
                    ack=level,
                    manual_ack=True,
                )
            record.manual_ack = True
            self._apply_ack(client, record, level)
            return record

    # ----------------------------------------------------------------- contacts

    def lid_of(self, number: str) -> str | None:
        with self._lock:
            return self.settings.config.lid_numbers.get(number) or self._lids.get(number)

    def number_of_lid(self, lid: str) -> str | None:
        with self._lock:
            known = {**self._lids, **self.settings.config.lid_numbers}
        return next((pn for pn, value in known.items() if value == lid), None)

    def pushname_of(self, wid: str) -> str | None:
        with self._lock:
            return self._pushnames.get(wid)

    def _sender_lid(self, number: str, spec: dict[str, Any]) -> str | None:
        """The LID an incoming message names its sender by, if any (registered here)."""
        explicit = spec.get("lid")
        if explicit is not None:
            if not isinstance(explicit, str) or not explicit.split("@")[0].isdigit():
                raise ValueError('"lid" must be digits, optionally ending in @lid')
            lid = explicit.split("@")[0]
        elif spec.get("from_lid") is True:
            lid = self.lid_of(number) or derived_lid(number)
        elif self.settings.config.lid_senders:
            return self.lid_of(number)
        else:
            return None
        with self._lock:
            self._lids[number] = lid
        return lid

    # ----------------------------------------------------------------- incoming

    def incoming(self, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
        """A message from someone else arrives; None when the session is not connected."""
        sender = spec.get("from")
        if not isinstance(sender, str) or not sender:
            raise ValueError('"from" is required')
        text = spec.get("body", "")
        if not isinstance(text, str):
            raise ValueError('"body" must be a string')
        notify_name = spec.get("notifyName", "")
        if not isinstance(notify_name, str):
            raise ValueError('"notifyName" must be a string')
        if "from_lid" in spec and not isinstance(spec["from_lid"], bool):
            raise ValueError('"from_lid" must be true or false')
        config = self.settings.config
        with self.manager.lock:
            client = self.manager.client(name)
            if client is None or not client.live:
                return None
            own = client.wid or ""
            group = spec.get("group")
            if sender == "status@broadcast":
                chat_id = "status@broadcast"
                author_spec = spec.get("author")
                author = to_wid(
                    author_spec if isinstance(author_spec, str) else derived_number(name, "55219")
                )
            else:
                number = sender.split("@")[0]
                if "@" not in sender or sender.endswith("@c.us"):
                    # Replies come from WhatsApp's canonical id of the number.
                    number = canonical_number(config, number)
                lid = None if sender.endswith("@lid") else self._sender_lid(number, spec)
                if lid is not None:
                    author = f"{lid}@lid"
                elif "@" in sender and not sender.endswith("@c.us"):
                    author = sender
                else:
                    author = to_wid(number)
                if isinstance(group, str) and group:
                    chat_id = group if "@" in group else f"{group}@g.us"
                elif group is True:
                    chat_id = derived_group_id(name)
                else:
                    chat_id = author
            media: dict[str, Any] | None = None
            msg_type = spec.get("type", "chat")
            if not isinstance(msg_type, str):
                raise ValueError('"type" must be a string')
            payload_body = text
            data, mimetype, filename = _incoming_file(spec)
            if data is not None and mimetype is not None:
                msg_type = message_type_for(mimetype)
                media = {"mimetype": mimetype, "caption": text} if text else {"mimetype": mimetype}
                media["size"] = len(base64.b64decode(data))
                if filename is not None:
                    media["filename"] = filename
                if config.auto_download:
                    # webhook.autoDownload puts the whole file, as base64, in `body`.
                    payload_body = data
            message = incoming_message(
                own,
                chat_id=chat_id,
                author_wid=author,
                body=payload_body,
                notify_name=notify_name,
                msg_type=msg_type,
                media=media,
            )
            stored = {**message, "body": text} if media else message
            with self._lock:
                self._inbox.setdefault(name, []).append(stored)
                self._unread.setdefault(name, {})[message["id"]] = chat_id
                if media and isinstance(data, str) and isinstance(mimetype, str):
                    self._media[message["id"]] = (data, mimetype)
                if notify_name:
                    self._pushnames[author] = notify_name
            if config.presence_events:
                self.manager.emit(
                    client, "onpresencechanged", presence(chat_id, author, "composing")
                )
            self._emit_incoming(client, message)
            if config.presence_events:
                self.manager.emit(
                    client, "onpresencechanged", presence(chat_id, author, "available")
                )
            return message

    def _emit_incoming(self, client: Client, message: dict[str, Any]) -> None:
        name = client.name
        seen_chat = message.get("from") or message.get("chatId")
        config = client.config if isinstance(client.config, dict) else {}

        def mark_seen() -> None:
            # callWebHook's sendSeen(chatId) after a 2xx: the whole chat is read.
            if not self.settings.config.read_message:
                return
            with self._lock:
                self._seen.setdefault(name, []).append(
                    {"chatId": seen_chat, "messageId": message["id"], "t": now()}
                )
                unread = self._unread.get(name, {})
                read_ids = [mid for mid, chat in unread.items() if chat == seen_chat]
                for mid in read_ids:
                    del unread[mid]
                read = [m for m in self._inbox.get(name, []) if m["id"] in read_ids]
            if self.settings.config.incoming_acks:
                for item in read:
                    self.manager.emit(client, "onack", ack_payload(item, 3))

        self.webhooks.emit(
            lane=name,
            session_attr=client.session_attr,
            session_webhook=config.get("webhook"),
            event="onmessage",
            payload=message,
            on_success=mark_seen,
        )

    # ----------------------------------------------------------------- read-back

    def unread_messages(self, name: str) -> list[dict[str, Any]]:
        """Messages of the chats not marked read, as getAllUnreadMessages lists them."""
        with self._lock:
            unread = self._unread.get(name, {})
            return [m for m in self._inbox.get(name, []) if m["id"] in unread]

    def _chat_messages(self, name: str, chat_id: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [m for m in self._inbox.get(name, []) if m["chatId"] == chat_id]
            found += [r.message for r in self._outbox.get(name, []) if r.chat_id == chat_id]
        return sorted(found, key=lambda m: m["t"])

    def chat_messages(
        self, name: str, chat_id: str, count: int, direction: str, anchor: str | None
    ) -> list[dict[str, Any]]:
        """``WPP.chat.getMessages``: ``count`` messages before (or after) ``anchor``."""
        messages = self._chat_messages(name, chat_id)
        if anchor is not None:
            index = next((i for i, m in enumerate(messages) if m["id"] == anchor), None)
            if index is None:
                return []
            if direction == "after":
                return messages[index + 1 : index + 1 + count] if count > 0 else []
            messages = messages[:index]
        if count < 0:
            return messages
        return messages[-count:] if count else []

    def message_by_id(self, name: str, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            for message in self._inbox.get(name, []):
                if message["id"] == message_id:
                    return message
            for record in self._outbox.get(name, []):
                if record.id == message_id:
                    return record.message
        return None

    def media_of(self, message_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._media.get(message_id)

    def chats(self, name: str) -> list[dict[str, Any]]:
        """One summary per chat that has messages, newest first (``list-chats``)."""
        with self._lock:
            unread = self._unread.get(name, {})
            by_chat: dict[str, dict[str, Any]] = {}
            every = [*self._inbox.get(name, []), *(r.message for r in self._outbox.get(name, []))]
            for message in sorted(every, key=lambda m: m["t"]):
                chat_id = message["chatId"]
                by_chat[chat_id] = {
                    "id": chat_id,
                    "name": self._pushnames.get(chat_id),
                    "isGroup": chat_id.endswith("@g.us"),
                    "isUser": chat_id.endswith(("@c.us", "@lid")),
                    "unreadCount": sum(1 for chat in unread.values() if chat == chat_id),
                    "t": message["t"],
                    "archive": False,
                    "pin": 0,
                    "isReadOnly": False,
                }
        return sorted(by_chat.values(), key=lambda c: -int(c["t"]))

    # ----------------------------------------------------------------- views

    def outbox(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._outbox.get(name, [])]

    def inbox(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._inbox.get(name, []))

    def seen(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._seen.get(name, []))

    def reset(self) -> None:
        with self._lock:
            self._outbox.clear()
            self._inbox.clear()
            self._seen.clear()
            self._unread.clear()
            self._media.clear()
            self._lids.clear()
            self._pushnames.clear()
            self._found.clear()
            self._misses.clear()
