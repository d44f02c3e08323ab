"""Client of the WPPConnect session host (wppconnect-server's HTTP API): its routes, and what
each answer means in the gateway's terms.

Connect and read timeouts stay well under the function's timeout. What the answers come back
as (records, and the exceptions for the host's refusals) is in ``host.answers``; the HTTP
under it (the session, retries, failures as :class:`HostError` or :class:`HostTimeout` that
name no URL) in ``host.http``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wa_gateway.errors import HostError
from wa_gateway.host import http as host_http
from wa_gateway.host.answers import (
    HostMedia,
    HostSessionClosed,
    HostState,
    HostUnauthorized,
    SentMessage,
    sent_from,
    state_from,
)
from wa_gateway.host.http import seg

if TYPE_CHECKING:
    import requests


class HostClient:
    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 10.0,
        start_timeout_s: float = 20.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._secret_key = secret_key
        host_http.redact(secret_key)
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._start_timeout = (connect_timeout_s, start_timeout_s)
        self._http = session or host_http.new_session()

    def __repr__(self) -> str:
        return f"HostClient({self.base_url!r})"

    # --- routes -------------------------------------------------------------------------

    def generate_token(self, session: str) -> str:
        path = f"/api/{seg(session)}/{seg(self._secret_key)}/generate-token"
        status, body = self._request("POST", path)
        token = body.get("token") if isinstance(body, dict) else None
        if status != 201 or not isinstance(token, str) or not token:
            raise HostError()
        return token

    def start_session(
        self, session: str, token: str, *, webhook_url: str, phone: str | None = None
    ) -> HostState:
        """Start (or look at) a session; waits for the first QR code or pairing code."""
        payload: dict[str, Any] = {"webhook": webhook_url, "waitQrCode": True}
        if phone:
            payload["phone"] = phone
        status, body = self._request(
            "POST",
            f"/api/{seg(session)}/start-session",
            token=token,
            json=payload,
            timeout=self._start_timeout,
        )
        return state_from(status, body)

    def status_session(self, session: str, token: str) -> HostState:
        status, body = self._request("GET", f"/api/{seg(session)}/status-session", token=token)
        return state_from(status, body)

    def health(self) -> None:
        """Raise HostError or HostTimeout unless the host answers ``GET /healthz`` with 200."""
        status, _ = self._request("GET", "/healthz")
        if status != 200:
            raise HostError()

    def list_sessions(self) -> list[str]:
        """The session names the host keeps (its token store): ``show-all-sessions``."""
        status, body = self._request("GET", f"/api/{seg(self._secret_key)}/show-all-sessions")
        names = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(names, list):
            raise HostError()
        return [name for name in names if isinstance(name, str)]

    def close_session(self, session: str, token: str) -> bool:
        """Close the session's browser; False when the host had nothing to close."""
        status, body = self._request("POST", f"/api/{seg(session)}/close-session", token=token)
        if status == 200 and not isinstance(body, dict):
            raise HostError()  # a 200 we cannot read: it may not have closed
        return status == 200

    def logout_session(self, session: str, token: str) -> bool:
        """Unlink the device; False when the session was not connected (the host's 404)."""
        status, body = self._request("POST", f"/api/{seg(session)}/logout-session", token=token)
        if status == 404:
            return False
        if status != 200 or not isinstance(body, dict):
            raise HostError()  # a 200 we cannot read may not be a logout: the device stays linked
        return True

    def clear_session_data(self, session: str) -> None:
        """Delete the session's browser profile on the host (``clear-session-data``, the secret
        key in the path, no bearer), so the host can never restore that login. It leaves a
        running client alone, and a stock host keeps the session's token file."""
        path = f"/api/{seg(session)}/{seg(self._secret_key)}/clear-session-data"
        status, body = self._request("POST", path)
        if status != 200 or not isinstance(body, dict) or body.get("success") is not True:
            raise HostError()

    def send_message(
        self, session: str, token: str, *, phone: str, message: str, is_lid: bool = False
    ) -> SentMessage:
        """Send a text (to a LID's digits with ``is_lid``). Retried only if the connection
        never opened: a repeat could send twice."""
        payload: dict[str, Any] = {"phone": phone, "message": message, "isGroup": False}
        if is_lid:
            payload["isLid"] = True
        status, body = self._request(
            "POST", f"/api/{seg(session)}/send-message", token=token, json=payload
        )
        return sent_from(status, body)

    def send_file(
        self,
        session: str,
        token: str,
        *,
        phone: str,
        data_uri: str,
        filename: str,
        caption: str,
        is_lid: bool = False,
    ) -> SentMessage:
        """Send a file (``send-file-base64``; ``data_uri`` is ``data:<type>;base64,...``), with
        ``caption`` under it. The answer names no recipient: ``to`` is None."""
        payload: dict[str, Any] = {
            "phone": phone,
            "base64": data_uri,
            "filename": filename,
            "caption": caption,
            "isGroup": False,
        }
        if is_lid:
            payload["isLid"] = True
        path = f"/api/{seg(session)}/send-file-base64"
        return sent_from(
            *self._request("POST", path, token=token, json=payload, timeout=self._start_timeout)
        )

    def send_voice(
        self, session: str, token: str, *, phone: str, data_uri: str, is_lid: bool = False
    ) -> SentMessage:
        """Send an Ogg/Opus file as a voice note (``send-voice-base64``)."""
        payload: dict[str, Any] = {"phone": phone, "base64Ptt": data_uri, "isGroup": False}
        if is_lid:
            payload["isLid"] = True
        path = f"/api/{seg(session)}/send-voice-base64"
        return sent_from(
            *self._request("POST", path, token=token, json=payload, timeout=self._start_timeout)
        )

    def download_media(self, session: str, token: str, message_id: str) -> HostMedia | None:
        """A received file (``download-media``), None when the host cannot give it (no such
        message, no media, a file it cannot decrypt). Call it for a connected session only."""
        status, body = self._request(
            "POST",
            f"/api/{seg(session)}/download-media",
            token=token,
            json={"messageId": message_id},
            timeout=self._start_timeout,
        )
        if status == 404:
            raise HostSessionClosed()
        if status == 400:
            return None
        data = body.get("base64") if isinstance(body, dict) else None
        mime_type = body.get("mimetype") if isinstance(body, dict) else None
        if status != 200 or not isinstance(data, str):
            raise HostError(maybe_acted=False)
        return HostMedia(data, mime_type if isinstance(mime_type, str) else None)

    def check_connection(self, session: str, token: str) -> bool:
        """Whether the host has a live client for the session (``check-connection-session``,
        the one route that says so without the status middleware's 404-then-run-anyway)."""
        status, body = self._request(
            "GET", f"/api/{seg(session)}/check-connection-session", token=token
        )
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("status"), bool):
            raise HostError(maybe_acted=False)
        return body["status"]

    def phone_of_lid(self, session: str, token: str, lid: str) -> str | None:
        """The phone number id (``5511…@c.us``) behind a contact's LID, None if the host cannot
        tell (``contact/pn-lid``). Call it for a connected session only."""
        path = f"/api/{seg(session)}/contact/pn-lid/{seg(lid + '@lid')}"
        status, body = self._request("GET", path, token=token)
        if status != 200 or not isinstance(body, dict):
            raise HostError(maybe_acted=False)
        number = body.get("phoneNumber")
        serialized = number.get("_serialized") if isinstance(number, dict) else None
        return serialized if isinstance(serialized, str) else None

    # Reading back what the host holds (reconcile). None of these marks anything read on the
    # phone: listChats is WPP.chat.list, getMessages WPP.chat.getMessages, getMessageById
    # WPP.chat.getMessageById (wppconnect's retriever layer and wapi functions); only
    # callWebHook's readMessage and the send-seen routes call sendSeen. Connected sessions only.

    def uptime_s(self) -> float | None:
        """How long the host process has been up (``/healthz``), None if it does not say."""
        status, body = self._request("GET", "/healthz")
        if status != 200 or not isinstance(body, dict):
            raise HostError(maybe_acted=False)
        uptime = body.get("uptime")
        return float(uptime) if isinstance(uptime, int | float) else None

    def list_chats(self, session: str, token: str) -> list[dict[str, Any]]:
        """Every chat with its last message's time ``t`` (``list-chats``, POST, unwrapped)."""
        status, body = self._request(
            "POST", f"/api/{seg(session)}/list-chats", token=token, json={}
        )
        if status != 200 or not isinstance(body, list):
            raise HostError(maybe_acted=False)
        return [chat for chat in body if isinstance(chat, dict)]

    def chat_messages(
        self, session: str, token: str, *, chat: str, count: int, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The last ``count`` messages of a chat, oldest first, or the ``count`` before the
        message ``before`` (``get-messages/:chatId``; the id must be a full chat id)."""
        query = f"?count={count}" + (f"&direction=before&id={seg(before)}" if before else "")
        status, body = self._request(
            "GET", f"/api/{seg(session)}/get-messages/{seg(chat)}{query}", token=token
        )
        items = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(items, list):
            raise HostError(maybe_acted=False)
        return [item for item in items if isinstance(item, dict)]

    def message_by_id(self, session: str, token: str, *, id: str) -> dict[str, Any] | None:
        """One message as the host has it now (``message-by-id``), None if it has no such id
        (the controller throws: 400)."""
        status, body = self._request(
            "GET", f"/api/{seg(session)}/message-by-id/{seg(id)}", token=token
        )
        if status == 400:
            return None
        answer = body.get("response") if isinstance(body, dict) else None
        data = answer.get("data") if isinstance(answer, dict) else None
        if status not in (200, 201) or not isinstance(data, dict):
            raise HostError(maybe_acted=False)
        return data

    # --- plumbing -----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        timeout: tuple[float, float] | None = None,
    ) -> tuple[int, Any]:
        status, body = host_http.request(
            self._http,
            method,
            self.base_url + path,
            token=token,
            json=json,
            timeout=timeout or self._timeout,
        )
        if status == 401:
            raise HostUnauthorized()
        return status, body
