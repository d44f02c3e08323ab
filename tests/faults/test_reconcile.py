"""Nothing lost: what the host's webhooks never brought (it posts each once and never retries),
put right by one reconcile pass: incoming messages stored exactly once and in order, every ack
current, every session in the host's state, and each change in the event log.

Webhooks are lost with the simulator's ``webhook_drop_rate`` (posted nowhere, as when the
network fails for the moment of the post), or refused by qr-webhook itself (503: its database
cannot take them); the host restart is a simulator process of the test's own, killed and
started again (``startAllSession``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local.function_url import LambdaContext
from local.gateway import handlers_in_process
from tests.conftest import Gateway, GatewayWith, Handler, HostWith, Simulator
from tests.e2e.flows import (
    connected_user,
    rows_of,
    sent_text,
    started_user,
    wait_for_status,
)
from tests.e2e.test_media import read
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SESSIONS = 10
INCOMING_PER_SESSION = 20
SENDS_PER_SESSION = 10


def run_pass(reconcile: Handler) -> dict[str, Any]:
    context = LambdaContext("reconcile", str(uuid.uuid4()), timeout_ms=240_000)
    return reconcile({"source": "schedule", "job": "reconcile"}, context)


def all_delivered_or_lost(simulator: Simulator, names: list[str]) -> bool:
    """Every event the host emitted for these sessions has been posted or lost, the decrypted
    reports of messages first reported as ciphertext included."""
    for name in names:
        if not simulator.decrypted(name):
            return False
        events = simulator.control("GET", f"{name}/events").json()["events"]
        if not all(e["results"] for e in events if e["sent"]):
            return False
    return True


def incoming(simulator: Simulator, name: str, count: int, tag: str) -> list[str]:
    """``count`` messages from two contacts (one of them named by a LID), in order."""
    ids = []
    for i in range(count):
        body: dict[str, Any] = {"from": f"55119{i % 2:08d}", "body": f"{tag} {i}"}
        if i % 2:
            body["from_lid"] = True
        ids.append(simulator.control("POST", f"{name}/incoming", body).json()["id"])
    return ids


def session_row(database: str, name: str) -> dict[str, Any]:
    with psycopg.connect(database) as conn:
        cursor = conn.execute(
            "select status, status_reason, qr_code from whatsapp_sessions where session_id = %s",
            (name,),
        )
        status, reason, qr = cursor.fetchone() or (None, None, None)
    return {"status": status, "status_reason": reason, "qr_code": qr}


def logged_events(database: str, user_id: str) -> list[str]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "select event from whatsapp_events where user_id = %s order by seq", (user_id,)
        ).fetchall()
    return [row[0] for row in rows]


def assert_inbound_exactly(database: str, user_id: str, ids: list[str]) -> None:
    """Each message stored once, and in the order it arrived within its chat (the host dates
    messages to the second: across chats, that is all the order there is)."""
    rows = rows_of(database, user_id, "inbound")
    stored = [row["wpp_message_id"] for row in rows]
    assert sorted(stored) == sorted(ids)
    for chat in {i.split("_")[1] for i in ids}:
        assert [i for i in stored if f"_{chat}_" in i] == [i for i in ids if f"_{chat}_" in i]
    assert all(row["phone"] or row["contact_lid"] for row in rows)


@pytest.fixture(scope="module")
def reconcile(handlers: dict[str, Handler]) -> Handler:
    return handlers["reconcile"]


def test_one_pass_after_every_webhook_was_lost_stores_each_message_once_and_every_ack(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    users = [connected_user(gateway, simulator, f"lost{i}") for i in range(SESSIONS)]
    names = [name for _, _, name in users]
    with simulator.configured(auto_ack=False):
        for _, token, name in users:
            for i in range(SENDS_PER_SESSION):
                sent_text(gateway, token, "5511987654321", f"out {name} {i}")
        with simulator.configured(webhook_drop_rate=1.0):
            arrived = {
                name: incoming(simulator, name, INCOMING_PER_SESSION, "in") for name in names
            }
            for name in names:
                for sent in simulator.outbox(name):
                    simulator.control("POST", f"{name}/ack", {"id": sent["id"], "ack": 3})
            wait_until(lambda: all_delivered_or_lost(simulator, names), within_s=10)
    for user, _, _ in users:
        assert rows_of(database, user.id, "inbound") == []
        assert {r["status"] for r in rows_of(database, user.id, "outbound")} == {"sent"}

    report = run_pass(reconcile)

    assert report["messages"] >= SESSIONS * INCOMING_PER_SESSION
    assert report["acks"] >= SESSIONS * SENDS_PER_SESSION
    for user, _, name in users:
        assert_inbound_exactly(database, user.id, arrived[name])
        outbound = rows_of(database, user.id, "outbound")
        assert [r["status"] for r in outbound] == ["read"] * SENDS_PER_SESSION
        assert session_row(database, name)["status"] == "connected"
        events = logged_events(database, user.id)
        assert events.count("reconcile.message") == INCOMING_PER_SESSION
        assert events.count("reconcile.ack") == SENDS_PER_SESSION
    # Reading back marked nothing read on the phones.
    assert all(simulator.control("GET", f"{name}/seen").json()["seen"] == [] for name in names)

    again = run_pass(reconcile)
    assert again["messages"] == 0 and again["acks"] == 0
    for user, _, name in users:
        assert_inbound_exactly(database, user.id, arrived[name])


def test_webhooks_shuffled_and_duplicated_during_the_pass_store_nothing_twice(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    users = [connected_user(gateway, simulator, f"race{i}") for i in range(3)]
    names = [name for _, _, name in users]
    with simulator.configured(webhook_drop_rate=1.0):
        lost = {name: incoming(simulator, name, INCOMING_PER_SESSION, "lost") for name in names}
        wait_until(lambda: all_delivered_or_lost(simulator, names), within_s=10)
    with simulator.configured(delivery_mode="shuffle+duplicate"):
        live: dict[str, list[str]] = {}
        senders = [
            threading.Thread(
                target=lambda n=n: live.__setitem__(n, incoming(simulator, n, 10, "live"))
            )
            for n in names
        ]
        for sender in senders:
            sender.start()
        report = run_pass(reconcile)
        for sender in senders:
            sender.join()
        wait_until(lambda: all_delivered_or_lost(simulator, names), within_s=10)
        for user, _, name in users:
            wanted = {*lost[name], *live[name]}
            wait_until(
                lambda user=user: {
                    r["wpp_message_id"] for r in rows_of(database, user.id, "inbound")
                },
                lambda stored, wanted=wanted: stored == wanted,
                within_s=10,
            )
    assert report["messages"] >= 3 * INCOMING_PER_SESSION
    for user, _, name in users:
        rows = rows_of(database, user.id, "inbound")
        assert len(rows) == len({r["wpp_message_id"] for r in rows}) == INCOMING_PER_SESSION + 10
        # The lost ones in their order (the live ones come as the shuffled webhooks bring them).
        stored_lost = [r["wpp_message_id"] for r in rows if r["wpp_message_id"] in lost[name]]
        for chat in {i.split("_")[1] for i in lost[name]}:
            in_chat = [i for i in lost[name] if f"_{chat}_" in i]
            assert [i for i in stored_lost if f"_{chat}_" in i] == in_chat


@pytest.mark.parametrize(
    ("data", "mime", "filename", "caption", "kind", "ext"),
    [
        (
            b"%PDF-1.7\n" + bytes(range(256)) * 400,
            "application/pdf",
            "price list.pdf",
            "see",
            "document",
            "pdf",
        ),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 300, "image/jpeg", None, "see", "image", "jpg"),
        (
            b"OggS\x00\x02" + bytes(range(256)) * 40,
            "audio/ogg; codecs=opus",
            None,
            "",
            "ptt",
            "ogg",
        ),
        (
            b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(range(256)) * 20,
            "image/webp",
            None,
            "",
            "sticker",
            "webp",
        ),
        (
            b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 60,
            "video/mp4",
            None,
            "see",
            "video",
            "mp4",
        ),
    ],
    ids=["document", "image", "voice note", "sticker", "video"],
)
def test_a_file_whose_webhook_was_lost_is_stored_and_fetched_by_one_pass(
    gateway: Gateway,
    simulator: Simulator,
    reconcile: Handler,
    database: str,
    data: bytes,
    mime: str,
    filename: str | None,
    caption: str,
    kind: str,
    ext: str,
) -> None:
    """As the webhook keeps a file: its type, name and size on the row, then the file itself
    fetched from the host (``download-media``: the host's ``get-messages`` gives the message
    without its file) and kept under the message in the bucket, by the media function the
    pass starts for it. Voice notes and stickers come without a caption."""
    user, token, name = connected_user(gateway, simulator, f"lost-{kind}")
    media = {"data": base64.b64encode(data).decode(), "mime_type": mime}
    if filename:
        media["filename"] = filename
    with simulator.configured(webhook_drop_rate=1.0, ciphertext_first=False):
        wpp_id = simulator.control(
            "POST", f"{name}/incoming", {"from": "5511955554444", "media": media, "body": caption}
        ).json()["id"]
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)
    assert rows_of(database, user.id, "inbound") == []
    # What get-messages gives for it (the host's chat as the library serializes it): no file.
    inbox = simulator.control("GET", f"{name}/inbox").json()["inbox"]
    [held] = [message for message in inbox if message["id"] == wpp_id]
    assert held["mimetype"] == mime and held["body"] != media["data"]

    report = run_pass(reconcile)

    assert report["messages"] >= 1
    # The file comes by the media function, which the pass starts for it.
    [row] = wait_until(
        lambda: rows_of(database, user.id, "inbound"),
        lambda rows: len(rows) == 1 and rows[0]["media_state"] != "pending",
        20.0,
    )
    assert (row["wpp_message_id"], row["message_type"], row["body"]) == (wpp_id, kind, caption)
    assert (row["mime_type"], row["filename"], row["size"]) == (mime, filename, len(data))
    assert row["media_state"] == "stored"
    assert row["media_path"] == f"{user.id}/{row['whatsapp_session_id']}/{row['id']}.{ext}"
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    kept = read(gateway, token, row["media_path"])
    assert kept.status_code == 200 and hashlib.sha256(kept.content).digest() == (
        hashlib.sha256(data).digest()
    )


def test_a_logout_on_the_phone_and_a_new_qr_no_webhook_reported_are_put_right(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "unlinked")
    _, _, pairing = started_user(gateway, "pairing")
    first_qr = session_row(database, pairing["name"])["qr_code"]
    with simulator.configured(webhook_drop_rate=1.0):
        simulator.control("POST", f"{name}/unlink")
        simulator.control("POST", f"{pairing['name']}/refresh-qr")
        wait_until(lambda: all_delivered_or_lost(simulator, [name, pairing["name"]]), within_s=10)
    assert session_row(database, name)["status"] == "connected"

    run_pass(reconcile)

    assert session_row(database, name) == {
        "status": "disconnected",
        "status_reason": "logged_out_on_phone",
        "qr_code": None,
    }
    assert "reconcile.status" in logged_events(database, user.id)
    now = session_row(database, pairing["name"])
    assert now["status"] == "pairing"
    assert now["qr_code"] == simulator.state(pairing["name"])["urlcode"] != first_qr


def test_refresh_runs_the_same_reconcile_for_the_callers_session(
    gateway: Gateway, simulator: Simulator, database: str
) -> None:
    user, token, name = connected_user(gateway, simulator, "refresher")
    with simulator.configured(webhook_drop_rate=1.0):
        arrived = incoming(simulator, name, 4, "refresh")
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)
    assert rows_of(database, user.id, "inbound") == []

    answer = gateway.call("GET", "status", token, params={"refresh": "true"})

    assert answer.status_code == 200
    assert answer.json()["session"]["status"] == "connected"
    assert_inbound_exactly(database, user.id, arrived)


def test_nothing_from_before_the_link_is_imported(
    gateway: Gateway, simulator: Simulator, reconcile: Handler, database: str
) -> None:
    user, _, name = connected_user(gateway, simulator, "relinked")
    # One report each (no ciphertext first), all lost: none posted after the outage ends.
    with simulator.configured(webhook_drop_rate=1.0, ciphertext_first=False):
        incoming(simulator, name, 3, "before")
        wait_until(lambda: all_delivered_or_lost(simulator, [name]), within_s=10)
    with psycopg.connect(database, autocommit=True) as conn:
        # The link as the database knows it: a minute after those messages.
        conn.execute(
            "update whatsapp_sessions set connected_at = now() + interval '1 minute'"
            " where session_id = %s",
            (name,),
        )
    run_pass(reconcile)
    assert rows_of(database, user.id, "inbound") == []


# --- the host restarting mid-traffic ---------------------------------------------------------


@pytest.fixture()
def own_host(host_with: HostWith) -> Iterator[tuple[Simulator, Gateway]]:
    """A host of this test alone (it restarts), and a gateway in front of it."""
    with host_with("reconcile") as both:
        yield both


def test_a_host_restart_with_every_event_lost_ends_right_after_one_pass(
    own_host: tuple[Simulator, Gateway], database: str
) -> None:
    simulator, gateway = own_host
    data_dir = simulator.host.data_dir
    users = [connected_user(gateway, simulator, f"restart{i}") for i in range(3)]
    names = [name for _, _, name in users]
    gone_user, _, gone = users[2]

    simulator.host.stop()
    # One session's stored login and token are gone with the old machine.
    shutil.rmtree(data_dir / "userDataDir" / gone, ignore_errors=True)
    for token_file in (data_dir / "tokens").glob(f"{gone}*"):
        token_file.unlink()
    simulator.host.start()  # startAllSession restores the others
    simulator.control("POST", "config", {"webhook_drop_rate": 1.0})
    for name in names[:2]:
        wait_until(
            lambda name=name: simulator.state(name).get("status"), lambda s: s == "CONNECTED", 10
        )
    arrived = {name: incoming(simulator, name, 5, "after restart") for name in names[:2]}
    wait_until(lambda: all_delivered_or_lost(simulator, names[:2]), within_s=10)

    with handlers_in_process(gateway.env) as loaded:
        run_pass(loaded["reconcile"])

    for user, token, name in users[:2]:
        assert wait_for_status(gateway, token, "connected")["status"] == "connected"
        assert_inbound_exactly(database, user.id, arrived[name])
    assert session_row(database, gone) == {
        "status": "disconnected",
        "status_reason": "host_lost_session",
        "qr_code": None,
    }
    assert "reconcile.status" in logged_events(database, gone_user.id)


def test_a_pass_takes_each_live_session_once_however_many_batches_it_needs(
    gateway: Gateway, simulator: Simulator, handlers: dict[str, Handler], database: str
) -> None:
    from wa_gateway import services

    for i in range(3):
        connected_user(gateway, simulator, f"batched{i}")
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "select count(*) from whatsapp_sessions"
            " where status in ('starting', 'pairing', 'connected')"
        ).fetchone()
    live = row[0] if row else 0
    small_batches = dataclasses.replace(services.reconciler(), batch_size=2)
    claims_left = iter(range(2 * live + 10))  # time runs out only if sessions come back

    report = small_batches.run(
        remaining_s=lambda: 60.0 if next(claims_left, None) is not None else 0
    )

    assert report.checked + report.deferred == live


def test_one_pass_after_qr_webhook_refused_every_event_with_503_puts_everything_right(
    database: str, simulator: Simulator, gateway_with: GatewayWith
) -> None:
    """The outage as the host sees it when the function itself fails: a database that cannot
    take the events (their log table locked) makes qr-webhook answer 503 to every one, and the
    host never posts them again."""
    with gateway_with("refusing", DB_TIMEOUT="0.2") as gateway:
        users = [connected_user(gateway, simulator, f"refused{i}") for i in range(3)]
        names = [name for _, _, name in users]
        with simulator.configured(auto_ack=False):
            for _, token, name in users:
                for i in range(5):
                    sent_text(gateway, token, "5511987654321", f"out {name} {i}")
            with psycopg.connect(database) as locker:
                locker.execute("lock table public.whatsapp_events in exclusive mode")
                arrived = {name: incoming(simulator, name, 10, "refused") for name in names}
                for name in names:
                    for sent in simulator.outbox(name):
                        simulator.control("POST", f"{name}/ack", {"id": sent["id"], "ack": 3})
                wait_until(lambda: all_delivered_or_lost(simulator, names), within_s=60)
                locker.rollback()
        answers = [
            result
            for name in names
            for event in simulator.control("GET", f"{name}/events").json()["events"]
            if event["event"] in ("onmessage", "onack") and event["sent"]
            for result in event["results"]
        ]
        assert answers and set(answers) == {"503"}, set(answers)
        for user, _, _ in users:
            assert rows_of(database, user.id, "inbound") == []

        with handlers_in_process(gateway.env) as handlers:
            report = run_pass(handlers["reconcile"])

        assert report["messages"] >= 30 and report["acks"] >= 15
        for user, _, name in users:
            assert_inbound_exactly(database, user.id, arrived[name])
            assert [r["status"] for r in rows_of(database, user.id, "outbound")] == ["read"] * 5
            assert session_row(database, name)["status"] == "connected"
