"""The local stand-in for the PostgREST writes the demo page makes (``local/dev_rest.py``):
templates added, changed and deleted as the signed-in user, so the column grants, RLS and the
table's checks decide, answered as PostgREST answers (201 with the rows, 204, 403, 409, 400
with the database's code)."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import Gateway

REPRESENTATION = "return=representation"


def rest(
    gateway: Gateway,
    method: str,
    token: str | None,
    query: str = "",
    body: Any = None,
    prefer: str | None = None,
) -> requests.Response:
    headers = {"apikey": "local"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if prefer:
        headers["prefer"] = prefer
    return requests.request(
        method,
        f"{gateway.url}/rest/v1/whatsapp_templates?{query}",
        headers=headers,
        json=body,
        timeout=10,
    )


def names(gateway: Gateway, token: str) -> list[str]:
    answer = rest(gateway, "GET", token, "select=name&order=name.asc")
    assert answer.status_code == 200, answer.text
    return [row["name"] for row in answer.json()]


def test_a_user_adds_changes_and_deletes_their_own_templates(gateway: Gateway) -> None:
    user = gateway.new_user("writer")
    token = gateway.token_for(user)

    added = rest(
        gateway, "POST", token, "select=id,user_id,name,body,updated_at",
        {"name": "welcome", "body": "Hi {{name}}!"}, REPRESENTATION,
    )  # fmt: skip
    assert added.status_code == 201, added.text
    [row] = added.json()
    assert (row["user_id"], row["name"], row["body"]) == (user.id, "welcome", "Hi {{name}}!")

    quiet = rest(gateway, "POST", token, body={"name": "bye", "body": "Bye {{name}}"})
    assert (quiet.status_code, quiet.content) == (201, b"")
    assert names(gateway, token) == ["bye", "welcome"]

    changed = rest(
        gateway, "PATCH", token, f"id=eq.{row['id']}&select=body,updated_at",
        {"body": "Hello {{name}}!"}, REPRESENTATION,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    [after] = changed.json()
    assert after["body"] == "Hello {{name}}!" and after["updated_at"] > row["updated_at"]
    renamed = rest(gateway, "PATCH", token, f"id=eq.{row['id']}", {"name": "hello"})
    assert (renamed.status_code, renamed.content) == (204, b"")

    deleted = rest(gateway, "DELETE", token, "name=eq.bye")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert names(gateway, token) == ["hello"]
    gone = rest(gateway, "DELETE", token, f"id=eq.{row['id']}&select=name", prefer=REPRESENTATION)
    assert (gone.status_code, gone.json()) == (200, [{"name": "hello"}])
    assert names(gateway, token) == []


def test_another_users_template_is_out_of_their_reach(gateway: Gateway) -> None:
    owner = gateway.new_user("owner")
    owner_token = gateway.token_for(owner)
    added = rest(
        gateway, "POST", owner_token, "select=id", {"name": "mine", "body": "Mine"}, REPRESENTATION
    )
    assert added.status_code == 201, added.text
    template_id = added.json()[0]["id"]
    other = gateway.token_for(gateway.new_user("other"))

    # RLS hides the row: there is nothing to change or delete, which PostgREST answers as a
    # success that touched no row.
    patched = rest(gateway, "PATCH", other, f"id=eq.{template_id}", {"body": "Theirs"})
    assert (patched.status_code, patched.content) == (204, b"")
    patched = rest(
        gateway, "PATCH", other, f"id=eq.{template_id}", {"body": "Theirs"}, REPRESENTATION
    )
    assert (patched.status_code, patched.json()) == (200, [])
    deleted = rest(gateway, "DELETE", other, f"id=eq.{template_id}", prefer=REPRESENTATION)
    assert (deleted.status_code, deleted.json()) == (200, [])
    assert rest(gateway, "GET", other, f"id=eq.{template_id}").json() == []
    mine = rest(gateway, "GET", owner_token, f"select=body&id=eq.{template_id}").json()
    assert mine == [{"body": "Mine"}]

    # user_id is not a column users may write (it is always auth.uid()), whoever it names.
    planted = rest(gateway, "POST", other, body={"user_id": owner.id, "name": "x", "body": "x"})
    assert (planted.status_code, planted.json()["code"]) == (403, "42501")
    moved = rest(gateway, "PATCH", owner_token, f"id=eq.{template_id}", {"user_id": owner.id})
    assert (moved.status_code, moved.json()["code"]) == (403, "42501")


def test_the_databases_refusals_come_back_as_postgrest_answers_them(gateway: Gateway) -> None:
    token = gateway.token_for(gateway.new_user("checked"))
    assert rest(gateway, "POST", token, body={"name": "taken", "body": "x"}).status_code == 201

    refusals = {
        "whatsapp_templates_name_check": {"name": "Not A Name", "body": "x"},
        "whatsapp_templates_body_check": {"name": "blank", "body": "   "},
        "whatsapp_templates_placeholders": {"name": "typo", "body": "Hi {{ name }}"},
    }
    for constraint, template in refusals.items():
        answer = rest(gateway, "POST", token, body=template)
        assert (answer.status_code, answer.json()["code"]) == (400, "23514"), template
        assert constraint in answer.json()["message"]
    duplicate = rest(gateway, "POST", token, body={"name": "taken", "body": "again"})
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "23505")
    assert "whatsapp_templates_user_name_key" in duplicate.json()["message"]
    assert set(duplicate.json()) == {"code", "details", "hint", "message"}
    renamed = rest(gateway, "PATCH", token, "name=eq.taken", {"name": "Bad Name"})
    assert (renamed.status_code, renamed.json()["code"]) == (400, "23514")
    assert names(gateway, token) == ["taken"]

    assert rest(gateway, "POST", None, body={"name": "a", "body": "b"}).status_code == 401
    unknown = rest(gateway, "POST", token, body={"name": "a", "colour": "b"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "PGRST204")
    broken = requests.post(
        f"{gateway.url}/rest/v1/whatsapp_templates",
        data=b"{not json",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        timeout=10,
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "PGRST102")
    unsupported = rest(gateway, "DELETE", token, "name=cs.{t}")
    assert unsupported.status_code == 400
    assert names(gateway, token) == ["taken"]
