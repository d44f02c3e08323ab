"""The session state machine: where every status change of the simulated host happens.

One :class:`Client` per session name stands for the server's ``clientsArray[session]``
entry. Its ``status`` is one of None, ``INITIALIZING``, ``QRCODE``, ``PHONECODE``,
``CONNECTED`` and ``CLOSED``; no entry at all is the "absent" state. ``live`` marks a
client whose library ``create()`` has resolved: only such a client can send, be closed
cleanly or log out.

Sequences (WPPCONNECT.md section 3), each event a ``status-find`` webhook unless named:

- new login: INITIALIZING, then ``notLogged`` and ``qrcode`` (status QRCODE) or
  ``phoneCode`` (status PHONECODE), more ``qrcode`` on refresh; on scan ``qrReadSuccess``,
  then ``inChat`` and CONNECTED;
- restored login (a saved login exists): INITIALIZING, ``isLogged``, ``inChat``, CONNECTED;
- QR never scanned: after ``autoclose_ms`` status CLOSED and ``browserClose`` (plus
  ``autocloseCalled`` first unless ``bug_lost_autoclose``);
- phone unlinks: ``disconnectedMobile``, the entry is removed, then ``browserClose``;
- logout-session: the entry is removed at once; the logged-out browser runs on for
  ``logout_close_ms``, then ``disconnectedMobile`` (which wipes whatever entry the session
  has by then) and ``browserClose``. A start meanwhile fails to launch (the profile is in use).

A browser that fails to launch (on a profile in use, or ``launch_fail_next``) leaves its entry
INITIALIZING for good and its held start-session reply unanswered, as create() rejects with a
plain Error. ``browsers`` in :meth:`SessionManager.describe` counts the session's running
browsers: its entry's, orphaned pairing ones and logged-out ones still closing.

``urlcode`` is never cleared on a client, so an old QR code stays visible. Timers carry the
client and its ``epoch``; any change that ends a login attempt bumps the epoch, so stale
timers do nothing.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.simulator.config import SERVER_VERSION, Settings
from local.simulator.forms import js_truthy
from local.simulator.messages import derived_number, to_wid
from local.simulator.qr import new_pairing_code, new_urlcode, qr_base64, qr_data_url
from local.simulator.scheduler import Scheduler
from local.simulator.store import SessionStore
from local.simulator.webhooks import Webhooks


class Waiter:
    """A start-session reply held until the first QR code (``waitQrCode: true``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.body: dict[str, Any] | None = None

    def resolve(self, body: dict[str, Any] | None) -> None:
        """Answer with ``body``; None means the reply will never come (drop it)."""
        self.body = body
        self._event.set()

    def wait(self, timeout_s: float) -> dict[str, Any] | None:
        self._event.wait(timeout_s)
        return self.body


@dataclass(eq=False)
class Client:
    name: str
    # The client's `session` property; None when it is missing (issue #1931).
    session_attr: str | None
    status: str | None = None
    urlcode: str | None = None
    phone_code: str | None = None
    phone: Any = None
    config: Any = field(default_factory=dict)
    live: bool = False
    wid: str | None = None
    epoch: int = 0
    awaiting_login: bool = False
    # A second browser on a profile still in use failed to launch: INITIALIZING for good.
    launch_failed: bool = False
    waiters: list[Waiter] = field(default_factory=list)

    @property
    def pairing(self) -> bool:
        """A browser is running for this client and has not logged in yet."""
        return (
            not self.live
            and not self.launch_failed
            and self.status in ("INITIALIZING", "QRCODE", "PHONECODE")
        )

    def with_session(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` plus ``session: client.session`` (left out when undefined)."""
        if self.session_attr is not None:
            return {**payload, "session": self.session_attr}
        return payload

    def describe(self) -> dict[str, Any]:
        return {
            "exists": True,
            "status": self.status,
            "live": self.live,
            "urlcode": self.urlcode,
            "phoneCode": self.phone_code,
            "phone": self.phone,
            "wid": self.wid,
            "config": self.config,
            "sessionKey": self.session_attr,
            "awaitingLogin": self.awaiting_login,
            "launchFailed": self.launch_failed,
        }


@dataclass(eq=False)
class SessionManager:
    settings: Settings
    store: SessionStore
    webhooks: Webhooks
    scheduler: Scheduler

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._clients: dict[str, Client] = {}
        # Pairing browsers that close-session let go of (orphan_pairing_browser): they
        # still post events and can still log in, until their autoClose.
        self._orphans: dict[str, list[Client]] = {}
        # Logged-out browsers still running (logout_close_ms): they hold the profile.
        self._closing: dict[str, list[Client]] = {}
        self._epochs = itertools.count(1)
        # Per session name: start-session requests received, and starts actually made.
        self._start_calls: dict[str, int] = {}
        self._starts: dict[str, int] = {}
        # Held replies that will never be answered (bug_wait_qr_hang_on_restore).
        self._hung: list[Waiter] = []

    # ----------------------------------------------------------------- lookups

    def client(self, name: str) -> Client | None:
        with self.lock:
            return self._clients.get(name)

    def session_state(self, client: Client | None, wait_qr: bool) -> dict[str, Any] | None:
        """``getSessionState``: None when it sends nothing (no client and ``waitQrCode``)."""
        with self.lock:
            if (client is None or client.status is None) and not wait_qr:
                return {"status": "CLOSED", "qrcode": None}
            if client is None:
                return None
            urlcode = client.urlcode
            body: dict[str, Any] = {
                "status": client.status,
                "qrcode": qr_data_url(urlcode) if urlcode else None,
            }
            if urlcode is not None:
                body["urlcode"] = urlcode
            body["version"] = SERVER_VERSION
            return body

    def wait_for_status(self, name: str, status: str, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: (c := self._clients.get(name)) is not None and c.status == status,
                timeout_s,
            )

    # ----------------------------------------------------------------- helpers

    def _alive(self, client: Client, epoch: int) -> bool:
        if client.epoch != epoch:
            return False
        return self._clients.get(client.name) is client or client in self._orphans.get(
            client.name, []
        )

    def _drop_orphan(self, client: Client) -> None:
        orphans = self._orphans.get(client.name, [])
        if client in orphans:
            orphans.remove(client)
        if not orphans:
            self._orphans.pop(client.name, None)

    def _pairing_client(self, name: str) -> Client | None:
        """The client a phone would scan: the session's own, else an orphaned browser's."""
        client = self._clients.get(name)
        if client is not None and (client.awaiting_login or client.pairing):
            return client
        orphans = self._orphans.get(name, [])
        return orphans[-1] if orphans else client

    def _later(self, delay_ms: float, client: Client, fn: Callable[[Client, int], None]) -> None:
        epoch = client.epoch

        def run() -> None:
            with self.lock:
                if self._alive(client, epoch):
                    fn(client, epoch)

        self.scheduler.call_later(delay_ms / 1000, run)

    def _end_attempt(self, client: Client) -> None:
        """Stop the client's timers and drop held replies (they will never be answered)."""
        client.epoch = next(self._epochs)
        client.awaiting_login = False
        for waiter in client.waiters:
            waiter.resolve(None)
        client.waiters.clear()

    def _notify(self) -> None:
        self._changed.notify_all()

    def emit(self, client: Client, event: str, payload: dict[str, Any]) -> None:
        config = client.config if isinstance(client.config, dict) else {}
        self.webhooks.emit(
            lane=client.name,
            session_attr=client.session_attr,
            session_webhook=config.get("webhook"),
            event=event,
            payload=payload,
        )

    def _status_find(self, client: Client, status: str) -> None:
        self.emit(client, "status-find", client.with_session({"status": status}))

    # ----------------------------------------------------------------- start

    def count_start_call(self, name: str) -> None:
        with self.lock:
            self._start_calls[name] = self._start_calls.get(name, 0) + 1

    def start(self, name: str, body: dict[str, Any], waiter: Waiter | None = None) -> bool:
        """``createSessionUtil``: start unless the status is neither null nor CLOSED."""
        with self.lock:
            client = self._clients.get(name)
            if client is None:
                client = Client(name=name, session_attr=name)
                self._clients[name] = client
            if client.status is not None and client.status != "CLOSED":
                if waiter is not None:
                    waiter.resolve(self.session_state(client, True))
                return False
            stored = self.store.load_config(name)
            client.config = body if body or stored is None else stored
            self.store.save_config(name, client.config)
            client.status = "INITIALIZING"
            client.live = False
            client.awaiting_login = False
            client.launch_failed = False
            client.phone_code = None
            client.epoch = next(self._epochs)
            self._starts[name] = self._starts.get(name, 0) + 1
            if waiter is not None:
                client.waiters.append(waiter)
            self._notify()
            if (
                self._orphans.get(name)
                or self._closing.get(name)
                or self.settings.take_launch_failure()
            ):
                # Chromium refuses a second instance on the same userDataDir (or the launch
                # crashed); create() rejects with a non-timeout error, which leaves
                # INITIALIZING in place and the held reply unanswered.
                client.launch_failed = True
                return True
            self._later(self.settings.config.init_delay_ms, client, self._browser_ready)
            return True

    def start_all(self, body: dict[str, Any]) -> list[str]:
        names = self.store.list_sessions()
        for name in names:
            self.start(name, body)
        return names

    def restore(self, name: str, phone: str | None, *, start: bool = True) -> bool:
        """Make sure a saved login exists, then (unless told not to) start the session."""
        with self.lock:
            if self.store.load_login(name) is None:
                self.store.save_login(name, to_wid(phone or derived_number(name)))
            return self.start(name, {}) if start else False

    def _browser_ready(self, client: Client, epoch: int) -> None:
        config = self.settings.config
        wid = self.store.load_login(client.name)
        if wid is not None:
            self._status_find(client, "isLogged")
            self._later(
                config.connect_delay_ms,
                client,
                lambda c, e: self._connect(c, wid, restored=True),
            )
            return
        self._status_find(client, "notLogged")
        client.awaiting_login = True
        phone = client.config.get("phone") if isinstance(client.config, dict) else None
        if js_truthy(phone):
            self._issue_phone_code(client)
        else:
            self._issue_qr(client)
        if config.qr_refresh_ms > 0:
            self._later(config.qr_refresh_ms, client, self._refresh_tick)
        if config.autoclose_ms > 0:
            self._later(config.autoclose_ms, client, lambda c, e: self._autoclose(c))

    def _issue_qr(self, client: Client) -> None:
        urlcode = new_urlcode()
        raw = qr_base64(urlcode)
        client.status = "QRCODE"
        client.urlcode = urlcode
        self._announce(client, "qrcode", {"qrcode": raw, "urlcode": urlcode})

    def _issue_phone_code(self, client: Client) -> None:
        code = new_pairing_code()
        phone = client.config.get("phone") if isinstance(client.config, dict) else None
        client.status = "PHONECODE"
        client.phone_code = code
        client.phone = phone
        self._announce(client, "phoneCode", {"phoneCode": code, "phone": phone})

    def _announce(self, client: Client, event: str, fields: dict[str, Any]) -> None:
        """A new QR code or pairing code: posted as ``event`` and answered, with ``status``
        ``event``, to the start-session calls that wait for one."""
        self._notify()
        self.emit(client, event, client.with_session(fields))
        self._answer_waiters(client, client.with_session({"status": event, **fields}))

    @staticmethod
    def _answer_waiters(client: Client, body: dict[str, Any]) -> None:
        for waiter in client.waiters:
            waiter.resolve(body)
        client.waiters.clear()

    def _refresh_tick(self, client: Client, epoch: int) -> None:
        """A QR rotation: a new QR code, or with ``phone_code_rotates`` a new pairing code
        (the library asks for one at every auth code change)."""
        if not client.awaiting_login:
            return
        if client.status == "QRCODE":
            self._issue_qr(client)
        elif client.status == "PHONECODE" and self.settings.config.phone_code_rotates:
            self._issue_phone_code(client)
        else:
            return
        self._later(self.settings.config.qr_refresh_ms, client, self._refresh_tick)

    def refresh_qr(self, name: str) -> Client | None:
        """A new QR code (or pairing code) now; None if no login is being awaited."""
        with self.lock:
            client = self._pairing_client(name)
            if client is None or not client.awaiting_login:
                return None
            if client.status == "PHONECODE":
                self._issue_phone_code(client)
            else:
                self._issue_qr(client)
            return client

    # ----------------------------------------------------------------- login

    def scan(self, name: str, phone: str | None) -> str | None:
        """The phone scans the QR code (or the pairing code is typed); returns the wid."""
        with self.lock:
            client = self._pairing_client(name)
            if client is None or not client.awaiting_login:
                return None
            if phone:
                wid = to_wid(phone)
            elif client.status == "PHONECODE" and isinstance(client.phone, str):
                digits = "".join(ch for ch in client.phone if ch.isdigit())
                wid = to_wid(digits or derived_number(name))
            else:
                wid = to_wid(derived_number(name))
            client.awaiting_login = False
            self._status_find(client, "qrReadSuccess")
            self._later(
                self.settings.config.connect_delay_ms,
                client,
                lambda c, e: self._connect(c, wid, restored=False),
            )
            return wid

    def _connect(self, client: Client, wid: str, *, restored: bool) -> None:
        if self._clients.get(client.name) is not client:
            # An orphaned browser logged in: `clientsArray[session] = Object.assign(
            # wppClient, client)` puts it back in place of whatever entry is there.
            self._drop_orphan(client)
            replaced = self._clients.get(client.name)
            if replaced is not None:
                self._end_attempt(replaced)
            self._clients[client.name] = client
        client.status = "CONNECTED"
        client.live = True
        client.wid = wid
        # The library's client object has its own `session`, so it is back once connected.
        client.session_attr = client.name
        self.store.save_login(client.name, wid)
        self._notify()
        self._status_find(client, "inChat")
        if client.waiters:
            if restored and self.settings.config.bug_wait_qr_hang_on_restore:
                self._hung.extend(client.waiters)  # the held reply never comes
                client.waiters.clear()
            else:
                self._answer_waiters(client, self.session_state(client, True) or {})

    def _autoclose(self, client: Client) -> None:
        if client.awaiting_login:
            self._expire(client)

    def _expire(self, client: Client) -> None:
        self._end_attempt(client)
        self._drop_orphan(client)
        client.status = "CLOSED"
        client.live = False
        self._notify()
        if not self.settings.config.bug_lost_autoclose:
            self._status_find(client, "autocloseCalled")
        self._status_find(client, "browserClose")

    def expire(self, name: str) -> Client | None:
        """The QR code times out now (autoClose)."""
        with self.lock:
            client = self._pairing_client(name)
            if client is None or not (client.awaiting_login or client.pairing):
                return None
            self._expire(client)
            return client

    # ----------------------------------------------------------------- ending

    def unlink(self, name: str) -> str | None:
        """The phone removes the linked device: ``connected``, ``login_removed`` or None."""
        with self.lock:
            client = self._clients.get(name)
            if client is not None and client.live:
                self._later(self.settings.config.unlink_delay_ms, client, self._disconnected_mobile)
                return "connected"
            if self.store.load_login(name) is not None:
                self.store.delete_login(name)
                return "login_removed"
            return None

    def _disconnected_mobile(self, client: Client, epoch: int) -> None:
        self._end_attempt(client)
        client.status = "CLOSED"
        client.live = False
        del self._clients[client.name]
        self.store.delete_login(client.name)
        self._notify()
        self._status_find(client, "disconnectedMobile")
        self._status_find(client, "browserClose")  # its handler closed the browser

    def close(self, name: str) -> bool:
        """``close-session``: True for the 200 answer, False for the 500 one."""
        with self.lock:
            client = self._clients.get(name)
            if client is None:
                return False
            if client.status is None:
                return True
            keep_name = not self.settings.config.bug_no_session_after_restart
            self._clients[name] = Client(name=name, session_attr=name if keep_name else None)
            if client.pairing and self.settings.config.orphan_pairing_browser:
                # The placeholder has no close(): its browser runs on until autoClose.
                self._orphans.setdefault(name, []).append(client)
            else:
                self._end_attempt(client)
            self._notify()
            if not client.live:
                # The placeholder has no close(): the server throws after marking it null.
                return False
            client.live = False
            self.emit(
                client,
                "closesession",
                {"message": f"Session: {name} disconnected", "connected": False},
            )
            return True

    def begin_logout(self, name: str) -> Client | None:
        """Unlink and forget the entry; :meth:`finish_logout` runs 500 ms later. The
        browser runs on for ``logout_close_ms`` (:meth:`_close_logged_out`)."""
        with self.lock:
            client = self._clients.get(name)
            if client is None or not client.live:
                return None
            del self._clients[name]
            self._end_attempt(client)
            client.live = False
            client.status = "CLOSED"
            linger_ms = self.settings.config.logout_close_ms
            if linger_ms > 0:
                self._closing.setdefault(name, []).append(client)
                self.scheduler.call_later(linger_ms / 1000, lambda: self._close_logged_out(client))
            self._notify()
            return client

    def _close_logged_out(self, client: Client) -> None:
        """The logged-out client notices it is no longer registered: its statusFind handler
        posts disconnectedMobile and sets ``clientsArray[session] = undefined``, wiping
        whatever entry the session has now (a start made meanwhile included, whose held
        reply then never comes), and its browser closes."""
        with self.lock:
            closing = self._closing.get(client.name, [])
            if client not in closing:
                return  # the simulator was reset meanwhile
            closing.remove(client)
            if not closing:
                self._closing.pop(client.name, None)
            wiped = self._clients.pop(client.name, None)
            if wiped is not None:
                self._hung.extend(wiped.waiters)
                wiped.waiters.clear()
                self._end_attempt(wiped)
            self._notify()
            self._status_find(client, "disconnectedMobile")
            self._status_find(client, "browserClose")

    def finish_logout(self, client: Client) -> None:
        with self.lock:
            self.store.delete_login(client.name)
            if not self.settings.config.tokens_survive_logout:
                self.store.delete_token(client.name)
            self.emit(
                client,
                "logoutsession",
                {"message": f"Session: {client.name} logged out", "connected": False},
            )

    def clear_session_data(self, name: str) -> None:
        """``clear-session-data``: the route has no verifyToken, so ``req.client`` is
        undefined and the running client (and its browser) is left alone; the profile is
        deleted, and the token file only where the server builds its path right."""
        with self.lock:
            self.store.delete_login(name)
            if not self.settings.config.tokens_survive_logout:
                self.store.delete_token(name)

    def describe(self, name: str) -> dict[str, Any]:
        with self.lock:
            client = self._clients.get(name)
            state: dict[str, Any] = client.describe() if client else {"exists": False}
            state["name"] = name
            state["start_calls"] = self._start_calls.get(name, 0)
            state["starts"] = self._starts.get(name, 0)
            state["stored"] = name in self.store.list_sessions()
            state["storedConfig"] = self.store.load_config(name)
            state["savedLogin"] = self.store.load_login(name)
            state["orphans"] = [c.describe() for c in self._orphans.get(name, [])]
            state["closing"] = len(self._closing.get(name, []))
            state["browsers"] = self.browsers(name)
            return state

    def browsers(self, name: str) -> int:
        """The session's running browsers: its entry's (unless it never launched or has
        closed), orphaned pairing ones and logged-out ones still closing."""
        with self.lock:
            client = self._clients.get(name)
            own = (
                client is not None
                and not client.launch_failed
                and client.status in ("INITIALIZING", "QRCODE", "PHONECODE", "CONNECTED")
            )
            return int(own) + len(self._orphans.get(name, [])) + len(self._closing.get(name, []))

    def reset(self) -> None:
        with self.lock:
            for client in self._clients.values():
                self._end_attempt(client)
            for orphans in self._orphans.values():
                for client in orphans:
                    self._end_attempt(client)
            self._orphans.clear()
            self._closing.clear()
            for waiter in self._hung:
                waiter.resolve(None)
            self._hung.clear()
            self._clients.clear()
            self._start_calls.clear()
            self._starts.clear()
            self._notify()
