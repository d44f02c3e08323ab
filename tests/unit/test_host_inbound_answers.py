"""What the host's answers on the way in mean: a 401 of a route whose controller threw is not a
refused token, and a download that failed for a moment is not a file the host will never
give. Against a real local HTTP server answering as wppconnect-server 2.10.4 does."""

from __future__ import annotations

import pytest

from tests.unit.test_host_client import Script, client, fake_host  # noqa: F401 - fixture
from wa_gateway.host.answers import HostChatUnreadable, HostRefusedMedia, HostUnauthorized

# ruff: noqa: F811 - the fixture is named as an argument


@pytest.mark.parametrize(
    ("body", "meaning"),
    [
        ({"message": "Token is not present. Check your header and try again"}, HostUnauthorized),
        ({"error": "Check that the Session and Token are correct"}, HostUnauthorized),
        (
            {"error": "Check that the Session and Token are correct.", "message": {}},
            HostUnauthorized,
        ),
        ({"message": "Session not informed"}, HostUnauthorized),
        (None, HostUnauthorized),
        ({"status": "error", "response": "Error on open list", "error": {}}, HostChatUnreadable),
    ],
    ids=[
        "no token",
        "bad token",
        "bad token (thrown)",
        "no session",
        "not json",
        "get-messages threw",
    ],
)
def test_a_401_of_get_messages_is_a_refused_token_unless_its_controller_threw(
    fake_host: tuple[str, Script], body: object, meaning: type[Exception]
) -> None:
    """The auth middleware's 401s refuse the token; get-messages' own 401, when its controller
    threw, is a chat it cannot read."""
    url, script = fake_host
    script.status = 401
    if body is None:
        script.raw = b"Unauthorized"
    else:
        script.body = body
    with pytest.raises(meaning):
        client(url).chat_messages("s", "token", chat="5511987654321@c.us", count=5)


def test_a_decrypt_error_is_a_passing_refusal_and_the_others_are_final(
    fake_host: tuple[str, Script],
) -> None:
    url, script = fake_host
    script.status = 400
    script.body = {"status": "error", "message": "Decrypt file error", "error": {}}
    with pytest.raises(HostRefusedMedia) as passing:
        client(url).download_media("s", "token", "false_1@c.us_3A")
    assert passing.value.transient is True
    for message in ("Message does not contain media", "Message not found"):
        script.body = {"status": "error", "message": message}
        with pytest.raises(HostRefusedMedia) as final:
            client(url).download_media("s", "token", "false_1@c.us_3A")
        assert final.value.transient is False
