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

from local.simulator.forms import UploadedFile, js_truthy
from local.simulator.kinds import (
    Conversations,
    KindFailed,
    participant_wids,
    revoke_event,
    unknown_group_info,
)
from local.simulator.messages import (
    ack_payload,
    derived_group_id,
    derived_lid,
    derived_number,
    incoming_message,
    message_type_for,
    notice,
    now,
    outgoing_message,
    own_key,
    phone_key,
    presence,
    thumbnail_of,
    to_wid,
    undecrypted,
)
from local.simulator.phones import (
    canonical_number,
    check_number_status,
    contact_to_array,
    number_exists,
    skips_number_check,
)
from local.simulator.state import Client, SessionManager

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


@dataclass(eq=False)
class Messenger:
    manager: SessionManager

    def __post_init__(self) -> None:
        # The sessions' settings, webhooks and timers are the messages' too.
        self.settings = self.manager.settings
        self.webhooks = self.manager.webhooks
        self.scheduler = self.manager.scheduler
        self._lock = threading.Lock()
        # Groups, reactions, and what the account did to messages (``kinds``).
        self.kinds = Conversations()
        self._forget()

    def _forget(self) -> None:
        """What the host remembers of messages and contacts, empty (at start and on reset)."""
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
        # Per session, the notices of its chats, and the senders it holds an encryption
        # session with (their first message came as ciphertext first).
        self._notices: dict[str, list[dict[str, Any]]] = {}
        self._senders: dict[str, set[str]] = {}
        # download-media tries per message id (decrypt_error_tries).
        self._download_tries: dict[str, int] = {}
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
        self._check_chat(client, chat_id)
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
        self._check_chat(client, chat_id)
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

    def _check_chat(self, client: Client, chat_id: str) -> None:
        """wa-js's ``assertGetChat``: a group the account is not in is no chat of its own."""
        if chat_id.endswith("@g.us") and not self.kinds.is_member(
            client.name, chat_id, client.wid or ""
        ):
            raise SendFailed({"code": "chat_not_found", "message": f"Chat not found for {chat_id}"})

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
                    body=received.get("body", ""),
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
        """A message from someone else arrives (or, with ``reaction``, ``edit`` or ``revoke``,
        someone reacts to, edits or deletes one); None when the session is not connected."""
        for change in ("reaction", "edit", "revoke"):
            if change in spec:
                return self._contact_change(name, change, spec)
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
                if chat_id.endswith("@g.us") and self.kinds.group(name, chat_id) is None:
                    # A group the account is in, as a message from it shows.
                    self.kinds.put_group(name, chat_id, "Group", {own: False, author: False})
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
            kind_fields, kind_type, kind_body = self._kind_fields(name, spec)
            if kind_type is not None:
                msg_type, payload_body, text = kind_type, kind_body, kind_body
            message = incoming_message(
                own,
                chat_id,
                author,
                payload_body,
                notify_name=notify_name,
                msg_type=msg_type,
                media=media,
            )
            message.update(kind_fields)
            stored = {**message, "body": text} if media else message
            with self._lock:
                if config.chat_notices and not self._has_chat(name, chat_id):
                    kind = "gp2" if chat_id.endswith("@g.us") else "e2e_notification"
                    self._notices.setdefault(name, []).append(
                        notice(own, chat_id, kind, message["t"])
                    )
                senders = self._senders.setdefault(name, set())
                cipher = config.ciphertext_first and author not in senders
                senders.add(author)
                self._inbox.setdefault(name, []).append(undecrypted(stored) if cipher else stored)
                self._unread.setdefault(name, {})[message["id"]] = chat_id
                if media and isinstance(data, str) and isinstance(mimetype, str):
                    self._media[message["id"]] = (data, mimetype)
                if notify_name:
                    self._pushnames[author] = notify_name
            if config.presence_events:
                self.manager.emit(
                    client, "onpresencechanged", presence(chat_id, author, "composing")
                )
            if cipher:
                self._emit_incoming(client, undecrypted(message))
                self._decrypt_later(client, stored, message, config.ciphertext_ms)
            else:
                self._emit_incoming(client, message)
            if config.presence_events:
                self.manager.emit(
                    client, "onpresencechanged", presence(chat_id, author, "available")
                )
            return message

    def _decrypt_later(
        self, client: Client, stored: dict[str, Any], message: dict[str, Any], delay_ms: int
    ) -> None:
        """The message decrypted: get-messages shows it whole, and onmessage posts it again
        with the same id."""
        epoch = client.epoch

        def run() -> None:
            with self.manager.lock:
                if self.manager.client(client.name) is not client or client.epoch != epoch:
                    return
                # Posted first, so an event log read after the chat shows it decrypted has it.
                self._emit_incoming(client, message)
                with self._lock:
                    inbox = self._inbox.get(client.name, [])
                    for i, held in enumerate(inbox):
                        if held["id"] == stored["id"]:
                            inbox[i] = stored

        self.scheduler.call_later(delay_ms / 1000, run)

    def from_phone(self, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
        """The owner writes a message on the phone: it is in the chat (get-messages), and
        ``onselfmessage`` posts it when ``on_self_message`` is on; None when not connected."""
        to, text = spec.get("to"), spec.get("body")
        if not isinstance(to, str) or not to or not isinstance(text, str) or not text:
            raise ValueError('"to" and "body" are required strings')
        with self.manager.lock:
            client = self.manager.client(name)
            if client is None or not client.live:
                return None
            number = to.split("@")[0]
            chat_id = to if "@" in to else to_wid(canonical_number(self.settings.config, number))
            message = outgoing_message(client.wid or "", chat_id, text)
            self._record(client, "phone", message, {})
            return message

    def _kind_fields(
        self, name: str, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None, str]:
        """The fields a reply, a location or a contact card adds to an incoming message (as
        WhatsApp Web's message model has them), its type and its body."""
        fields: dict[str, Any] = {}
        quoted = spec.get("quoted")
        if quoted is not None:
            if not isinstance(quoted, str):
                raise ValueError('"quoted" must be a message id')
            original = self.message_by_id(name, quoted)
            fields.update(
                quotedMsgId=quoted,
                quotedStanzaID=quoted.split("_")[2] if quoted.count("_") >= 2 else quoted,
                quotedMsg=(
                    {"type": original["type"], "body": original.get("body", "")} if original else {}
                ),
            )
        if "location" in spec:
            place = spec["location"]
            lat = place.get("lat") if isinstance(place, dict) else None
            lng = place.get("lng") if isinstance(place, dict) else None
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lng)):
                raise ValueError('"location" needs numbers "lat" and "lng"')
            assert isinstance(place, dict)
            label = place.get("name") or ""
            fields.update(lat=lat, lng=lng, loc=label, isMedia=False)
            # The body of a location message is its map thumbnail, a JPEG in base64.
            return fields, "location", "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgK"
        cards = spec.get("vcards")
        if "vcard" in spec:
            cards = [{"name": spec.get("vcard_name") or "", "vcard": spec["vcard"]}]
        if cards is not None:
            if not isinstance(cards, list) or not all(
                isinstance(c, dict) and isinstance(c.get("vcard"), str) for c in cards
            ):
                raise ValueError('"vcards" must be a list of {"name", "vcard"}')
            if len(cards) == 1:
                fields["vcardFormattedName"] = cards[0].get("name") or ""
                return fields, "vcard", cards[0]["vcard"]
            fields["vcardList"] = [
                {"displayName": c.get("name") or "", "vcard": c["vcard"]} for c in cards
            ]
            return fields, "multi_vcard", ""
        return fields, None, ""

    def _contact_change(
        self, name: str, change: str, spec: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A contact reacts to a message (``reaction: {id, emoji}``: ``onreactionmessage``),
        edits one of theirs (``edit: {id, body}``: no event, as the server has none) or
        deletes one for everyone (``revoke: {id}``: ``onrevokedmessage``)."""
        detail = spec[change]
        target = detail.get("id") if isinstance(detail, dict) else None
        if not isinstance(target, str):
            raise ValueError(f'"{change}" needs the "id" of a message')
        with self.manager.lock:
            client = self.manager.client(name)
            if client is None or not client.live:
                return None
            message = self.message_by_id(name, target)
            if message is None:
                raise ValueError(f"no message {target} in session {name}")
            if change == "reaction":
                emoji = detail.get("emoji")
                if not isinstance(emoji, str):
                    raise ValueError('"reaction" needs an "emoji" ("" takes it back)')
                sender = spec.get("from")
                chat = message["chatId"]
                reactor = (
                    to_wid(sender)
                    if isinstance(sender, str) and sender
                    else (message.get("author") or chat)
                )
                key = f"false_{chat}_{phone_key()}" + (
                    f"_{reactor}" if chat.endswith("@g.us") else ""
                )
                event = self.kinds.react(name, message, reactor, emoji, key)
                self.manager.emit(client, "onreactionmessage", event)
                return {"change": change, "id": event["id"]["_serialized"], "event": event}
            if message.get("fromMe"):
                raise ValueError("a contact changes only their own messages")
            if change == "edit":
                body = detail.get("body")
                if not isinstance(body, str) or not body:
                    raise ValueError('"edit" needs the new "body"')
                with self._lock:
                    self.kinds.edit(message, body, own=False)
                return {"change": change, "id": target, "message": message}
            with self._lock:
                self.kinds.revoke(message)
            event = revoke_event(message, client.wid or "")
            self.manager.emit(client, "onrevokedmessage", event)
            return {"change": change, "id": target, "event": event}

    # ----------------------------------------------------------------- the account's changes

    def own_react(self, client: Client, message_id: Any, emoji: Any) -> None:
        """``sendReactionToMessage``: the account's reaction ("" or false takes it back)."""
        message = (
            self.message_by_id(client.name, message_id) if isinstance(message_id, str) else None
        )
        if message is None:
            raise SendFailed({"code": "msg_not_found"})
        text = emoji if isinstance(emoji, str) else ""
        chat = message["chatId"]
        key = f"true_{chat}_{own_key()}"
        event = self.kinds.react(client.name, message, "me", text, key)
        self.kinds.record_action(client.name, "react-message", id=message_id, emoji=text)
        self.manager.emit(client, "onreactionmessage", event)

    def own_edit(self, client: Client, message_id: Any, text: Any) -> dict[str, Any]:
        """``editMessage``: the account's own text, within 15 minutes; the message read back."""
        message = (
            self.message_by_id(client.name, message_id) if isinstance(message_id, str) else None
        )
        if message is None or not isinstance(text, str):
            raise SendFailed({"code": "msg_not_found"})
        with self._lock:
            try:
                self.kinds.edit(message, text.strip(), own=True)
            except KindFailed as exc:
                raise SendFailed({"code": "edit_message_error", "message": str(exc)}) from None
        self.kinds.record_action(client.name, "edit-message", id=message_id, body=text)
        return dict(message)

    def own_delete(self, client: Client, chat_id: str, message_id: Any, only_local: bool) -> None:
        """``deleteMessage``: the account's own message is revoked for everyone; anyone else's
        (the account is no group admin here) is deleted on this device only."""
        message = (
            self.message_by_id(client.name, message_id) if isinstance(message_id, str) else None
        )
        if message is None or message["chatId"] != chat_id:
            raise SendFailed({"code": "msg_not_found"})
        revoked = bool(message.get("fromMe")) and not only_local
        with self._lock:
            if revoked:
                self.kinds.revoke(message)
        self.kinds.record_action(
            client.name, "delete-message", id=message_id, chat=chat_id, revoked=revoked
        )

    def own_seen(self, client: Client, chat_id: str) -> bool:
        """``sendSeen``: the chat is marked read."""
        self.kinds.record_action(client.name, "send-seen", chat=chat_id)
        self._mark_chat_seen(client, chat_id, None)
        return True

    def _mark_chat_seen(self, client: Client, chat_id: Any, message_id: str | None) -> None:
        """``WPP.chat.markIsRead``: every incoming message of the chat is read (acked 3, with
        ``incoming_acks``)."""
        name = client.name
        with self._lock:
            self._seen.setdefault(name, []).append(
                {"chatId": chat_id, "messageId": message_id, "t": now()}
            )
            unread = self._unread.get(name, {})
            read_ids = [mid for mid, chat in unread.items() if chat == chat_id]
            for mid in read_ids:
                del unread[mid]
            read = [m for m in self._inbox.get(name, []) if m["id"] in read_ids]
        if self.settings.config.incoming_acks:
            for item in read:
                self.manager.emit(client, "onack", ack_payload(item, 3))

    def group_info(self, name: str, group_id: str) -> dict[str, Any]:
        group = self.kinds.group(name, group_id)
        return group.info() if group is not None else unknown_group_info(group_id)

    def put_group(self, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
        """``/_sim/<s>/group``: a group with ``subject`` and ``participants``; the account is in
        it unless ``member`` is false."""
        client = self.manager.client(name)
        if client is None or not client.live:
            return None
        subject = spec.get("subject", "Group")
        gid = spec.get("id")
        if not isinstance(subject, str) or (gid is not None and not isinstance(gid, str)):
            raise ValueError('"subject" and "id" must be strings')
        people = participant_wids(spec.get("participants", []))
        if spec.get("member", True) is not False:
            people[client.wid or ""] = bool(spec.get("admin", False))
        group_id = gid if gid is None or "@" in gid else f"{gid}@g.us"
        return self.kinds.put_group(name, group_id, subject, people).info()

    def change_participants(self, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
        """``/_sim/<s>/participants`` ``{group, action, who, by?}``: ``onparticipantschanged``."""
        client = self.manager.client(name)
        if client is None or not client.live:
            return None
        group_id, action, who = spec.get("group"), spec.get("action"), spec.get("who")
        if action not in ("add", "remove", "promote", "demote") or not isinstance(group_id, str):
            raise ValueError('"group" and "action" (add, remove, promote, demote) are required')
        wids = list(participant_wids(who))
        if self.kinds.change_participants(name, group_id, action, wids) is None:
            raise ValueError(f"no group {group_id} in session {name}")
        by = spec.get("by")
        event = {
            "by": to_wid(by) if isinstance(by, str) else None,
            "byPushName": None,
            "groupId": group_id,
            "action": action,
            "operation": action,
            "who": wids,
        }
        self.manager.emit(client, "onparticipantschanged", event)
        return event

    def _emit_incoming(self, client: Client, message: dict[str, Any]) -> None:
        name = client.name
        seen_chat = message.get("from") or message.get("chatId")
        config = client.config if isinstance(client.config, dict) else {}

        def mark_seen() -> None:
            # callWebHook's sendSeen(chatId) after a 2xx: the whole chat is read.
            if self.settings.config.read_message:
                self._mark_chat_seen(client, seen_chat, message["id"])

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

    def _every(self, name: str) -> list[dict[str, Any]]:
        """Every message of the session's chats (call with ``_lock`` held)."""
        return [
            *self._notices.get(name, []),
            *self._inbox.get(name, []),
            *(r.message for r in self._outbox.get(name, [])),
        ]

    def _has_chat(self, name: str, chat_id: str) -> bool:
        """Whether the session's store holds this chat (call with ``_lock`` held)."""
        return any(m["chatId"] == chat_id for m in self._every(name))

    def has_chat(self, name: str, chat_id: str) -> bool:
        with self._lock:
            return self._has_chat(name, chat_id)

    def _chat_messages(self, name: str, chat_id: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [m for m in self._every(name) if m["chatId"] == chat_id]
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
            return next((m for m in self._every(name) if m["id"] == message_id), None)

    def media_of(self, message_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._media.get(message_id)

    def download_try(self, message_id: str) -> int:
        """Count one more download-media try of this message; how many there have been."""
        with self._lock:
            tries = self._download_tries.get(message_id, 0) + 1
            self._download_tries[message_id] = tries
            return tries

    def chats(self, name: str) -> list[dict[str, Any]]:
        """One summary per chat that has messages, newest first (``list-chats``)."""
        with self._lock:
            unread = self._unread.get(name, {})
            by_chat: dict[str, dict[str, Any]] = {}
            for message in sorted(self._every(name), key=lambda m: m["t"]):
                chat_id = message["chatId"]
                by_chat[chat_id] = {
                    "id": chat_id,
                    "name": self.kinds.subject_of(name, chat_id) or self._pushnames.get(chat_id),
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
        """What the API sent (the owner's own phone messages are in the chats, not here)."""
        with self._lock:
            return [r.to_json() for r in self._outbox.get(name, []) if r.route != "phone"]

    def inbox(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._inbox.get(name, []))

    def seen(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._seen.get(name, []))

    def reset(self) -> None:
        with self._lock:
            self._forget()
        self.kinds.reset()
