"""The ``/_sim/`` test controls: what the phone, the network and the test harness do.

No authentication. Answers are JSON; a failed control answers ``{"error": "..."}`` with
400 (bad body), 404 (unknown session or message) or 409 (wrong state for that action).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from local.simulator.config import ConfigError, Settings
from local.simulator.host import HostLog
from local.simulator.messaging import Messenger, SentRecord
from local.simulator.protocol import Request, Response, cannot, json_response
from local.simulator.state import SessionManager
from local.simulator.webhooks import Webhooks

SCAN_WAIT_S = 5.0


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f'"{key}" must be a string')


@dataclass(eq=False)
class Controls:
    settings: Settings
    manager: SessionManager
    messenger: Messenger
    webhooks: Webhooks
    reset: Callable[[], None]
    host: HostLog
    _: KW_ONLY
    in_flight: Callable[[], int]

    def handle(self, req: Request) -> Response:
        segs = req.segments[1:]  # after "_sim"
        method = req.method
        try:
            if len(segs) == 1:
                return self._global(req, method, segs[0])
            if len(segs) == 2:
                return self._session(req, method, segs[0], segs[1])
        except ValueError as exc:
            return _error(400, str(exc))
        return cannot(method, req.path)

    # ----------------------------------------------------------------- global

    def _global(self, req: Request, method: str, what: str) -> Response:
        if what in ("config", "faults") and method in ("GET", "POST"):
            if method == "POST":
                try:
                    if what == "config":
                        self.settings.update_config(req.body)
                    else:
                        self.settings.update_faults(req.body)
                except ConfigError as exc:
                    return _error(400, str(exc))
            return json_response(200, dataclasses.asdict(getattr(self.settings, what)))
        if what == "in-flight" and method == "GET":
            return json_response(200, {"in_flight": self.in_flight()})
        if what == "host" and method == "GET":
            return json_response(200, self.host.describe())
        if what == "reset" and method == "POST":
            self.reset()
            return json_response(200, {"ok": True})
        if method == "GET":
            return json_response(200, self._describe(what))
        return cannot(method, req.path)

    def _describe(self, name: str) -> dict[str, Any]:
        state = self.manager.describe(name)
        state["outbox"] = len(self.messenger.outbox(name))
        state["seen"] = self.messenger.seen(name)
        return state

    # ----------------------------------------------------------------- per session

    def _session(self, req: Request, method: str, name: str, action: str) -> Response:
        body = req.body
        if method == "GET":
            views: dict[str, Callable[[str], list[dict[str, Any]]]] = {
                "outbox": self.messenger.outbox,
                "inbox": self.messenger.inbox,
                "seen": self.messenger.seen,
                "events": self.webhooks.events,
                "actions": self.messenger.kinds.actions,
            }
            view = views.get(action)
            if view is None:
                return cannot(method, req.path)
            return json_response(200, {"session": name, action: view(name)})
        if method != "POST":
            return cannot(method, req.path)
        if action == "scan":
            return self._scan(name, body)
        if action == "unlink":
            outcome = self.manager.unlink(name)
            if outcome is None:
                return _error(409, f"session {name} is not connected and has no saved login")
            return json_response(200, {"ok": True, "outcome": outcome})
        if action == "expire":
            if self.manager.expire(name) is None:
                return _error(409, f"session {name} is not waiting for a login")
            return json_response(200, {"ok": True, "status": "CLOSED"})
        if action == "refresh-qr":
            client = self.manager.refresh_qr(name)
            if client is None:
                return _error(409, f"session {name} is not waiting for a login")
            return json_response(
                200,
                {"ok": True, "urlcode": client.urlcode, "phoneCode": client.phone_code},
            )
        if action == "restore":
            start = body.get("start", True)
            if not isinstance(start, bool):
                raise ValueError('"start" must be true or false')
            started = self.manager.restore(name, _optional_str(body, "phone"), start=start)
            return json_response(200, {"ok": True, "started": started})
        if action == "incoming":
            message = self.messenger.incoming(name, body)
            if message is None:
                return _error(409, f"session {name} is not connected")
            if "change" in message:  # a reaction, an edit or a deletion
                return json_response(200, {"ok": True, **message})
            return json_response(200, {"ok": True, "id": message["id"], "message": message})
        if action == "from-phone":
            sent = self.messenger.from_phone(name, body)
            if sent is None:
                return _error(409, f"session {name} is not connected")
            return json_response(200, {"ok": True, "id": sent["id"], "message": sent})
        if action in ("group", "participants"):
            change = (
                self.messenger.put_group(name, body)
                if action == "group"
                else self.messenger.change_participants(name, body)
            )
            if change is None:
                return _error(409, f"session {name} is not connected")
            return json_response(200, {"ok": True, action: change})
        if action == "ack":
            return self._ack(name, body)
        return cannot(method, req.path)

    def _scan(self, name: str, body: dict[str, Any]) -> Response:
        phone = _optional_str(body, "phone")
        if phone is not None and not phone.split("@")[0].isdigit():
            raise ValueError('"phone" must be digits with country code')
        wid = self.manager.scan(name, phone)
        if wid is None:
            current = self.manager.client(name)
            status = current.status if current is not None else "absent"
            return _error(409, f"session {name} has no QR or pairing code to scan ({status})")
        if body.get("wait") is True:
            self.manager.wait_for_status(name, "CONNECTED", SCAN_WAIT_S)
        current = self.manager.client(name)
        return json_response(
            200,
            {
                "ok": True,
                "status": current.status if current is not None else None,
                "wid": wid,
            },
        )

    def _ack(self, name: str, body: dict[str, Any]) -> Response:
        message_id = body.get("id")
        level = body.get("ack")
        if not isinstance(message_id, str) or not message_id:
            raise ValueError('"id" is required')
        if not isinstance(level, int) or isinstance(level, bool) or not -7 <= level <= 5:
            raise ValueError('"ack" must be an integer from -7 to 5 (the library\'s AckType)')
        outcome = self.messenger.ack(name, message_id, level)
        if outcome == "not_connected":
            return _error(409, f"session {name} is not connected")
        if not isinstance(outcome, SentRecord):
            return _error(404, f"no message {message_id} in session {name}")
        return json_response(200, {"ok": True, "message": outcome.to_json()})
