"""send-message's template, variables and send_at, and the cancel request, as parsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wa_gateway.errors import InvalidRequest
from wa_gateway.message_requests import parse_cancel_request, parse_send_request

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_template_send_has_no_text_and_keeps_its_variables() -> None:
    request = parse_send_request(
        {"phone": "+55 11 98765-4321", "template": "welcome", "variables": {"name": "Ana"}},
        now=NOW,
    )

    assert (request.message, request.template, request.variables) == (
        "",
        "welcome",
        {"name": "Ana"},
    )


def test_send_at_is_kept_in_utc() -> None:
    request = parse_send_request(
        {"phone": "5511987654321", "message": "x", "send_at": "2026-11-30T10:00:00-03:00"},
        now=NOW,
    )

    assert request.send_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"template": "welcome", "message": "x"}, "'template'"),
        ({"message": "x", "variables": {"a": "b"}}, "'variables'"),
        ({"template": "Welcome!"}, "'template'"),
        ({"template": "t", "variables": ["a"]}, "'variables'"),
        ({"template": "t", "variables": {"Name": "a"}}, "'Name'"),
        ({"template": "t", "variables": {"name": 3}}, "'name'"),
        ({"message": "x", "send_at": (NOW + timedelta(seconds=59)).isoformat()}, "'send_at'"),
        (
            {"message": "x", "send_at": (NOW + timedelta(days=30, seconds=1)).isoformat()},
            "'send_at'",
        ),
        ({"message": "x", "send_at": "2026-12-01T10:00:00"}, "'send_at'"),
        ({"message": "x", "send_at": 1764500000}, "'send_at'"),
    ],
)
def test_a_bad_template_or_time_is_refused_naming_the_field(
    body: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_send_request({"phone": "5511987654321", **body}, now=NOW)

    assert named in refused.value.message


def test_one_minute_and_thirty_days_ahead_are_both_accepted() -> None:
    for ahead in (timedelta(minutes=1), timedelta(days=30)):
        body = {"phone": "5511987654321", "message": "x", "send_at": (NOW + ahead).isoformat()}
        assert parse_send_request(body, now=NOW).send_at == NOW + ahead


@pytest.mark.parametrize("body", [{}, {"id": "nope"}, {"id": 5}, {"id": None}, {"id": "x", "y": 1}])
def test_a_cancel_needs_a_message_id(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        parse_cancel_request(body)


def test_a_cancel_names_the_message() -> None:
    value = "6F1C0000-0000-4000-8000-000000000001"

    assert parse_cancel_request({"id": value}) == value.lower()
