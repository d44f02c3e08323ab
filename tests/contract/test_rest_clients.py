"""PostgREST's stand-in (``local/dev_rest.py``) as supabase-js and supabase-py use it: the
operators an app on these tables uses, ``.single()``, counts, writes, embeds and RPC, each
answered as PostgREST answers (body, status, error ``code``), as the signed-in user."""

from __future__ import annotations

from typing import Any

import pytest
from postgrest.exceptions import APIError
from supabase import Client

from local import devdb
from tests.conftest import Gateway, Simulator
from tests.contract.conftest import cancelled_while_locked, run_js
from tests.e2e.flows import connected_user, sent_text


def names(answer: dict[str, Any]) -> list[str]:
    assert answer["error"] is None, answer
    return [row["name"] for row in answer["data"]]


def test_supabase_js_reads_and_writes_templates_as_postgrest_answers(
    gateway: Gateway, user: devdb.DevUser
) -> None:
    out = run_js(gateway, "templates", email=user.email, password="password")

    assert out["insert"]["status"] == 201 and len(out["insert"]["data"]) == 3
    assert names(out["in"]) == ["alpha", "gamma"]
    assert names(out["ilike"]) == ["alpha", "beta"]
    assert names(out["or"]) == ["gamma", "alpha"]
    assert names(out["is"]) == []
    assert names(out["isNot"]) == ["alpha", "beta", "gamma"]
    assert names(out["not"]) == ["gamma"]
    assert names(out["orders"]) == ["beta", "gamma", "alpha"]
    assert names(out["range"]) == ["beta", "gamma"]
    # A count with a range: PostgREST's Content-Range total, and 206 for part of the rows.
    assert (names(out["count"]), out["count"]["count"], out["count"]["status"]) == (
        ["alpha"],
        3,
        206,
    )
    assert (out["head"]["data"], out["head"]["count"], out["head"]["status"]) == (None, 2, 200)
    # .single(): one object, or 406 PGRST116 naming how many rows there were.
    assert out["single"]["data"] == {"name": "beta", "body": "Bye {{name}}"}
    for key, rows in (("singleNone", 0), ("singleMany", 3)):
        error = out[key]["error"]
        assert out[key]["status"] == 406 and error["code"] == "PGRST116", out[key]
        assert error["details"] == f"The result contains {rows} rows"
    assert (out["maybeNone"]["data"], out["maybeNone"]["error"]) == (None, None)
    assert out["update"]["data"] == {"name": "beta", "body": "Bye now {{name}}"}
    assert out["upsert"]["data"] == [{"name": "gamma", "body": "Hello again"}]
    assert (out["delete"]["status"], out["delete"]["count"]) == (204, 2)
    assert out["left"]["data"] == [{"name": "gamma", "body": "Hello again"}]
    # Refusals come back with PostgREST's codes.
    assert (out["unknownColumn"]["status"], out["unknownColumn"]["error"]["code"]) == (
        400,
        "42703",
    )
    assert (out["unknownTable"]["status"], out["unknownTable"]["error"]["code"]) == (
        404,
        "PGRST205",
    )
    # A view that cannot take rows: the database's own error, not "unavailable".
    assert (out["intoView"]["status"], out["intoView"]["error"]["code"]) == (500, "55000")


def test_supabase_js_embeds_the_users_rows_and_calls_the_one_function_users_may(
    gateway: Gateway, simulator: Simulator
) -> None:
    user, token, session = connected_user(gateway, simulator, "embeds")
    sent_text(gateway, token, "5511999990007", "embedded")

    out = run_js(gateway, "embedsAndRpc", email=user.email, password="password", session=session)

    assert out["toOne"]["error"] is None, out["toOne"]
    assert out["toOne"]["data"] == [
        {
            "body": "embedded",
            "direction": "outbound",
            "whatsapp_sessions": {"session_id": session, "status": "connected"},
        }
    ]
    assert out["toMany"]["data"] == [
        {"session_id": session, "whatsapp_messages": [{"body": "embedded"}]}
    ]
    assert out["rpc"]["error"] is None and out["rpc"]["data"]["session_id"] == session
    assert out["rpc"]["data"]["user_id"] == user.id
    assert (out["rpcOther"]["status"], out["rpcOther"]["data"]) == (200, None)
    assert (out["rpcRevoked"]["status"], out["rpcRevoked"]["error"]["code"]) == (403, "42501")
    for key in ("rpcUnknown", "rpcWrongArgs"):
        assert (out[key]["status"], out[key]["error"]["code"]) == (404, "PGRST202"), out[key]


def test_supabase_py_selects_counts_and_writes_templates(signed_in: Client) -> None:
    table = signed_in.table("whatsapp_templates")
    added = table.insert(
        [{"name": "one", "body": "One {{name}}"}, {"name": "two", "body": "Two"}]
    ).execute()
    assert [row["name"] for row in added.data] == ["one", "two"]

    counted = table.select("name", count="exact").ilike("name", "t%").execute()
    assert (counted.data, counted.count) == ([{"name": "two"}], 1)
    single = table.select("body").eq("name", "one").single().execute()
    assert single.data == {"body": "One {{name}}"}
    with pytest.raises(APIError) as none:
        table.select("body").eq("name", "three").single().execute()
    assert none.value.code == "PGRST116"
    assert table.select("body").eq("name", "three").maybe_single().execute() is None
    changed = table.update({"body": "Two {{name}}"}).eq("name", "two").execute()
    assert changed.data == [{**changed.data[0], "name": "two", "body": "Two {{name}}"}]
    removed = table.delete().in_("name", ["one", "two"]).execute()
    assert sorted(row["name"] for row in removed.data) == ["one", "two"]
    assert table.select("name").execute().data == []


def test_a_cancelled_statement_is_the_databases_error_not_an_outage(
    gateway: Gateway, signed_in: Client, database: str
) -> None:
    """57014 (a statement cancelled, as a timeout cancels it) is answered as PostgREST answers
    it, 500 with the code, not as the database being unreachable."""
    error = cancelled_while_locked(
        database,
        "public.whatsapp_templates",
        lambda: signed_in.table("whatsapp_templates").select("name").execute(),
    )

    assert isinstance(error, APIError), error
    assert error.code == "57014"
