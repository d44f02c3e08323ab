"""A file send whose answer never came (a host that passed the 20 s start timeout) completed
by its late ack, matched by what wppconnect 2.2.7 really reports of a file's message: its
digest (``filehash``) and its caption (``caption``), never its body, which is the whole file
under autoDownload and a preview otherwise. The file is never sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Gateway, GatewayWith, Simulator
from tests.e2e.flows import assert_error, connected_user, rows_of
from tests.e2e.test_media import b64, jpeg, pdf, sha
from tests.e2e.test_messaging_real_host import lease_over
from tests.faults.outbox import assert_outbox_consistent
from tests.waiting import wait_until

LEASE_S = 2


@pytest.fixture(scope="module")
def slow_file_gateway(
    gateway_with: GatewayWith, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Functions that give a file send 1 s (the host's start timeout) and a 2 s lease."""
    with gateway_with(
        "slow-files",
        storage_dir=tmp_path_factory.mktemp("storage-late-ack"),
        WPP_START_TIMEOUT="1",
        WPP_READ_TIMEOUT="1",
        SEND_LEASE=f"{LEASE_S}s",
    ) as started:
        yield started


@pytest.mark.parametrize(
    ("data", "mime", "caption", "auto_download"),
    [
        (pdf(4000), "application/pdf", "the menu", True),  # the body is the whole file
        (jpeg(3000), "image/jpeg", "", False),  # the body is a preview; no caption typed
    ],
    ids=["document-with-caption", "image-without-caption"],
)
def test_a_file_send_that_timed_out_is_completed_by_its_late_ack_and_never_sent_twice(
    slow_file_gateway: Gateway,
    simulator: Simulator,
    database: str,
    data: bytes,
    mime: str,
    caption: str,
    auto_download: bool,
) -> None:
    gateway = slow_file_gateway
    user, token, name = connected_user(gateway, simulator, "fileack")
    body: dict[str, Any] = {
        "phone": "5511987650030",
        "media": {"data": b64(data), "mime_type": mime, "filename": "sent-file"},
        **({"message": caption} if caption else {}),
    }
    headers = {"Idempotency-Key": f"late-file-{mime}"}
    with (
        simulator.configured(auto_download=auto_download),
        simulator.faulty(latency_ms=1500, routes=["send-file-base64"]),
    ):
        first = gateway.call("POST", "send-message", token, json=body, headers=headers)
        assert_error(first, 504, "host_timeout")
        [row] = rows_of(database, user.id, "outbound")
        # The host sent it after all; its ack names no body the row has, but the file.
        [sent] = wait_until(lambda: simulator.outbox(name), within_s=5)
        settled = wait_until(
            lambda: rows_of(database, user.id, "outbound")[0],
            lambda r: r["wpp_message_id"] is not None,
            5,
        )
    assert settled["id"] == row["id"] and settled["wpp_message_id"] == sent["id"]
    assert settled["sha256"] == sha(data) and settled["body"] == caption
    wait_until(lambda: lease_over(database, row["id"]), within_s=LEASE_S + 2)
    again = gateway.call("POST", "send-message", token, json=body, headers=headers)
    assert again.status_code == 200 and again.json()["message"]["id"] == str(row["id"])
    assert len(simulator.outbox(name)) == 1
    assert_outbox_consistent(database, user.id, simulator, name)
