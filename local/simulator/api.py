"""The wppconnect-server routes under ``/api``, with their status codes and exact bodies.

Routes matched case-insensitively, as Express does. Secret-in-path routes:
``POST /api/:session/:secretkey/generate-token``, ``GET /api/:secretkey/show-all-sessions``,
``POST /api/:secretkey/start-all``, ``POST /api/:session/:secretkey/clear-session-data``.
Bearer routes (``/api/:session/<route>``, the token in ``Authorization`` or in the path as
``session:token``): ``start-session``, ``status-session``, ``qrcode-session``,
``check-connection-session``, ``close-session``; and behind ``statusConnection`` as well:
``logout-session``, ``send-message``, ``send-reply``, ``send-image``, ``send-file``,
``send-file-base64``, ``send-voice-base64``, ``all-unread-messages``, ``all-new-messages``,
``unread-messages``, ``get-messages/:phone``, ``message-by-id/:messageId``, ``list-chats`` (POST),
``download-media`` (POST), ``contact/pn-lid/:pnLid``, ``check-number-status/:phone``,
``react-message``, ``edit-message``, ``delete-message``, ``send-seen`` (POST),
``group-info/:groupId``, ``reactions/:id`` (see ``kinds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.simulator.auth import TokenAuthority, decode_token
from local.simulator.config import Settings
from local.simulator.forms import js_truthy
from local.simulator.host import UNHANDLED_REJECTION_EXIT, HostLog
from local.simulator.messaging import Messenger, Recipients, SendFailed
from local.simulator.phones import contact_to_array
from local.simulator.protocol import NO_ANSWER, Request, Response, cannot, json_response
from local.simulator.qr import qr_session_png
from local.simulator.state import Client, SessionManager, Waiter

LOGOUT_DELAY_S = 0.5

TOKEN_NOT_PRESENT = {"message": "Token is not present. Check your header and try again"}
TOKEN_INVALID = {"error": "Check that the Session and Token are correct"}
DISCONNECTED = {
    "response": None,
    "status": "Disconnected",
    "message": "A sessão do WhatsApp não está ativa.",
}
SESSION_CLOSED = {"status": True, "message": "Session successfully closed"}
CLOSE_FAILED = {"status": False, "message": "Error closing session", "error": {}}
OPEN_LIST_FAILED = {"status": "error", "response": "Error on open list", "error": {}}
DECRYPT_FAILED = {"status": "error", "message": "Decrypt file error", "error": {}}
QR_NOT_STARTED = (
    "Session not started. Please, use the /start-session route, for initialization your session"
)

Handler = Callable[[Request, str, Client | None], Response]
# A route's method, before and after statusConnection has let a connected session through.
Route = Callable[["WppApi", Request, str, Client | None], Response]
ConnectedRoute = Callable[["WppApi", Request, str, Client], Response]
# Routes with a path parameter after the route name: (method, route) -> handler name.
_PARAM_ROUTES = {
    ("GET", "get-messages"): "get_messages",
    ("GET", "message-by-id"): "message_by_id",
    ("GET", "check-number-status"): "check_number_status",
    ("GET", "group-info"): "group_info",
    ("GET", "reactions"): "reactions",
}


def _js_number(value: str | None, default: int) -> int:
    """``parseInt`` of a query value, NaN (here the default) when it is not a number."""
    if value is None:
        return default
    digits = value.strip()
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    head = ""
    for ch in digits:
        if not ch.isdigit():
            break
        head += ch
    return sign * int(head) if head else default


def _wid_info(wid: str) -> dict[str, str]:
    user, _, server = wid.partition("@")
    return {"id": user, "server": server, "_serialized": wid}


def send_error(error: dict[str, Any]) -> Response:
    return json_response(
        500, {"status": "Error", "message": "Erro ao enviar a mensagem.", "error": error}
    )


def send_success(results: list[Any]) -> Response:
    return json_response(201, {"status": "success", "response": results, "mapper": "return"})


def retrieved(name: str, data: Any, **extra: Any) -> Response:
    """201 ``Information retrieved successfully.`` with ``data``, as the controllers that
    look something up answer; ``extra`` (``contact``) stands before ``session``."""
    return json_response(
        201,
        {
            "status": "Success",
            "response": {
                "message": "Information retrieved successfully.",
                **extra,
                "session": name,
                "data": data,
            },
        },
    )


def _behind_status_connection(handler: ConnectedRoute) -> Route:
    """``handler`` behind the server's ``statusConnection`` middleware: a session that is not
    connected gets the middleware's answer and ``handler`` never runs; a connected one's
    client is handed over."""

    def route(api: WppApi, req: Request, name: str, client: Client | None) -> Response:
        checked = api._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        assert client is not None
        return handler(api, req, name, client)

    return route


@dataclass(eq=False)
class WppApi:
    settings: Settings
    auth: TokenAuthority
    manager: SessionManager
    messenger: Messenger
    host: HostLog

    def __post_init__(self) -> None:
        self._bearer: dict[tuple[str, str], Handler] = {
            ("POST", "start-session"): self.start_session,
            ("GET", "status-session"): self.status_session,
            ("GET", "qrcode-session"): self.qrcode_session,
            ("GET", "check-connection-session"): self.check_connection,
            ("POST", "close-session"): self.close_session,
            ("POST", "logout-session"): self.logout_session,
            ("POST", "send-message"): self.send_message,
            ("POST", "send-reply"): self.send_reply,
            ("POST", "send-image"): self.send_file,
            ("POST", "send-file"): self.send_file,
            ("POST", "send-file-base64"): self.send_file,
            ("POST", "send-voice-base64"): self.send_file,
            ("GET", "all-unread-messages"): self.all_unread_messages,
            ("GET", "all-new-messages"): self.all_unread_messages,
            ("GET", "unread-messages"): self.all_unread_messages,
            ("POST", "list-chats"): self.list_chats,
            ("POST", "download-media"): self.download_media,
            ("POST", "react-message"): self.react_message,
            ("POST", "edit-message"): self.edit_message,
            ("POST", "delete-message"): self.delete_message,
            ("POST", "send-seen"): self.send_seen,
            ("GET", "get-phone-number"): self.get_phone_number,
        }

    def handle(self, req: Request) -> Response:
        method = "GET" if req.method == "HEAD" else req.method
        segs = req.segments[1:]  # after "api"
        if len(segs) == 3 and segs[2].lower() == "generate-token" and method == "POST":
            return self.generate_token(segs[0], segs[1])
        if len(segs) == 3 and segs[2].lower() == "clear-session-data" and method == "POST":
            return self.clear_session_data(req, segs[0], segs[1])
        handler: Handler | None = None
        if len(segs) == 2:
            route = segs[1].lower()
            if route == "show-all-sessions" and method == "GET":
                return self.show_all_sessions(segs[0])
            if route == "start-all" and method == "POST":
                return self.start_all(req, segs[0])
            handler = self._bearer.get((method, route))
        elif len(segs) == 3 and (method, segs[1].lower()) in _PARAM_ROUTES:
            handler = getattr(self, _PARAM_ROUTES[(method, segs[1].lower())])
            req.query = {**req.query, "param": segs[2]}
        elif (
            len(segs) == 4
            and method == "GET"
            and [s.lower() for s in segs[1:3]]
            == [
                "contact",
                "pn-lid",
            ]
        ):
            handler = self.contact_pn_lid
            req.query = {**req.query, "param": segs[3]}
        if handler is None:
            return cannot(req.method, req.path)
        checked = self._authenticate(req, segs[0])
        if isinstance(checked, Response):
            return checked
        name, client = checked
        response = handler(req, name, client)
        if req.answered_twice and self.settings.config.answer_after_error:
            self._unhandled_rejection(response, req.path, name)
        return response

    def _unhandled_rejection(self, response: Response, route: str, session: str) -> None:
        self.host.unhandled_rejection(route, session)
        if self.settings.config.exit_on_unhandled_rejection:
            self.host.record("exit", status=UNHANDLED_REJECTION_EXIT, route=route)
            response.exit_after = UNHANDLED_REJECTION_EXIT

    # ----------------------------------------------------------------- auth

    def _authenticate(self, req: Request, param: str) -> tuple[str, Client | None] | Response:
        """``verifyToken``: the path form ``session:token`` wins over the header."""
        if ":" in param:
            parts = param.split(":")
            name, token = parts[0], decode_token(parts[1])
        else:
            name = param
            header = req.headers.get("Authorization")
            words = header.split(" ") if header else []
            if len(words) < 2 or not words[1]:
                return json_response(401, TOKEN_NOT_PRESENT)
            token = decode_token(words[1])
        if not self.auth.verify(name, token):
            return json_response(401, TOKEN_INVALID)
        client = self.manager.client(name)
        req.client_session = client.session_attr if client is not None else ""
        return name, client

    # ----------------------------------------------------------------- secret in path

    def generate_token(self, session: str, secret: str) -> Response:
        if secret != self.auth.secret_key:
            return json_response(400, {"response": False, "message": "The SECRET_KEY is incorrect"})
        token = self.auth.generate(session)
        return json_response(
            201,
            {"status": "success", "session": session, "token": token, "full": f"{session}:{token}"},
        )

    def show_all_sessions(self, secret: str) -> Response:
        if secret != self.auth.secret_key:
            return json_response(400, {"response": False, "message": "The token is incorrect"})
        return json_response(200, {"response": self.manager.store.list_sessions()})

    def start_all(self, req: Request, secret: str) -> Response:
        if secret != self.auth.secret_key:
            if self.settings.config.bug_start_all_bad_secret:
                self.manager.start_all(req.body)
            return json_response(400, {"response": "error", "message": "The token is incorrect"})
        self.manager.start_all(req.body)
        return json_response(201, {"status": "success", "message": "Starting all sessions"})

    # ----------------------------------------------------------------- lifecycle

    def start_session(self, req: Request, name: str, client: Client | None) -> Response:
        self.manager.count_start_call(name)
        wait_qr = js_truthy(req.body.get("waitQrCode", False))
        answer = self.manager.session_state(client, wait_qr)
        waiter = Waiter() if answer is None else None
        self.manager.start(name, req.body, waiter)
        if answer is not None:
            return json_response(200, answer)
        assert waiter is not None
        held = waiter.wait(self.settings.config.wait_qr_max_ms / 1000)
        return NO_ANSWER if held is None else json_response(200, held)

    def status_session(self, req: Request, name: str, client: Client | None) -> Response:
        answer = self.manager.session_state(client, js_truthy(req.body.get("waitQrCode", False)))
        return NO_ANSWER if answer is None else json_response(200, answer)

    def qrcode_session(self, req: Request, name: str, client: Client | None) -> Response:
        if client is not None and client.urlcode:
            return Response(200, qr_session_png(client.urlcode), "image/png")
        if client is None:
            return json_response(200, {"status": None, "message": QR_NOT_STARTED})
        return json_response(
            200, {"status": client.status, "message": "QRCode is not available..."}
        )

    def check_connection(self, req: Request, name: str, client: Client | None) -> Response:
        if client is not None and client.live:
            return json_response(200, {"status": True, "message": "Connected"})
        return json_response(200, {"status": False, "message": "Disconnected"})

    def close_session(self, req: Request, name: str, client: Client | None) -> Response:
        if self.manager.close(name):
            return json_response(200, SESSION_CLOSED)
        return json_response(500, CLOSE_FAILED)

    def logout_session(self, req: Request, name: str, client: Client | None) -> Response:
        checked = self._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        leaving = self.manager.begin_logout(name)
        if leaving is None:
            return json_response(500, CLOSE_FAILED)
        time.sleep(LOGOUT_DELAY_S)
        self.manager.finish_logout(leaving)
        return json_response(200, SESSION_CLOSED)

    # ----------------------------------------------------------------- sending

    def _status_connection(self, req: Request, client: Client | None) -> Recipients | Response:
        """The ``statusConnection`` middleware in front of every send route.

        Its 404 for a client that is not a live library client is followed by ``next()``:
        the controller runs on the missing client and answers again (``answered_twice``).
        """
        if client is None or not client.live:
            req.answered_twice = True
            return json_response(404, DISCONNECTED)
        try:
            return self.messenger.resolve_recipients(client.name, req.body)
        except TypeError:
            return json_response(404, DISCONNECTED)

    @staticmethod
    def _unknown(recipients: Recipients, req: Request | None = None) -> Response | None:
        if recipients.first_unknown is None:
            return None
        if req is not None:
            req.answered_twice = True
        return json_response(
            400,
            {
                "response": None,
                "status": "Connected",
                "message": f"O número {recipients.first_unknown} não existe.",
            },
        )

    def _send_text(
        self, req: Request, name: str, client: Client | None, quoted: Any, route: str
    ) -> Response:
        checked = self._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        assert client is not None
        first = self._unknown(checked, req)
        results: list[Any] = []
        for chat_id, exists in checked.targets:
            # The middleware answered 400 but the handler still runs: numbers before the
            # unknown one are sent, then sending to the unknown one throws.
            if not exists:
                return first or send_error({})
            try:
                results.append(
                    self.messenger.send_text(
                        client, chat_id, req.body.get("message"), quoted, route
                    )
                )
            except SendFailed as exc:
                return first or send_error(exc.error)
        if not results:
            return first or json_response(400, "Error sending message")
        return first or send_success(results)

    def send_message(self, req: Request, name: str, client: Client | None) -> Response:
        options = req.body.get("options")
        quoted = options.get("quotedMsg") if isinstance(options, dict) else None
        return self._send_text(req, name, client, quoted, "send-message")

    def send_reply(self, req: Request, name: str, client: Client | None) -> Response:
        return self._send_text(req, name, client, req.body.get("messageId"), "send-reply")

    def send_file(self, req: Request, name: str, client: Client | None) -> Response:
        """``sendFile`` (``send-image``, ``send-file``, ``send-file-base64``) and
        ``sendVoice64`` (``send-voice-base64``: ``sendPttFromBase64(phone, base64Ptt,
        'Voice Audio', '')``, a voice note, with no check for a missing file)."""
        checked = self._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        assert client is not None
        body = req.body
        route = req.segments[-1].lower()
        first = self._unknown(checked, req)
        voice = route == "send-voice-base64"
        upload = req.files[0] if req.files and not voice else None
        path, b64 = body.get("path"), body.get("base64Ptt" if voice else "base64")
        if not voice and not js_truthy(path) and upload is None and not js_truthy(b64):
            first = first or json_response(401, {"message": "Sending the file is mandatory"})
        source = b64 if voice or not js_truthy(path) else path
        caption = body.get("message") if js_truthy(body.get("message")) else body.get("caption")
        filename = "Voice Audio" if voice else body.get("filename")
        results: list[Any] = []
        for chat_id, exists in checked.targets:
            if not exists:
                return first or send_error({})
            try:
                spec = self.messenger.load_file(source, upload, filename)
                results.append(
                    self.messenger.send_file(
                        client,
                        chat_id,
                        spec,
                        "" if voice else caption,
                        body.get("quotedMessageId"),
                        route,
                        msg_type="ptt" if voice else None,
                    )
                )
            except SendFailed as exc:
                return first or send_error(exc.error)
        if not results:
            return first or json_response(400, "Error sending message")
        return first or send_success(results)

    # ----------------------------------------------------------------- clearing

    def clear_session_data(self, req: Request, session: str, secret: str) -> Response:
        """``MiscController.clearSessionData``: no verifyToken, so ``req.client`` is never
        set and the running client is left alone; the profile goes, the token file stays
        (its path lacks a ``/``). A wrong secret answers 400 and the data goes anyway."""
        if secret != self.auth.secret_key:
            if self.settings.config.answer_after_error:
                self.manager.clear_session_data(session)
                response = json_response(
                    400, {"response": "error", "message": "The token is incorrect"}
                )
                self._unhandled_rejection(response, req.path, session)
                return response
            return json_response(400, {"response": "error", "message": "The token is incorrect"})
        self.manager.clear_session_data(session)
        return json_response(200, {"success": True})

    # ----------------------------------------------------------------- reading back

    @_behind_status_connection
    def all_unread_messages(self, req: Request, name: str, client: Client) -> Response:
        """``getAllUnreadMessages`` (also all-new-messages and unread-messages): the
        messages of chats with unread messages; a chat marked seen after a 2xx to its
        onmessage (readMessage) is no longer listed."""
        return json_response(
            200, {"status": "success", "response": self.messenger.unread_messages(name)}
        )

    @_behind_status_connection
    def get_messages(self, req: Request, name: str, client: Client) -> Response:
        """``getMessages``: ``:phone`` is used as written, so it must be a full id
        (``5511...@c.us``); ``count`` (20), ``direction`` (before) and ``id`` in the query."""
        chat_id = req.query["param"]
        if not self.messenger.has_chat(name, chat_id):
            # assertGetChat throws chat_not_found; the controller's catch answers 401 with the
            # error as JSON.stringify makes it ({}).
            if self.settings.config.route_errors_401:
                return json_response(401, OPEN_LIST_FAILED)
            return json_response(200, {"status": "success", "response": []})
        count = _js_number(req.query.get("count"), 20)
        direction = req.query.get("direction") or "before"
        messages = self.messenger.chat_messages(
            name, chat_id, count, direction, req.query.get("id") or None
        )
        return json_response(200, {"status": "success", "response": messages})

    @_behind_status_connection
    def message_by_id(self, req: Request, name: str, client: Client) -> Response:
        """``getMessageById``: 201 with the message under ``response.data``; an unknown id
        makes the controller throw (``false.chatId``), answered 400."""
        message = self.messenger.message_by_id(name, req.query["param"])
        if message is None:
            return json_response(
                400,
                {
                    "status": "Error",
                    "response": {
                        "message": "Error retrieving information",
                        "session": name,
                        "log": {},
                    },
                },
            )
        # `contact` is `result.chatId.user`: chatId is serialized to a string, so it is
        # undefined and JSON leaves it out.
        return retrieved(name, message)

    @_behind_status_connection
    def list_chats(self, req: Request, name: str, client: Client) -> Response:
        """``listChats`` (POST): the library's chat list itself, not wrapped."""
        chats = self.messenger.chats(name)
        if req.body.get("onlyWithUnreadMessage") is True:
            chats = [c for c in chats if c["unreadCount"] > 0]
        if req.body.get("onlyGroups") is True:
            chats = [c for c in chats if c["isGroup"]]
        if req.body.get("onlyUsers") is True:
            chats = [c for c in chats if c["isUser"]]
        count = req.body.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            chats = chats[:count]
        return json_response(200, chats)

    @_behind_status_connection
    def download_media(self, req: Request, name: str, client: Client) -> Response:
        """``downloadMediaByMessage``: ``{"base64", "mimetype"}`` of a received file."""
        message_id = req.body.get("messageId")
        message = (
            self.messenger.message_by_id(name, message_id) if isinstance(message_id, str) else None
        )
        if message is None:
            # getMessageById throws msg_not_found (wa-js): the controller's catch answers.
            return json_response(400, DECRYPT_FAILED)
        media = self.messenger.media_of(message["id"])
        if media is None:
            # "does not contain media" is answered, then decryptFile throws as well.
            req.answered_twice = True
            return json_response(
                400, {"status": "error", "message": "Message does not contain media"}
            )
        if self.messenger.download_try(message["id"]) <= self.settings.config.decrypt_error_tries:
            return json_response(400, DECRYPT_FAILED)  # decryptFile threw: CDN or decryption
        data, mimetype = media
        return json_response(200, {"base64": data, "mimetype": mimetype})

    @_behind_status_connection
    def contact_pn_lid(self, req: Request, name: str, client: Client) -> Response:
        """``ContactController.getContactPnLid``: ``WPP.contact.getPnLidEntry``, which maps
        a ``@c.us`` id to its LID and back; unknown halves are left out."""
        wanted = req.query["param"]
        user, _, server = wanted.partition("@")
        server = server or "c.us"
        if server not in ("c.us", "lid") or not user.isdigit():
            return json_response(
                500,
                {"status": "error", "message": "Error on get contact by PN-LID", "error": {}},
            )
        if server == "lid":
            lid: str | None = user
            phone = self.messenger.number_of_lid(user)
        else:
            phone = user
            lid = self.messenger.lid_of(user)
        answer: dict[str, Any] = {}
        if lid is not None:
            answer["lid"] = _wid_info(f"{lid}@lid")
        if phone is not None:
            answer["phoneNumber"] = _wid_info(f"{phone}@c.us")
        pushname = self.messenger.pushname_of(f"{lid}@lid" if lid else f"{phone}@c.us")
        if pushname is not None:
            answer["contact"] = {
                "pushname": pushname,
                "type": "in",
                "isBusiness": False,
                "isEnterprise": False,
            }
        return json_response(200, answer)

    @_behind_status_connection
    def check_number_status(self, req: Request, name: str, client: Client) -> Response:
        """``DeviceController.checkNumberStatus``: the library's profile of one number
        (``WAPI.checkNumberStatus``): ``id`` is WhatsApp's canonical id when the number
        exists, the id as asked otherwise. A lookup WhatsApp's server failed, or a miss wa-js
        still keeps, answers ``numberExists: false`` like a number with no account."""
        contacts = contact_to_array(req.query["param"], False, False, False)
        if not contacts:
            return json_response(200, {"status": "success"})
        contact = contacts[-1]
        if contact.endswith("@lid"):
            lid = contact.split("@")[0]
            canonical = contact if self.messenger.number_of_lid(lid) is not None else None
        else:
            canonical = self.messenger.lookup(name, contact)
        if canonical is None:
            profile: dict[str, Any] = {
                "id": contact,
                "isBusiness": False,
                "canReceiveMessage": False,
                "numberExists": False,
                "status": 404,
            }
        else:
            profile = {
                "id": _wid_info(canonical),
                "isBusiness": False,
                "canReceiveMessage": True,
                "numberExists": True,
                "status": 200,
            }
        return json_response(200, {"status": "success", "response": profile})

    # ----------------------------------------------------------------- conversations

    @_behind_status_connection
    def react_message(self, req: Request, name: str, client: Client) -> Response:
        """``DeviceController.reactMessage``: ``sendReactionToMessage(msgId, reaction)``."""
        try:
            self.messenger.own_react(client, req.body.get("msgId"), req.body.get("reaction"))
        except SendFailed as exc:
            return json_response(
                500,
                {
                    "status": "error",
                    "message": "Error on send reaction to message",
                    "error": exc.error,
                },
            )
        return json_response(200, {"status": "success", "response": {"message": "Reaction sended"}})

    @_behind_status_connection
    def edit_message(self, req: Request, name: str, client: Client) -> Response:
        """``MessageController.editMessage``: the message read back, ``mapper: "return"``."""
        try:
            edited = self.messenger.own_edit(client, req.body.get("id"), req.body.get("newText"))
        except SendFailed as exc:
            return send_error(exc.error)
        return send_success(edited)  # type: ignore[arg-type]  # one message, not a list

    def delete_message(self, req: Request, name: str, client: Client | None) -> Response:
        """``DeviceController.deleteMessage``: ``deleteMessage(`${phone}`, messageId,
        onlyLocal)``; a success answers 200 and then 401, which throws: the host logs an
        unhandled rejection."""
        checked = self._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        assert client is not None
        first = self._unknown(checked, req)
        chat = ",".join(chat_id for chat_id, _ in checked.targets)
        try:
            self.messenger.own_delete(
                client, chat, req.body.get("messageId"), js_truthy(req.body.get("onlyLocal"))
            )
        except SendFailed as exc:
            return first or json_response(
                500, {"status": "error", "message": "Error on delete message", "error": exc.error}
            )
        req.answered_twice = True
        return first or json_response(
            200, {"status": "success", "response": {"message": "Message deleted"}}
        )

    def send_seen(self, req: Request, name: str, client: Client | None) -> Response:
        """``DeviceController.sendSeen``: ``sendSeen`` for each chat of ``phone``."""
        checked = self._status_connection(req, client)
        if isinstance(checked, Response):
            return checked
        assert client is not None
        first = self._unknown(checked, req)
        results = [self.messenger.own_seen(client, chat_id) for chat_id, _ in checked.targets]
        phones = [chat_id for chat_id, _ in checked.targets]
        return first or retrieved(name, results, contact=phones)

    @_behind_status_connection
    def group_info(self, req: Request, name: str, client: Client) -> Response:
        """``GroupController.getGroupInfo``: subject and participants (``{id, isAdmin}``)."""
        group = req.query["param"].split("@")[0] + "@g.us"
        return json_response(
            200, {"status": "success", "response": self.messenger.group_info(name, group)}
        )

    @_behind_status_connection
    def reactions(self, req: Request, name: str, client: Client) -> Response:
        """``DeviceController.getReactions``: the message's reactions, by emoji."""
        message = self.messenger.message_by_id(name, req.query["param"])
        if message is None:
            return json_response(
                500, {"status": "error", "message": "Error on get reactions", "error": {}}
            )
        return json_response(
            200,
            {"status": "success", "response": self.messenger.kinds.reactions(name, message["id"])},
        )

    @_behind_status_connection
    def get_phone_number(self, req: Request, name: str, client: Client) -> Response:
        """``DeviceController.getPhoneNumber``: the library's ``getWid()``."""
        return json_response(200, {"status": "success", "response": client.wid, "mapper": "device"})
