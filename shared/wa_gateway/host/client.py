"""Client of the WPPConnect session host (wppconnect-server's HTTP API): its routes, and what
each answer means in the gateway's terms.

Connect and read timeouts stay well under the function's timeout. What the answers come back
as (records, and the exceptions for the host's refusals) is in ``host.answers``; the HTTP
under it (the connection pool, retries, failures as :class:`HostError` or :class:`HostTimeout` that
name no URL) in ``host.http``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wa_gateway.errors import HostError
from wa_gateway.host import http as host_http
from wa_gateway.host.answers import (
    HostMedia,
    HostRefusedMedia,
    HostSessionClosed,
    HostState,
    HostUnauthorized,
    SentMessage,
    is_refused_token,
    sent_from,
    state_from,
)
from wa_gateway.host.chat_routes import ChatRoutes, HostChat
from wa_gateway.host.http import seg
from wa_gateway.host.read_back import ReadBackRoutes

if TYPE_CHECKING:
    from wa_gateway.http_client import Pool


class HostClient(ChatRoutes, ReadBackRoutes):
    """The host's routes (those of conversations in :class:`ChatRoutes`, the read-back ones in
    :class:`ReadBackRoutes`), each call one HTTP request with this client's timeouts."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 10.0,
        start_timeout_s: float = 20.0,
        session: Pool | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._secret_key = secret_key
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._start_timeout = (connect_timeout_s, start_timeout_s)
        self._http = session or host_http.new_session()

    def __repr__(self) -> str:
        return f"HostClient({self.base_url!r})"

    @property
    def read_timeout_s(self) -> float:
        return self._timeout[1]

    def with_read_timeout(self, read_timeout_s: float) -> HostClient:
        """This client, waiting at most ``read_timeout_s`` for an answer (never longer than
        it does now), on the same connections."""
        return HostClient(
            self.base_url,
            self._secret_key,
            connect_timeout_s=self._timeout[0],
            read_timeout_s=min(read_timeout_s, self.read_timeout_s),
            start_timeout_s=self._start_timeout[1],
            session=self._http,
        )

    def shares_connections_with(self, other: HostClient) -> bool:
        return self._http is other._http

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
        self, session: str, token: str, chat: HostChat, message: str, quoted: str | None = None
    ) -> SentMessage:
        """Send a text to ``chat`` (a number, a LID's digits or a group's id), quoting the
        message of WhatsApp id ``quoted`` (``options.quotedMsg``, what the host's deprecated
        ``send-reply`` does too). Retried only if the connection never opened: a repeat could
        send twice."""
        payload = chat.fields()
        payload["message"] = message
        if quoted:
            payload["options"] = {"quotedMsg": quoted}
        status, body = self._request(
            "POST", f"/api/{seg(session)}/send-message", token=token, json=payload
        )
        return sent_from(status, body)

    def send_file(
        self,
        session: str,
        token: str,
        chat: HostChat,
        *,
        data_uri: str,
        filename: str,
        caption: str,
        quoted: str | None = None,
    ) -> SentMessage:
        """Send a file (``send-file-base64``; ``data_uri`` is ``data:<type>;base64,...``), with
        ``caption`` under it. The answer names no recipient: ``to`` is None."""
        file = {"base64": data_uri, "filename": filename, "caption": caption}
        return self._send_file(session, token, "send-file-base64", chat, file, quoted)

    def send_voice(
        self, session: str, token: str, chat: HostChat, *, data_uri: str, quoted: str | None = None
    ) -> SentMessage:
        """Send an Ogg/Opus file as a voice note (``send-voice-base64``)."""
        return self._send_file(
            session, token, "send-voice-base64", chat, {"base64Ptt": data_uri}, quoted
        )

    def _send_file(
        self,
        session: str,
        token: str,
        route: str,
        chat: HostChat,
        file: dict[str, str],
        quoted: str | None,
    ) -> SentMessage:
        payload = chat.fields() | file
        if quoted:
            payload["quotedMessageId"] = quoted
        path = f"/api/{seg(session)}/{route}"
        return sent_from(
            *self._request("POST", path, token=token, json=payload, timeout=self._start_timeout)
        )

    def download_media(self, session: str, token: str, message_id: str) -> HostMedia:
        """A received file (``download-media``). :class:`HostRefusedMedia` when the host did
        not give it: transient for its "Decrypt file error" (the CDN or the decryption failed,
        or it could not find the message), final otherwise (the message has no file). Call
        it for a connected session only."""
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
            message = body.get("message") if isinstance(body, dict) else None
            raise HostRefusedMedia(transient=message == "Decrypt file error")
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
        if status == 401 and is_refused_token(body):
            raise HostUnauthorized()
        return status, body
