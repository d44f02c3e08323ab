"""A realistic mix of the host's webhook events, as qr-webhook receives them."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

from bench import events

# Share of each event in the mix. Over a linked number's life the host sends a handful of QR
# codes and status changes while pairing, then a stream of messages and delivery acks (each
# sent message gets two or three acks).
MIX = {"qrcode": 2, "status-find": 8, "onmessage": 45, "onack": 45}


class WebhookMix:
    """Events for real sessions: QR codes for pairing ones, status, inbound messages and
    acks of messages really sent for a connected one. The stock host proves itself with the
    session's signed URL; one event in four carries ``x-verify`` instead (a patched host)."""

    def __init__(
        self,
        secret: str,
        *,
        pairing: list[str],
        connected: str,
        account_phone: str,
        sent: list[tuple[str, str, str]],  # (wpp message id, recipient digits, text)
        seed: int = 7,
    ) -> None:
        self.secret = secret
        self.pairing = itertools.cycle(pairing)
        self.connected = connected
        self.account_phone = account_phone
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.senders = [f"55119{self.rng.randrange(10**7, 10**8)}" for _ in range(40)]
        # Acks arrive as delivered then read; replays of both come round again later.
        self.acks: Iterator[tuple[int, tuple[str, str, str]]] = itertools.cycle(
            [(2, s) for s in sent] + [(3, s) for s in sent]
        )
        self.count = 0

    def body(self, kind: str) -> dict[str, Any]:
        self.count += 1
        if kind == "qrcode":
            return events.qrcode_body(next(self.pairing))
        if kind == "status-find":
            return events.status_find_body(self.connected, "inChat")
        if kind == "onmessage":
            sender = self.rng.choice(self.senders)
            return events.onmessage_body(self.connected, self.account_phone, sender, self.count)
        if kind == "onack":
            ack, (wpp_id, to, text) = next(self.acks)
            return events.onack_body(self.connected, wpp_id, ack, self.account_phone, to, text)
        raise ValueError(kind)

    def event(self, kind: str) -> dict[str, Any]:
        body = self.body(kind)
        if self.count % 4 == 0:
            return events.webhook_by_header(self.secret, body)
        return events.webhook_by_url(self.secret, str(body["session"]), body)

    def sequence(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        kinds = self.rng.choices(list(MIX), weights=list(MIX.values()), k=n)
        return [(kind, self.event(kind)) for kind in kinds]
