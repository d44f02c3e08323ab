"""The load: what many users and a busy host do at once, each loop bounded in time and count,
and a ledger of what was accepted, to check afterwards that none of it was lost or doubled."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests

from soak.stack import Stack, User
from wa_gateway.sessions.accounts import session_name_for

MAX_OPS_PER_WORKER = 200_000  # a bound far above what a run reaches; the deadline ends it
CONTACTS = [f"55119{n:08d}" for n in range(20)]
TO = [f"55219{n:08d}" for n in range(20)]


@dataclass
class Stat:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class Accepted:
    user: User
    key: str
    text: str
    message_id: str
    wpp_message_id: str | None


class Recorder:
    """Latencies and outcomes per operation, and the ledger of accepted work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stats: dict[str, Stat] = defaultdict(Stat)
        self.sends: dict[str, Accepted] = {}
        self.refused_sends: dict[str, tuple[User, str]] = {}
        self.scheduled: dict[str, Accepted] = {}  # accepted with a send_at (202)
        self.incoming: dict[str, list[str]] = defaultdict(list)
        self.anomalies: list[str] = []

    def timed(self, op: str, call: Callable[[], requests.Response]) -> requests.Response | None:
        started = time.perf_counter()
        try:
            answer = call()
        except requests.RequestException as exc:
            self.note(op, (time.perf_counter() - started) * 1000, f"exception {type(exc).__name__}")
            return None
        outcome = str(answer.status_code)
        if answer.status_code >= 300:
            try:
                outcome += " " + answer.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                outcome += " (not the contract's error shape)"
        self.note(op, (time.perf_counter() - started) * 1000, outcome)
        return answer

    def note(self, op: str, latency_ms: float, outcome: str) -> None:
        with self._lock:
            stat = self.stats[op]
            stat.latencies_ms.append(latency_ms)
            stat.statuses[outcome] += 1

    def anomaly(self, text: str) -> None:
        with self._lock:
            if len(self.anomalies) < 100:
                self.anomalies.append(text)


