"""The simulator authenticates like wppconnect-server: tokens, the Authorization header, the
session key in answers. Over real HTTP against the simulator running as its own process."""

from __future__ import annotations

import bcrypt

from tests.integration.simulator.host_client import (
    SECRET,
    Host,
)

# --- 1, 2. tokens and auth ----------------------------------------------------------------------


def test_generate_token_is_a_bcrypt_of_session_and_secret(host: Host, name: str) -> None:
    answer = host.http.post(f"{host.url}/api/{name}/{SECRET}/generate-token")
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"status", "session", "token", "full"}
    assert body["status"] == "success" and body["session"] == name
    token = body["token"]
    assert token.startswith("$2b$10$") and "/" not in token and "+" not in token
    assert body["full"] == f"{name}:{token}"
    real_hash = token.replace("_", "/").replace("-", "+").encode()
    assert bcrypt.checkpw(f"{name}{SECRET}".encode(), real_hash)
    again = host.http.post(f"{host.url}/api/{name}/{SECRET}/generate-token").json()["token"]
    assert again != token


def test_generate_token_with_a_wrong_secret_is_400(host: Host, name: str) -> None:
    answer = host.http.post(f"{host.url}/api/{name}/WRONG/generate-token")
    assert answer.status_code == 400
    assert answer.json() == {"response": False, "message": "The SECRET_KEY is incorrect"}


def test_a_missing_or_one_word_authorization_is_401_token_not_present(
    host: Host, name: str
) -> None:
    expected = {"message": "Token is not present. Check your header and try again"}
    url = f"{host.url}/api/{name}/status-session"
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  x"}):
        answer = host.http.get(url, headers=headers)
        assert answer.status_code == 401 and answer.json() == expected, headers


def test_a_wrong_token_or_another_sessions_token_is_401(host: Host, name: str) -> None:
    expected = {"error": "Check that the Session and Token are correct"}
    url = f"{host.url}/api/{name}/status-session"
    for token in ("nope", host.token("someone-else")):
        answer = host.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json() == expected


def test_only_the_second_word_is_read_and_the_path_form_wins(host: Host, name: str) -> None:
    token = host.token(name)
    answer = host.http.get(
        f"{host.url}/api/{name}/status-session", headers={"Authorization": f"Whatever {token}"}
    )
    assert answer.status_code == 200
    path_form = f"{host.url}/api/{name}:{token}/status-session"
    assert host.http.get(path_form).status_code == 200
    wrong_header = {"Authorization": "Bearer wrong"}
    assert host.http.get(path_form, headers=wrong_header).status_code == 200


# --- 3. the session key ---------------------------------------------------------------------


def test_session_key_is_added_only_when_content_type_is_exactly_json(host: Host, name: str) -> None:
    url = f"{host.url}/api/{name}/status-session"
    auth = {"Authorization": f"Bearer {host.token(name)}"}
    assert host.http.get(url, headers=auth).json() == {"status": "CLOSED", "qrcode": None}
    as_json = {**auth, "Content-Type": "application/json"}
    assert host.http.get(url, headers=as_json).json() == {
        "status": "CLOSED",
        "qrcode": None,
        "session": "",
    }
    with_charset = {**auth, "Content-Type": "application/json; charset=utf-8"}
    assert "session" not in host.http.get(url, headers=with_charset).json()
    host.call("POST", name, "start-session", {})
    assert host.http.get(url, headers=as_json).json()["session"] == name
    unauthorised = host.http.get(url, headers={"Content-Type": "application/json"})
    assert unauthorised.status_code == 401 and unauthorised.json()["session"] == ""
