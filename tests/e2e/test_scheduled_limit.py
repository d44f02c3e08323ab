"""A limit on the messages one user may have scheduled at once, whichever account
(``MAX_SCHEDULED_PER_USER``): one more is 422 scheduled_limit, with nothing stored; a message
sent, cancelled or failed frees its place; a retry of one already scheduled is not refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from tests.conftest import Gateway, GatewayWith
from tests.e2e.flows import assert_error

LIMIT = 3
SEND_AT = (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.fixture(scope="module")
def limited(gateway_with: GatewayWith) -> Iterator[Gateway]:
    with gateway_with("scheduled-limit", MAX_SCHEDULED_PER_USER=str(LIMIT)) as started:
        yield started


def schedule(
    gateway: Gateway, token: str, text: str, account: str = "default", key: str | None = None
) -> requests.Response:
    body = {
        "phone": "5511987650050",
        "message": text,
        "account": account,
        "send_at": SEND_AT,
    }
    headers = {"Idempotency-Key": key} if key else {}
    return gateway.call("POST", "send-message", token, json=body, headers=headers)


def scheduled_rows(database: str, user_id: str) -> int:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select count(*) from whatsapp_messages where user_id = %s", (user_id,)
        ).fetchone()
    return int(found[0]) if found else 0


def test_one_more_scheduled_message_than_the_limit_is_422_and_stores_nothing(
    limited: Gateway, database: str
) -> None:
    user = limited.new_user("limited")
    token = limited.token_for(user)
    for account in ("default", "work"):  # the accounts exist; connected or not does not matter
        assert limited.call("POST", "start-session", token, json={"account": account}).ok
    answers = [
        schedule(limited, token, "one", key="k1"),
        schedule(limited, token, "two"),
        schedule(limited, token, "three", account="work"),
    ]
    assert [a.status_code for a in answers] == [202, 202, 202]

    refused = schedule(limited, token, "four", account="work")
    assert_error(refused, 422, "scheduled_limit")
    assert f"{LIMIT} messages scheduled" in refused.json()["error"]["message"]
    assert scheduled_rows(database, user.id) == LIMIT
    # A retry of one already scheduled answers it, as ever.
    again = schedule(limited, token, "one", key="k1")
    assert again.status_code == 202 and again.json() == answers[0].json()

    cancel = limited.call(
        "POST",
        "send-message",
        token,
        path="/cancel",
        json={"id": answers[1].json()["message"]["id"]},
    )
    assert cancel.status_code == 200
    assert schedule(limited, token, "four", account="work").status_code == 202
    assert scheduled_rows(database, user.id) == LIMIT + 1  # the cancelled one stays, cancelled
