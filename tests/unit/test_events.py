"""Host events: what the webhook's service keeps and what it drops before the database."""

from __future__ import annotations

from typing import cast

import pytest

from wa_gateway.events import EventService
from wa_gateway.records import EventRecord, IngestResult
from wa_gateway.store import Store


class RecordingStore:
    def __init__(self) -> None:
        self.records: list[EventRecord] = []

    def ingest_event(self, record: EventRecord) -> IngestResult:
        self.records.append(record)
        return IngestResult(stored=True, changed=True, seq=1)


@pytest.fixture()
def store() -> RecordingStore:
    return RecordingStore()


def service(store: RecordingStore) -> EventService:
    return EventService(cast(Store, store))


@pytest.mark.parametrize(("name", "reason"), [(None, "no_session"), ("a b", "bad_session_name")])
def test_an_event_without_a_usable_session_is_dropped_unstored(
    store: RecordingStore, name: str | None, reason: str
) -> None:
    result = service(store).apply(name, {"event": "qrcode", "session": name})
    assert result == IngestResult(stored=False, reason=reason)
    assert store.records == []


def test_an_event_for_a_session_is_logged_with_its_host_and_attempt(store: RecordingStore) -> None:
    result = service(store).apply("user_x", {"event": "status-find", "status": "inChat"}, "h1", 3)
    assert result.stored
    [record] = store.records
    assert (record.session_name, record.host_id, record.attempt) == ("user_x", "h1", 3)
    assert record.kind == "session" and record.args["status"] == "connected"
