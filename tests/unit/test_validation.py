"""What callers send, checked."""

from __future__ import annotations

import pytest

from wa_gateway.errors import InvalidPhone, InvalidRequest
from wa_gateway.message_requests import parse_send_request
from wa_gateway.validation import (
    StartRequest,
    StatusRequest,
    normalize_phone,
    parse_start_request,
    parse_status_request,
)


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("5511999999999", "5511999999999"),
        ("+55 (11) 99999-9999", "5511999999999"),
        ("+1 415 555 0100", "14155550100"),
        ("49-30-1234567", "49301234567"),
    ],
)
def test_phone_numbers_are_normalised_to_digits(raw: str, digits: str) -> None:
    assert normalize_phone(raw) == digits


@pytest.mark.parametrize(
    "raw", ["1234567", "1234567890123456", "55 11 9999x9999", "", "++", "٥٥١١٩٩٩٩٩٩٩٩٩"]
)
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_a_phone_that_is_not_a_string_names_the_field() -> None:
    with pytest.raises(InvalidRequest, match="'phone'"):
        normalize_phone(5511999999999)


def test_start_defaults_to_qr() -> None:
    assert parse_start_request({}) == StartRequest("qr", None)


def test_start_by_code_needs_a_phone() -> None:
    with pytest.raises(InvalidRequest, match="'phone'"):
        parse_start_request({"method": "code"})
    assert parse_start_request({"method": "code", "phone": "+55 11 99999-9999"}) == StartRequest(
        "code", "5511999999999"
    )


@pytest.mark.parametrize("body", [{"method": "sms"}, {"method": None}, {"extra": 1}])
def test_start_refuses_what_it_does_not_know(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        parse_start_request(body)


@pytest.mark.parametrize(
    ("raw", "refresh"),
    [
        (None, False),
        ("", False),
        ("false", False),
        ("0", False),
        ("true", True),
        ("1", True),
        ("TRUE", True),
        ("False", False),
    ],
)
def test_status_refresh_is_a_flag(raw: str | None, refresh: bool) -> None:
    assert parse_status_request(raw, None) == StatusRequest(refresh, "default")


@pytest.mark.parametrize("raw", ["maybe", "yes", "2", " true"])
def test_status_refuses_another_refresh(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="'refresh'"):
        parse_status_request(raw, "work")


def test_status_names_a_bad_account() -> None:
    with pytest.raises(InvalidRequest, match="'account'"):
        parse_status_request("true", "Not An Account")


def test_a_lid_recipient_is_its_digits_at_lid() -> None:
    request = parse_send_request({"phone": " 123456789012345@LID ", "message": "oi"})
    assert (request.phone, request.lid) == ("123456789012345@lid", "123456789012345")
    assert parse_send_request({"phone": "5511987654321", "message": "oi"}).lid is None


def test_a_fifteen_digit_phone_is_refused_saying_why() -> None:
    with pytest.raises(InvalidPhone) as refused:
        parse_send_request({"phone": "+55 11 91234 567890", "message": "oi"})
    assert "14 digits" in refused.value.message and "LID" in refused.value.message
