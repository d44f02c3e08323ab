"""Templates and scheduled messages end to end: send-message renders the caller's own template,
schedules a message, cancels it, and the scheduler sends it at its time, through the gateway,
the simulator and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from local import devdb
from local.function_url import LambdaContext
from tests.conftest import Gateway, GatewayWith, Handler, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.waiting import wait_until

TO = "5511987654321"


def add_template(database: str, user_id: str, name: str, body: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_templates (user_id, name, body) values (%s, %s, %s)",
            (user_id, name, body),
        )


def send(
    gateway: Gateway, token: str, body: dict[str, Any], key: str | None = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return gateway.call("POST", "send-message", token, json=body, headers=headers)


def user_with_template(
    gateway: Gateway,
    simulator: Simulator,
    database: str,
    name: str,
    body: str,
    label: str = "linked",
) -> tuple[devdb.DevUser, str, str]:
    """A linked user (as ``connected_user``) who has the template ``name``."""
    user, token, session = connected_user(gateway, simulator, label)
    add_template(database, user.id, name, body)
    return user, token, session


def send_template(
    gateway: Gateway, token: str, name: str, variables: dict[str, str], **fields: str
) -> requests.Response:
    """Send the template ``name`` to ``TO`` (unless ``fields`` name another phone)."""
    body = {"phone": TO, "template": name, "variables": variables, **fields}
    return send(gateway, token, body)


def row(database: str, message_id: str, columns: str) -> tuple[Any, ...]:
    with psycopg.connect(database) as conn:
        found = conn.execute(
            f"select {columns} from whatsapp_messages where id = %s", (message_id,)
        ).fetchone()
    assert found is not None
    return found


def in_two_minutes() -> str:
    return (datetime.now(UTC) + timedelta(minutes=2)).isoformat()


def make_due(database: str, message_id: str, ago: timedelta = timedelta(seconds=1)) -> None:
    """The test's stand-in for waiting: the message's time moved into the past."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_messages set send_at = now() - %s where id = %s", (ago, message_id)
        )


def scheduler_pass(handlers: dict[str, Handler]) -> dict[str, Any]:
    context = LambdaContext("scheduler", str(uuid.uuid4()), timeout_ms=60_000)
    return handlers["scheduler"]({"source": "schedule", "job": "scheduler"}, context)


# --- templates -------------------------------------------------------------------------------


