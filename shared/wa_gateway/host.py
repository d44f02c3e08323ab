"""Client of the WPPConnect session host (wppconnect-server's HTTP API).

One ``requests`` session per container, reused across warm invocations. Connect and read
timeouts stay well under the function's timeout. Retries, with backoff and jitter, only where
repeating cannot do harm: connection failures before a request was sent (any route), and
502/503/504 answers to GETs. Every failure becomes :class:`HostError` or :class:`HostTimeout`
with a message that names no URL: the host's URLs carry its secret key and session tokens.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from wa_gateway.errors import HostError, HostTimeout

if TYPE_CHECKING:
    import requests


class _RedactSecrets(logging.Filter):
    """urllib3 logs request paths (its retries at WARNING, every request at DEBUG), and the
    host's paths carry its secret key: whatever it logs has the key taken out."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = message
        for secret in tuple(self.secrets):
            redacted = redacted.replace(secret, "[secret]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = _RedactSecrets()
for _logger in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
    logging.getLogger(_logger).addFilter(_REDACT)


class HostUnauthorized(Exception):
    """The host refused the session's token (a new token is needed)."""


class HostSessionClosed(Exception):
    """The host has no live client for the session (its 404 "Disconnected")."""


class HostUnknownRecipient(Exception):
    """The host says the number is not on WhatsApp."""


class SentMessage(NamedTuple):
    wpp_message_id: str
    to: str | None


class HostMedia(NamedTuple):
    """A file as the host gives it: base64, and the type it names."""

    base64: str
    mime_type: str | None


class HostState(NamedTuple):
    """What the host says a session is doing, in its own words."""

    status: str | None
    urlcode: str | None = None
    phone_code: str | None = None
    qrcode: str | None = None  # the host's PNG of the QR, base64 or a data URL


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
        _REDACT.secrets.update(value for value in (secret_key, _seg(secret_key)) if value)
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._start_timeout = (connect_timeout_s, start_timeout_s)
        self._http = session or _new_session()

    def __repr__(self) -> str:
        return f"HostClient({self.base_url!r})"

    # --- routes -------------------------------------------------------------------------

    def generate_token(self, session: str) -> str:
        path = f"/api/{_seg(session)}/{_seg(self._secret_key)}/generate-token"
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
            f"/api/{_seg(session)}/start-session",
            token=token,
            json=payload,
            timeout=self._start_timeout,
        )
        return _state_from(status, body)

    def status_session(self, session: str, token: str) -> HostState:
        status, body = self._request("GET", f"/api/{_seg(session)}/status-session", token=token)
        return _state_from(status, body)

    def health(self) -> None:
        """Raise HostError or HostTimeout unless the host answers ``GET /healthz`` with 200."""
        status, _ = self._request("GET", "/healthz")
        if status != 200:
            raise HostError()

    def list_sessions(self) -> list[str]:
        """The session names the host keeps (its token store): ``show-all-sessions``."""
        status, body = self._request("GET", f"/api/{_seg(self._secret_key)}/show-all-sessions")
        names = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(names, list):
            raise HostError()
        return [name for name in names if isinstance(name, str)]

    def close_session(self, session: str, token: str) -> bool:
        """Close the session's browser; False when the host had nothing to close."""
        status, body = self._request("POST", f"/api/{_seg(session)}/close-session", token=token)
        if status == 200 and not isinstance(body, dict):
            raise HostError()  # a 200 we cannot read: it may not have closed
        return status == 200

    def logout_session(self, session: str, token: str) -> bool:
        """Unlink the device; False when the session was not connected (the host's 404)."""
        status, body = self._request("POST", f"/api/{_seg(session)}/logout-session", token=token)
        if status == 404:
            return False
        if status != 200 or not isinstance(body, dict):
            raise HostError()  # a 200 we cannot read may not be a logout: the device stays linked
        return True

    def clear_session_data(self, session: str) -> None:
        """Delete the session's browser profile on the host (``clear-session-data``, the secret
        key in the path, no bearer), so the host can never restore that login. It leaves a
        running client alone, and a stock host keeps the session's token file."""
        path = f"/api/{_seg(session)}/{_seg(self._secret_key)}/clear-session-data"
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
            "POST", f"/api/{_seg(session)}/send-message", token=token, json=payload
        )
        return _sent_from(status, body)

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
        path = f"/api/{_seg(session)}/send-file-base64"
        return _sent_from(
            *self._request("POST", path, token=token, json=payload, timeout=self._start_timeout)
        )

    def send_voice(
        self, session: str, token: str, *, phone: str, data_uri: str, is_lid: bool = False
    ) -> SentMessage:
        """Send an Ogg/Opus file as a voice note (``send-voice-base64``)."""
        payload: dict[str, Any] = {"phone": phone, "base64Ptt": data_uri, "isGroup": False}
        if is_lid:
            payload["isLid"] = True
        path = f"/api/{_seg(session)}/send-voice-base64"
        return _sent_from(
            *self._request("POST", path, token=token, json=payload, timeout=self._start_timeout)
        )

    def download_media(self, session: str, token: str, message_id: str) -> HostMedia | None:
        """A received file (``download-media``), None when the host cannot give it (no such
        message, no media, a file it cannot decrypt). Call it for a connected session only."""
        status, body = self._request(
            "POST",
            f"/api/{_seg(session)}/download-media",
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
            "GET", f"/api/{_seg(session)}/check-connection-session", token=token
        )
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("status"), bool):
            raise HostError(maybe_acted=False)
        return body["status"]

    def check_number(self, session: str, token: str, phone: str) -> str | None:
        """WhatsApp's canonical id of ``phone`` (``check-number-status``), None if it has no
        account; HostError when the check itself failed. Call it for a connected session only."""
        status, body = self._request(
            "GET", f"/api/{_seg(session)}/check-number-status/{_seg(phone)}", token=token
        )
        profile = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(profile, dict):
            raise HostError(maybe_acted=False)
        exists = profile.get("numberExists")
        if exists is False:
            return None
        wid = profile.get("id")
        serialized = wid.get("_serialized") if isinstance(wid, dict) else None
        if exists is not True or not isinstance(serialized, str):
            raise HostError(maybe_acted=False)
        return serialized

    def phone_of_lid(self, session: str, token: str, lid: str) -> str | None:
        """The phone number id (``5511…@c.us``) behind a contact's LID, None if the host cannot
        tell (``contact/pn-lid``). Call it for a connected session only."""
        path = f"/api/{_seg(session)}/contact/pn-lid/{_seg(lid + '@lid')}"
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
            "POST", f"/api/{_seg(session)}/list-chats", token=token, json={}
        )
        if status != 200 or not isinstance(body, list):
            raise HostError(maybe_acted=False)
        return [chat for chat in body if isinstance(chat, dict)]

    def chat_messages(
        self, session: str, token: str, *, chat: str, count: int, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The last ``count`` messages of a chat, oldest first, or the ``count`` before the
        message ``before`` (``get-messages/:chatId``; the id must be a full chat id)."""
        query = f"?count={count}" + (f"&direction=before&id={_seg(before)}" if before else "")
        status, body = self._request(
            "GET", f"/api/{_seg(session)}/get-messages/{_seg(chat)}{query}", token=token
        )
        items = body.get("response") if isinstance(body, dict) else None
        if status != 200 or not isinstance(items, list):
            raise HostError(maybe_acted=False)
        return [item for item in items if isinstance(item, dict)]

    def message_by_id(self, session: str, token: str, *, id: str) -> dict[str, Any] | None:
        """One message as the host has it now (``message-by-id``), None if it has no such id
        (the controller throws: 400)."""
        status, body = self._request(
            "GET", f"/api/{_seg(session)}/message-by-id/{_seg(id)}", token=token
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
        import requests

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                headers=headers,
                json=json,
                timeout=timeout or self._timeout,
            )
        except requests.ConnectTimeout:
            raise HostTimeout(maybe_acted=False) from None
        except requests.Timeout:
            raise HostTimeout() from None
        except requests.ConnectionError as exc:
            # Refused or reset: the host may have acted unless the connection never opened.
            raise HostError(maybe_acted=not _never_connected(exc)) from None
        except requests.RequestException:
            raise HostError() from None
        if response.status_code == 401:
            raise HostUnauthorized()
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body


def _sent_from(status: int, body: Any) -> SentMessage:
    """The message a send route says it sent: its ``response`` holds full Message objects
    (``send-message``) or ``{ack, id}`` (the file routes)."""
    if status == 201 and isinstance(body, dict):
        items = body.get("response")
        first = items[0] if isinstance(items, list) and items else None
        wpp_id = first.get("id") if isinstance(first, dict) else None
        if isinstance(wpp_id, dict):
            wpp_id = wpp_id.get("_serialized")
        if isinstance(wpp_id, str) and wpp_id:
            to = first.get("to") if isinstance(first, dict) else None
            return SentMessage(wpp_id, to if isinstance(to, str) else None)
        raise HostError()  # a 201 we cannot read: it may have been sent
    if status == 404:
        raise HostSessionClosed()
    if status == 400 and _says_number_missing(body):
        raise HostUnknownRecipient()
    if status >= 500 or status == 400:
        raise HostError(maybe_acted=False)  # wppconnect answers 500 when the send threw
    raise HostError()


def _state_from(status: int, body: Any) -> HostState:
    if status not in (200, 201) or not isinstance(body, dict):
        raise HostError()
    raw = body.get("status")
    if raw is not None and not isinstance(raw, str):
        raise HostError()
    urlcode = body.get("urlcode")
    phone_code = body.get("phoneCode")
    image = body.get("qrcode")
    return HostState(
        status=raw,
        urlcode=urlcode if isinstance(urlcode, str) and urlcode else None,
        phone_code=phone_code if isinstance(phone_code, str) and phone_code else None,
        qrcode=image if isinstance(image, str) and image else None,
    )


def _seg(value: str) -> str:
    return quote(value, safe="")


def _says_number_missing(body: Any) -> bool:
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and ("não existe" in message or "not exist" in message)


def _never_connected(exc: Exception) -> bool:
    """True when the connection itself failed (refused, no route), so nothing was sent."""
    from urllib3.exceptions import NewConnectionError

    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)


def _new_session() -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    # Connection failures are retried on every route (nothing reached the host); answers are
    # retried only for GETs; a read timeout never is (the host may be acting on it).
    retry = Retry(
        total=3,
        connect=2,
        read=False,  # a read timeout surfaces as itself, never as a connection error
        other=0,
        status=2,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=0.1,
        backoff_jitter=0.2,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    # The host's URL is configured, not discovered: no proxy, .netrc or CA bundle from the
    # environment (requests would look them up again on every request).
    session.trust_env = False
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    return session
