"""The local stand-in for the PostgREST read the demo page makes (``local/dev_rest.py``):
answered like PostgREST, as the signed-in user, so RLS decides what comes back, for the
queries supabase-js builds (select, filters, order, limit), views included."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user, sent_text

QUERY = "select=id,direction,phone,body,status,created_at&order=created_at.desc&limit=50"


def read(gateway: Gateway, token: str | None, query: str = QUERY) -> requests.Response:
    headers = {"apikey": "local"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return requests.get(
        f"{gateway.url}/rest/v1/whatsapp_messages?{query}", headers=headers, timeout=10
    )


def test_a_user_reads_their_own_messages_and_nobody_elses(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "reader")
    for text in ("first", "second"):
        sent_text(gateway, token, "5511999990003", text)

    answer = read(gateway, token)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    assert [r["body"] for r in rows] == ["second", "first"]
    assert set(rows[0]) == {"id", "direction", "phone", "body", "status", "created_at"}
    assert rows[0]["direction"] == "outbound" and rows[0]["phone"] == "5511999990003"

    first = read(gateway, token, f"select=id,body&id=eq.{rows[1]['id']}").json()
    assert first == [{"id": rows[1]["id"], "body": "first"}]
    both = read(gateway, token, "select=body&direction=eq.outbound&order=created_at.asc&limit=1")
    assert both.json() == [{"body": "first"}]
    assert read(gateway, token, "select=id&direction=eq.inbound").json() == []

    stranger = gateway.token_for(gateway.new_user("stranger"))
    assert read(gateway, stranger).json() == []
    assert read(gateway, stranger, f"select=id&id=eq.{rows[0]['id']}").json() == []


def test_refusals_look_like_postgrest(gateway: Gateway) -> None:
    assert read(gateway, None).status_code == 401
    assert read(gateway, "not.a.jwt").status_code == 401
    token = gateway.token_for(gateway.new_user("refused"))
    expired = gateway.token_for(gateway.new_user("late"), lifetime_s=-120)
    answer = read(gateway, expired)
    assert answer.status_code == 401 and answer.json()["code"] == "PGRST303"
    for query in (
        "select=id&order=created_at.up",
        "limit=x",
        "select=id&phone=cs.1",
        "select=id&id=eq.not-a-uuid",
    ):
        answer = read(gateway, token, query)
        assert answer.status_code == 400, query
        assert set(answer.json()) == {"code", "details", "hint", "message"}
    # What a user may read is the database's decision (column grants), not a list of the
    # stack's own: a private column, named or behind *, is refused as PostgREST refuses it.
    for query in ("select=request_hash", "select=*", "select=id&request_hash=eq.1"):
        answer = read(gateway, token, query)
        assert (answer.status_code, answer.json()["code"]) == (403, "42501"), query
    secrets = requests.get(
        f"{gateway.url}/rest/v1/whatsapp_session_secrets?select=host_token",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert (secrets.status_code, secrets.json()["code"]) == (403, "42501")
    unknown = requests.get(
        f"{gateway.url}/rest/v1/no_such_table",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert unknown.status_code == 404


def test_the_report_views_are_read_like_tables_as_their_reader(
    gateway: Gateway, simulator: Simulator
) -> None:
    _, token, _ = connected_user(gateway, simulator, "reporter")
    sent = sent_text(gateway, token, "5511999990004", "counted")
    today = sent.json()["message"]["created_at"][:10]

    def view(name: str, query: str, who: str = token) -> requests.Response:
        return requests.get(
            f"{gateway.url}/rest/v1/{name}?{query}",
            headers={"authorization": f"Bearer {who}"},
            timeout=10,
        )

    daily = view("whatsapp_report_daily", f"select=day,direction,messages&day=gte.{today}")
    assert daily.status_code == 200, daily.text
    assert daily.json() == [{"day": today, "direction": "outbound", "messages": 1}]
    assert view("whatsapp_report_daily", f"select=day&day=gt.{today}").json() == []
    delivery = view("whatsapp_report_delivery", "select=sent,delivery_rate")
    assert delivery.status_code == 200 and delivery.json()[0]["sent"] == 1
    stranger = gateway.token_for(gateway.new_user("nosy"))
    assert view("whatsapp_report_daily", "select=messages", stranger).json() == []
