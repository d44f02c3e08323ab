"""What "the outbox is consistent" means, checked against the database and the host's outbox."""

from __future__ import annotations

from typing import Any

from tests.conftest import Simulator
from tests.e2e.flows import rows_of

SENT = ("sent", "delivered", "read")


def assert_outbox_consistent(
    dsn: str, user_id: str, simulator: Simulator | None = None, session: str | None = None
) -> list[dict[str, Any]]:
    """Every outbound row is in a state the send protocol allows, and (given the host) every
    message the host sent is one row, sent, with the host's id: none lost, none twice."""
    rows = rows_of(dsn, user_id, "outbound")
    for row in rows:
        state = (row["status"], row["send_state"], row["wpp_message_id"])
        if row["status"] in SENT:
            assert row["wpp_message_id"] and row["send_state"] == "done", state
        elif row["status"] == "queued":
            assert row["send_state"] in ("pending", "unknown"), state
            assert row["wpp_message_id"] is None and row["lease_until"] is not None, state
        elif row["status"] in ("scheduled", "cancelled"):
            # Waiting for its time, or again after its session was away or the host refused.
            assert row["send_at"] is not None and row["wpp_message_id"] is None, state
            assert row["send_state"] in (None, "retryable"), state
        else:
            assert row["status"] == "failed", state
            assert row["error_code"] or row["wpp_message_id"], state
    ids = [r["wpp_message_id"] for r in rows if r["wpp_message_id"]]
    assert len(ids) == len(set(ids)), "one host message on two rows"
    keys = [r["idempotency_key"] for r in rows if r["idempotency_key"]]
    assert len(keys) == len(set(keys)), "one key on two rows"
    if simulator is not None and session is not None:
        sent = [m["id"] for m in simulator.outbox(session)]
        assert len(sent) == len(set(sent))
        assert sorted(sent) == sorted(ids), (sent, ids)
    return rows