def test_a_template_is_rendered_stored_and_sent_with_its_name(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, session = user_with_template(
        gateway, simulator, database, "welcome", "Olá {{name}}, seu pedido {{order}} saiu!"
    )

    answer = send_template(gateway, token, "welcome", {"name": "Ana", "order": "#12"})

    assert answer.status_code == 200, answer.text
    message = answer.json()["message"]
    assert message["template"] == "welcome" and message["status"] in ("sent", "delivered", "read")
    assert row(database, message["id"], "body, template_name") == (
        "Olá Ana, seu pedido #12 saiu!",
        "welcome",
    )
    assert [m["body"] for m in simulator.outbox(session)] == ["Olá Ana, seu pedido #12 saiu!"]


def test_a_value_that_looks_like_a_placeholder_is_sent_as_it_is(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, token, session = user_with_template(gateway, simulator, database, "pair", "{{a}} and {{b}}")

    answer = send_template(gateway, token, "pair", {"a": "{{b}}", "b": "x"})

    assert answer.status_code == 200, answer.text
    assert [m["body"] for m in simulator.outbox(session)] == ["{{b}} and x"]


def test_another_users_template_of_the_same_name_is_never_used(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    alice, alice_token, alice_session = connected_user(gateway, simulator, "alice")
    bob, _, bob_session = connected_user(gateway, simulator, "bob")
    add_template(database, bob.id, "promo", "Bob's offer for {{name}}")

    refused = send_template(gateway, alice_token, "promo", {"name": "Ana"})
    add_template(database, alice.id, "promo", "Alice says hi to {{name}}")
    sent = send_template(gateway, alice_token, "promo", {"name": "Ana"})

    assert_error(refused, 422, "unknown_template")
    assert "promo" in refused.json()["error"]["message"]
    assert sent.status_code == 200, sent.text
    assert [m["body"] for m in simulator.outbox(alice_session)] == ["Alice says hi to Ana"]
    assert simulator.outbox(bob_session) == []


@pytest.mark.parametrize(
    ("fields", "status", "code", "named"),
    [
        ({"variables": {"name": "A"}}, 422, "template_variable_missing", "'order'"),
        (
            {"variables": {"name": "A", "order": "1", "surname": "B"}},
            400,
            "invalid_request",
            "'surname'",
        ),
        ({"message": "x"}, 400, "invalid_request", "'template'"),
    ],
    ids=["missing-variable", "variable-the-template-does-not-have", "message-too"],
)
def test_a_send_that_does_not_fit_its_template_is_refused_by_name_and_nothing_is_sent(
    gateway: Gateway,
    simulator: Simulator,
    database: str,
    fields: dict[str, Any],
    status: int,
    code: str,
    named: str,
) -> None:
    _, token, session = user_with_template(
        gateway, simulator, database, "order", "Hi {{name}}, order {{order}}"
    )

    answer = send(gateway, token, {"phone": TO, "template": "order", **fields})

    assert_error(answer, status, code)
    assert named in answer.json()["error"]["message"]
    assert simulator.outbox(session) == []


def test_a_retry_after_the_template_changed_answers_the_first_result(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, session = user_with_template(
        gateway, simulator, database, "greet", "Hello {{name}}"
    )
    body = {"phone": TO, "template": "greet", "variables": {"name": "Ana"}}

    first = send(gateway, token, body, key="greet-1")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "update whatsapp_templates set body = 'Bye {{name}}' where user_id = %s", (user.id,)
        )
    retry = send(gateway, token, body, key="greet-1")
    other = send(gateway, token, {**body, "variables": {"name": "Bia"}}, key="greet-1")

    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json()["message"]["id"] == first.json()["message"]["id"]
    assert_error(other, 409, "idempotency_conflict")
    assert [m["body"] for m in simulator.outbox(session)] == ["Hello Ana"]


# --- scheduled messages ----------------------------------------------------------------------


def test_a_scheduled_message_waits_then_the_scheduler_sends_it_once(
    gateway: Gateway, simulator: Simulator, database: str, handlers: dict[str, Handler]
) -> None:
    _, token, session = connected_user(gateway, simulator)
    send_at = in_two_minutes()

    answer = send(gateway, token, {"phone": TO, "message": "later", "send_at": send_at})
    message = answer.json()["message"]
    outbox_before = simulator.outbox(session)
    make_due(database, message["id"])
    first = scheduler_pass(handlers)
    second = scheduler_pass(handlers)

    assert answer.status_code == 202, answer.text
    assert message["status"] == "scheduled" and message["wpp_message_id"] is None
    assert message["send_at"] == datetime.fromisoformat(send_at).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert outbox_before == []
    assert first["sent"] >= 1 and second["sent"] == 0
    assert [m["body"] for m in simulator.outbox(session)] == ["later"]
    status, wpp_id = row(database, message["id"], "status, wpp_message_id")
    assert status in ("sent", "delivered", "read") and wpp_id is not None


def test_a_scheduled_message_can_be_cancelled_until_it_has_gone(
    gateway: Gateway, simulator: Simulator, database: str, handlers: dict[str, Handler]
) -> None:
    _, token, session = connected_user(gateway, simulator)
    _, stranger, _ = connected_user(gateway, simulator, "stranger")
    kept = send(gateway, token, {"phone": TO, "message": "keep", "send_at": in_two_minutes()})
    dropped = send(gateway, token, {"phone": TO, "message": "drop", "send_at": in_two_minutes()})
    kept_id, dropped_id = kept.json()["message"]["id"], dropped.json()["message"]["id"]

    by_stranger = gateway.call("POST", "send-message", stranger, "/cancel", json={"id": kept_id})
    cancelled = gateway.call("POST", "send-message", token, "/cancel", json={"id": dropped_id})
    again = gateway.call("POST", "send-message", token, "/cancel", json={"id": dropped_id})
    make_due(database, kept_id)
    make_due(database, dropped_id)
    scheduler_pass(handlers)
    too_late = gateway.call("POST", "send-message", token, "/cancel", json={"id": kept_id})

    assert_error(by_stranger, 404, "not_found")
    assert cancelled.status_code == again.status_code == 200, cancelled.text
    assert cancelled.json()["message"]["status"] == "cancelled"
    assert_error(too_late, 409, "not_scheduled")
    assert [m["body"] for m in simulator.outbox(session)] == ["keep"]
    assert row(database, dropped_id, "status") == ("cancelled",)


def test_a_scheduled_retry_with_its_key_answers_the_scheduled_message(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator)
    body = {"phone": TO, "message": "once", "send_at": in_two_minutes()}

    first = send(gateway, token, body, key="sched-1")
    retry = send(gateway, token, body, key="sched-1")
    now = send(gateway, token, {"phone": TO, "message": "once"}, key="sched-1")

    assert first.status_code == retry.status_code == 202
    assert retry.json()["message"]["id"] == first.json()["message"]["id"]
    assert_error(now, 409, "idempotency_conflict")


def test_a_message_for_a_disconnected_session_waits_out_the_grace_then_fails(
    gateway: Gateway, simulator: Simulator, database: str, handlers: dict[str, Handler]
) -> None:
    _, token, session = connected_user(gateway, simulator)
    waiting = send(gateway, token, {"phone": TO, "message": "w", "send_at": in_two_minutes()})
    late = send(gateway, token, {"phone": TO, "message": "l", "send_at": in_two_minutes()})
    waiting_id, late_id = waiting.json()["message"]["id"], late.json()["message"]["id"]
    assert gateway.call("POST", "disconnect", token).status_code == 200
    make_due(database, waiting_id, timedelta(minutes=5))
    make_due(database, late_id, timedelta(hours=2))

    report = scheduler_pass(handlers)

    assert report["failed"] >= 1
    assert row(database, waiting_id, "status, error_code") == ("scheduled", None)
    assert row(database, late_id, "status, error_code") == ("failed", "session_not_connected")
    assert simulator.outbox(session) == []


def test_send_at_must_carry_an_offset_and_be_one_minute_to_thirty_days_ahead(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator)
    now = datetime.now(UTC)

    for send_at in (
        (now + timedelta(seconds=30)).isoformat(),
        (now + timedelta(days=31)).isoformat(),
        (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat(),
        "tomorrow",
    ):
        answer = send(gateway, token, {"phone": TO, "message": "x", "send_at": send_at})
        assert_error(answer, 400, "invalid_request")
        assert "'send_at'" in answer.json()["error"]["message"]


def test_a_scheduled_template_is_rendered_when_scheduled(
    gateway: Gateway, simulator: Simulator, database: str, handlers: dict[str, Handler]
) -> None:
    _, token, session = user_with_template(
        gateway, simulator, database, "remind", "Reminder for {{name}}"
    )

    answer = send_template(gateway, token, "remind", {"name": "Caio"}, send_at=in_two_minutes())
    message_id = answer.json()["message"]["id"]
    make_due(database, message_id)
    scheduler_pass(handlers)

    assert answer.status_code == 202
    assert answer.json()["message"]["template"] == "remind"
    wait_until(lambda: simulator.outbox(session), message="the scheduled send")
    assert [m["body"] for m in simulator.outbox(session)] == ["Reminder for Caio"]


def test_the_local_gateway_runs_the_scheduler_when_asked_as_make_dev_does(
    simulator: Simulator, database: str, gateway_with: GatewayWith
) -> None:
    with gateway_with("scheduler", LOCAL_SCHEDULER_EVERY_S="0.2") as ticking:
        _, token, session = connected_user(ticking, simulator)
        answer = send(ticking, token, {"phone": TO, "message": "tick", "send_at": in_two_minutes()})
        make_due(database, answer.json()["message"]["id"])

        sent = wait_until(lambda: simulator.outbox(session), within_s=5, message="a pass")

    assert [m["body"] for m in sent] == ["tick"]


def test_a_contact_known_only_by_lid_gets_templates_and_scheduled_messages_at_the_lid(
    gateway: Gateway, simulator: Simulator, database: str, handlers: dict[str, Handler]
) -> None:
    _, token, session = user_with_template(
        gateway, simulator, database, "hello", "Olá {{name}}", "lidtemplate"
    )
    lid = "123456789012345"

    now = send_template(gateway, token, "hello", {"name": "Ana"}, phone=f"{lid}@lid")
    assert now.status_code == 200, now.text
    later = send(
        gateway, token, {"phone": f"{lid}@lid", "message": "oi", "send_at": in_two_minutes()}
    )
    assert later.status_code == 202, later.text
    assert row(database, later.json()["message"]["id"], "phone, contact_lid") == (None, lid)
    make_due(database, later.json()["message"]["id"])
    scheduler_pass(handlers)

    sent = [entry["to"] for entry in simulator.outbox(session)]
    assert sent == [f"{lid}@lid", f"{lid}@lid"]
