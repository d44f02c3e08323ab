"""One Idempotency-Key on two accounts of one user at once, each request in a function
container of its own (two gateway processes, as two Lambda containers): a key is the user's,
whichever account, so the second is the contract's 409 idempotency_conflict, with nothing
half-written, never a 500 from the database's unique key.

Both requests are held at the same point (the messages table locked against writes, so each
has looked the key up and found nothing) and then let go together: the race, every time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import Gateway, GatewayWith, Simulator
from tests.e2e.flows import assert_error, wait_for_status
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def second_container(gateway: Gateway, gateway_with: GatewayWith) -> Iterator[Gateway]:
    """The same functions in a process of their own, taking the first one's access tokens."""
    with gateway_with("second", SUPABASE_JWT_ISSUER=gateway.env["SUPABASE_JWT_ISSUER"]) as started:
        yield started


def two_accounts(gateway: Gateway, simulator: Simulator) -> tuple[str, str, list[str]]:
    """A user whose default account and account 'work' are both linked: (user id, token,
    the two session names)."""
    user = gateway.new_user("twokeys")
    token = gateway.token_for(user)
    names = []
    for account in ("default", "work"):
        body = {"account": account}
        name = gateway.call("POST", "start-session", token, json=body).json()["session"]["name"]
        simulator.control("POST", f"{name}/scan")
        names.append(name)
    wait_for_status(gateway, token, "connected", within_s=10)
    wait_until(
        lambda: gateway.call("GET", "status", token, params={"account": "work"}).json(),
        lambda s: (s["session"] or {}).get("status") == "connected",
        10,
    )
    return user.id, token, names


def waiting_on_the_key(database: str) -> int:
    """Backends held on the messages table, or on a key's own lock."""
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select count(*) from pg_locks where not granted and (locktype = 'advisory'"
            " or relation = 'public.whatsapp_messages'::regclass)"
        ).fetchone()
    return int(found[0]) if found else 0


@pytest.mark.parametrize("scheduled", [True, False], ids=["scheduled", "now"])
def test_one_key_on_two_accounts_at_once_is_one_message_and_one_idempotency_conflict(
    gateway: Gateway,
    second_container: Gateway,
    simulator: Simulator,
    database: str,
    scheduled: bool,
) -> None:
    user_id, token, names = two_accounts(gateway, simulator)
    key = f"both-accounts-{scheduled}"
    body: dict[str, Any] = {"phone": "5511987650040", "message": "once"}
    if scheduled:
        body["send_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answers: dict[str, requests.Response] = {}

    def send(container: Gateway, account: str) -> None:
        answers[account] = container.call(
            "POST",
            "send-message",
            token,
            json={**body, "account": account},
            headers={"Idempotency-Key": key},
        )

    for container in (gateway, second_container):  # each warm, so both arrive at once
        assert container.call("POST", "send-message", token, json={}).status_code == 400
    requests_in_flight = [
        threading.Thread(target=send, args=(gateway, "default")),
        threading.Thread(target=send, args=(second_container, "work")),
    ]
    with psycopg.connect(database) as locker:
        locker.execute("lock table public.whatsapp_messages in share mode")
        for thread in requests_in_flight:
            thread.start()
        wait_until(lambda: waiting_on_the_key(database), lambda n: n >= 2, 4)
        locker.commit()
    for thread in requests_in_flight:
        thread.join(30)

    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [202 if scheduled else 200, 409], [a.text for a in answers.values()]
    [refused] = [a for a in answers.values() if a.status_code == 409]
    assert_error(refused, 409, "idempotency_conflict")
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s and idempotency_key = %s",
            (user_id, key),
        ).fetchone()
    assert rows == (1,)
    sent = [m["body"] for name in names for m in simulator.outbox(name)]
    assert sent == ([] if scheduled else ["once"])
