"""A call that may queue a message is sent to the database again only when a repeat cannot
queue a second one: when the request carries an Idempotency-Key."""

from __future__ import annotations

from typing import Any

import pytest

from wa_gateway.send_records import OutboundRequest, SendOptions
from wa_gateway.store import Store
from wa_gateway.store.transport import Call, Transport


class RecordingTransport(Transport):
    round_trips = 0

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def send(self, call: Call) -> Any:
        self.calls.append((call.function, call.repeatable))
        return {"outcome": "not_connected"}


def outbound(key: str | None) -> OutboundRequest:
    return OutboundRequest("u1", "u1name", "5511987654321", "oi", None, key, "hash")


@pytest.mark.parametrize("key", [None, "k-1"])
def test_a_send_is_repeatable_only_with_an_idempotency_key(key: str | None) -> None:
    transport = RecordingTransport()
    store = Store(transport)

    store.begin_send(outbound(key))
    store.prepare_send(outbound(key), SendOptions("hello", {"name": "Ana"}, None, 4096, 1000))

    assert transport.calls == [
        ("gateway_begin_send", key is not None),
        ("gateway_prepare_send", key is not None),
    ]