class Load:
    def __init__(self, stack: Stack, users: list[User], recorder: Recorder, deadline: float):
        self.stack = stack
        self.users = users
        self.rec = recorder
        self.deadline = deadline
        self.busy: set[str] = set()  # users in the middle of a disconnect and re-link
        self._busy_lock = threading.Lock()

    def running(self, done: int) -> bool:
        return time.monotonic() < self.deadline and done < MAX_OPS_PER_WORKER

    def available(self, user: User) -> bool:
        with self._busy_lock:
            return user.id not in self.busy

    def current(self, user: User) -> User:
        """The user as last linked (a re-link keeps the session name)."""
        return next(u for u in self.users if u.id == user.id)

    # --- the browser side ------------------------------------------------------------------

    def sender(self, mine: list[User]) -> None:
        http = requests.Session()
        done = 0
        last: dict[str, tuple[str, dict[str, Any], str]] = {}
        while self.running(done):
            user = mine[done % len(mine)]
            done += 1
            if not self.available(user):
                continue
            headers = {"authorization": f"Bearer {user.token}"}
            status_url = f"{self.stack.gateway_url}/status/"
            if done % 4 == 0:
                self.rec.timed("status", partial(http.get, status_url, headers=headers, timeout=30))
                continue
            if done % 7 == 0 and user.id in last:  # the browser retries with the same key
                key, body, message_id = last[user.id]
                replay = self.rec.timed("send (replay)", self._send(http, user, body, key))
                answered = replay.json()["message"]["id"] if replay and replay.ok else message_id
                if answered != message_id:
                    self.rec.anomaly(f"replay of {key} answered another message")
                continue
            key = uuid.uuid4().hex
            text = f"soak {key}"
            body = {"phone": secrets.choice(TO), "message": text}
            answer = self.rec.timed("send-message", self._send(http, user, body, key))
            if answer is not None and answer.status_code == 200:
                message = answer.json()["message"]
                with self.rec._lock:
                    self.rec.sends[key] = Accepted(
                        user, key, text, message["id"], message["wpp_message_id"]
                    )
                last[user.id] = (key, body, message["id"])
            else:
                with self.rec._lock:
                    self.rec.refused_sends[key] = (user, text)

    def _send(
        self, http: requests.Session, user: User, body: dict[str, Any], key: str
    ) -> Callable[[], requests.Response]:
        """A send-message of ``body`` by ``user`` with the Idempotency-Key ``key``, to time."""
        headers = {"authorization": f"Bearer {user.token}", "Idempotency-Key": key}
        url = f"{self.stack.gateway_url}/send-message/"
        return partial(http.post, url, json=body, headers=headers, timeout=30)

    def churn(self, mine: list[User]) -> None:
        """A few users log out and link again, over and over."""
        http = requests.Session()
        done = 0
        while self.running(done) and time.monotonic() < self.deadline - 5:
            user = self.current(mine[done % len(mine)])
            done += 1
            with self._busy_lock:
                self.busy.add(user.id)
            try:
                headers = {"authorization": f"Bearer {user.token}"}
                url = f"{self.stack.gateway_url}/disconnect/"
                self.rec.timed("disconnect", partial(http.post, url, headers=headers, timeout=30))
                time.sleep(0.2)
                started = time.perf_counter()
                try:
                    self.stack.link(user, http)
                    self.rec.note("re-link", (time.perf_counter() - started) * 1000, "200")
                except (RuntimeError, requests.RequestException) as exc:
                    self.rec.note("re-link", (time.perf_counter() - started) * 1000, "failed")
                    self.rec.anomaly(f"re-link of {user.session} failed: {exc}")
            finally:
                with self._busy_lock:
                    self.busy.discard(user.id)
            time.sleep(0.5)

    # --- the host side ---------------------------------------------------------------------

    def receiver(self, per_second: float) -> None:
        """Messages arrive for random linked users; the host delivers them by webhook."""
        http = requests.Session()
        done = 0
        pause = 1.0 / per_second if per_second > 0 else 1.0
        while self.running(done):
            done += 1
            user = self.current(secrets.choice(self.users))
            if not self.available(user):
                continue
            body = {"from": secrets.choice(CONTACTS), "body": f"in {uuid.uuid4().hex}"}
            url = f"{self.stack.sim_url}/_sim/{user.session}/incoming"
            answer = self.rec.timed(
                "incoming (at the host)", partial(http.post, url, json=body, timeout=30)
            )
            if answer is not None and answer.status_code == 200:
                with self.rec._lock:
                    self.rec.incoming[user.session].append(answer.json()["id"])
            time.sleep(pause)

    def storm(self) -> None:
        """Webhooks nobody asked for: real events again, unknown ones, unproven ones."""
        http = requests.Session()
        url = f"{self.stack.gateway_url}/qr-webhook/"
        proof = {"x-verify": self.stack.secrets.verify_token}
        seen: list[dict[str, Any]] = []
        done = 0
        while self.running(done):
            done += 1
            user = self.current(secrets.choice(self.users))
            kind = done % 4
            if kind == 0 or not seen:
                if done % 40 == 1 or not seen:
                    events = self.stack.sim("GET", f"{user.session}/events")["events"]
                    seen = [e["body"] for e in events if e["sent"]][-200:]
                if not seen:
                    continue
                body, headers, op = secrets.choice(seen), proof, "webhook storm: a replay"
            elif kind == 1:
                n = secrets.randbelow(5)
                body = {"event": f"soak-unknown-{n}", "session": user.session, "n": n}
                headers, op = proof, "webhook storm: unknown event"
            elif kind == 2:
                body = {
                    "event": "onmessage",
                    "session": session_name_for(str(uuid.uuid4())),
                    "body": "x",
                }
                headers, op = proof, "webhook storm: unknown session"
            else:
                body = {"event": "logoutsession", "session": user.session}
                headers, op = {"x-verify": "not-the-secret"}, "webhook storm: unproven"
            answer = self.rec.timed(
                op, partial(http.post, url, json=body, headers=headers, timeout=30)
            )
            expected = 401 if kind == 3 else 200
            if answer is not None and answer.status_code != expected:
                self.rec.anomaly(f"{op} answered {answer.status_code}: {answer.text[:200]}")
