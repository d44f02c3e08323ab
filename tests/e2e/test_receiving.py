"""Receiving as the real host reports it, through the webhook: a message reported twice (first
undecrypted), notices that are not messages, and files fetched off the webhook's path, tried
again while the host cannot give them for a moment, given up after a bounded number of tries.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from local.function_url import LambdaContext
from local.gateway import handlers_in_process
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user, one_row, rows_of
from tests.waiting import wait_until

FROM = "5511955557777"


def post_event(gateway: Gateway, name: str, body: dict[str, Any]) -> requests.Response:
    """An event as the host posts it, proven by the x-verify header."""
    return requests.post(
        gateway.fn("qr-webhook"),
        json={"session": name, **body},
        headers={"x-verify": gateway.env["QR_WEBHOOK_VERIFY_TOKEN"].split(",")[0]},
        timeout=30,
    )


def inbound(database: str, user_id: str) -> list[dict[str, Any]]:
    return rows_of(database, user_id, "inbound")


def jpeg(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def media_incoming(simulator: Simulator, name: str, data: bytes, mime: str) -> dict[str, Any]:
    media = {"data": base64.b64encode(data).decode(), "mime_type": mime}
    answer = simulator.control("POST", f"{name}/incoming", {"from": FROM, "media": media})
    message: dict[str, Any] = answer.json()["message"]
    return message


def media_state(database: str, wpp_id: str) -> dict[str, Any]:
    """The message's file: its state, sha256 and path as stored, and its tries and lease as
    the media function sees them (``{}`` until the message is stored)."""
    return one_row(
        database,
        "select m.media_state as state, m.sha256, m.media_path as path, f.attempts, f.lease_until"
        " from whatsapp_messages m left join whatsapp_media_fetches f on f.message_id = m.id"
        " where m.wpp_message_id = %s",
        (wpp_id,),
    )


def files_fate(
    database: str,
    wpp_id: str,
    within_s: float,
    before_each_look: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """The message's file once it is no longer pending: stored, or given up (unavailable);
    ``before_each_look`` runs before each look (a media pass, say)."""

    def look() -> dict[str, Any]:
        if before_each_look is not None:
            before_each_look()
        return media_state(database, wpp_id)

    return wait_until(
        look,
        lambda m: m.get("state") not in (None, "pending"),
        within_s,
        message="the file stored or given up",
    )


def assert_stored(fate: dict[str, Any], data: bytes) -> None:
    assert fate["state"] == "stored", fate
    assert fate["sha256"] == hashlib.sha256(data).hexdigest()


# --- a message reported twice --------------------------------------------------------------------


def test_a_message_first_reported_as_ciphertext_is_stored_once_with_its_text(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """wa-js emits a new message at once as ``ciphertext`` and again, same id, decrypted; the
    host posts both to onmessage. The fuller one wins, whichever arrives last."""
    user, _, name = connected_user(gateway, simulator, "cipher")
    with simulator.configured(ciphertext_first=True, ciphertext_ms=200):
        sent = simulator.control(
            "POST", f"{name}/incoming", {"from": FROM, "body": "primeira mensagem"}
        ).json()["message"]

    rows = wait_until(
        lambda: inbound(database, user.id),
        lambda rows: len(rows) == 1 and rows[0]["body"] == "primeira mensagem",
        10.0,
        message="the decrypted text stored",
    )
    assert rows[0]["wpp_message_id"] == sent["id"] and rows[0]["message_type"] == "chat"

    # The ciphertext event again, late (the host does not await its posts): it changes nothing.
    late = {
        "event": "onmessage",
        "id": sent["id"],
        "type": "ciphertext",
        "from": sent["from"],
        "to": sent["to"],
        "t": sent["t"],
        "fromMe": False,
        "chatId": sent["chatId"],
        "late": True,  # another body than the first post's: not the log's duplicate
    }
    assert post_event(gateway, name, late).status_code == 200
    [row] = inbound(database, user.id)
    assert (row["body"], row["message_type"]) == ("primeira mensagem", "chat")


def test_a_decrypted_file_replaces_its_ciphertext_and_its_file_is_fetched(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "cipher-file")
    data = jpeg(40 * 1024)
    with simulator.configured(ciphertext_first=True, ciphertext_ms=200):
        sent = media_incoming(simulator, name, data, "image/jpeg")
    assert_stored(files_fate(database, sent["id"], 20.0), data)
    [row] = inbound(database, user.id)
    assert (row["message_type"], row["mime_type"]) == ("image", "image/jpeg")


# --- notices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["e2e_notification", "notification_template", "gp2", "protocol", "call_log"]
)
def test_a_notice_posted_as_a_message_is_not_stored(
    gateway: Gateway, simulator: Simulator, database: str, kind: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "notice")
    event = {
        "event": "onmessage",
        "id": f"false_{FROM}@c.us_3A{os.urandom(9).hex().upper()}",
        "type": kind,
        "from": f"{FROM}@c.us",
        "to": "5511912345678@c.us",
        "t": int(time.time()),
        "fromMe": False,
        "isNotification": True,
        "chatId": f"{FROM}@c.us",
    }
    assert post_event(gateway, name, event).status_code == 200
    assert inbound(database, user.id) == []


# --- files off the webhook's path ---------------------------------------------------------------


def test_the_webhook_answers_before_a_slow_download_and_the_file_comes_soon_after(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """The host's download-media may take as long as its CDN does: the webhook only stores the
    message (the file pending) and answers; the file is fetched beside it."""
    user, _, name = connected_user(gateway, simulator, "slowfile")
    data = jpeg(30 * 1024)
    with simulator.configured(ciphertext_first=False, webhook_drop_rate=1.0):
        sent = media_incoming(simulator, name, data, "image/jpeg")
        wait_until(lambda: simulator.delivered(name), within_s=10.0)
    assert inbound(database, user.id) == []
    event = {"event": "onmessage", **{k: v for k, v in sent.items() if k != "body"}}
    with (
        simulator.configured(decrypt_error_tries=0),
        simulator.faulty(latency_ms=6000, routes=["download-media"]),
    ):
        started = time.monotonic()
        answer = post_event(gateway, name, event)
        took = time.monotonic() - started
    assert answer.status_code == 200
    assert took < 3.0, f"the webhook waited {took:.1f} s for the host's download"
    assert_stored(files_fate(database, sent["id"], 30.0), data)


def test_a_download_that_fails_for_a_moment_is_tried_again(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """The host answers 400 "Decrypt file error" when the CDN or the decryption fails for a
    moment: the file is asked again, not given up."""
    _, _, name = connected_user(gateway, simulator, "decrypt-later")
    data = jpeg(20 * 1024)
    with simulator.configured(ciphertext_first=False, decrypt_error_tries=2):
        sent = media_incoming(simulator, name, data, "image/jpeg")
        fate = files_fate(database, sent["id"], 30.0)
    assert_stored(fate, data)


def media_pass(handler: Handler) -> dict[str, Any]:
    """One scheduled pass of the media function, as EventBridge runs it."""
    context = LambdaContext("media", str(uuid.uuid4()), timeout_ms=60_000)
    return handler({"source": "schedule", "job": "media"}, context)


def test_a_file_left_pending_is_fetched_by_the_next_scheduled_pass(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """The host could not be reached for the file (its first try); the scheduled pass tries
    again once the wait after that try is over."""
    _, _, name = connected_user(gateway, simulator, "pending-file")
    data = jpeg(25 * 1024)
    with (
        simulator.configured(ciphertext_first=False, decrypt_error_tries=0),
        simulator.faulty(down=True, routes=["download-media"]),
    ):
        sent = media_incoming(simulator, name, data, "image/jpeg")
        wait_until(
            lambda: media_state(database, sent["id"]),
            lambda m: m.get("state") == "pending" and tries(database, sent["id"]) >= 1,
            20.0,
            message="a first try that failed",
        )
    with (
        simulator.configured(decrypt_error_tries=0),
        handlers_in_process(gateway.env) as loaded,
    ):
        fate = files_fate(database, sent["id"], 30.0, lambda: media_pass(loaded["media"]))
    assert_stored(fate, data)


def test_a_file_the_host_keeps_failing_to_give_is_unavailable_after_bounded_tries(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    _, _, name = connected_user(gateway, simulator, "never-file")
    with (
        simulator.configured(ciphertext_first=False, decrypt_error_tries=1000),
        handlers_in_process({**gateway.env, "MEDIA_FETCH_ATTEMPTS": "2"}) as loaded,
    ):
        sent = media_incoming(simulator, name, jpeg(10 * 1024), "image/jpeg")
        final = files_fate(database, sent["id"], 40.0, lambda: media_pass(loaded["media"]))
    assert final["state"] == "unavailable" and final["path"] is None
    assert 2 <= tries(database, sent["id"]) <= 3


def test_a_message_without_a_file_on_the_host_is_unavailable_at_once(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    """Another refusal than a decrypt error ("Message does not contain media") is final."""
    user, _, name = connected_user(gateway, simulator, "no-file")
    with simulator.configured(ciphertext_first=False, webhook_drop_rate=1.0):
        text = simulator.control(
            "POST", f"{name}/incoming", {"from": FROM, "body": "só texto"}
        ).json()["message"]
        wait_until(lambda: simulator.delivered(name), within_s=10.0)
    event = {"event": "onmessage", **text, "type": "image", "mimetype": "image/jpeg", "size": 9}
    assert post_event(gateway, name, event).status_code == 200
    final = files_fate(database, text["id"], 20.0)
    assert final["state"] == "unavailable" and tries(database, text["id"]) == 1
    assert [r["wpp_message_id"] for r in inbound(database, user.id)] == [text["id"]]


def tries(database: str, wpp_id: str) -> int:
    return int(media_state(database, wpp_id).get("attempts") or 0)
