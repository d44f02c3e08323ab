"""Host events: what the webhook's service keeps and what it drops before the database."""

from __future__ import annotations

from typing import cast

import pytest

from wa_gateway.event_records import EventRecord, IngestResult, LidLookup
from wa_gateway.events.contacts import ContactLookup
from wa_gateway.events.service import EventService
from wa_gateway.records import SessionUpdate
from wa_gateway.store import Store


class RecordingStore:
    def __init__(self) -> None:
        self.records: list[EventRecord] = []
        self.lid_lookup: LidLookup | None = None

    def ingest_event(self, record: EventRecord) -> IngestResult:
        self.records.append(record)
        return IngestResult(stored=True, changed=True, seq=1, lid_lookup=self.lid_lookup)


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
    assert record.kind == "session" and record.args == SessionUpdate("user_x", "connected")


UNUSED = [
    {"event": name, "id": "x"}
    for name in (
        "onpresencechanged",
        "onpollresponse",
        "onupdatelabel",
        "incomingcall",
        "location",
    )
] + [{"event": "onack", "ack": 3, "id": {"fromMe": False, "_serialized": "false_1@c.us_3A"}}]


@pytest.mark.parametrize("event", UNUSED, ids=lambda e: str(e["event"]))
def test_events_of_no_use_are_dropped_before_the_database(
    store: RecordingStore, event: dict[str, object]
) -> None:
    result = service(store).apply("user_x", event)
    assert result == IngestResult(stored=False, reason="unused")
    assert store.records == []


class RecordingLookup:
    def __init__(self) -> None:
        self.asked: list[LidLookup] = []

    def resolve(self, lookup: LidLookup) -> str | None:
        self.asked.append(lookup)
        return None


def test_a_stored_message_from_an_unmapped_lid_asks_for_its_number(store: RecordingStore) -> None:
    lookup = RecordingLookup()
    events = EventService(cast(Store, store), contacts=lambda: cast(ContactLookup, lookup))
    message = {"event": "onmessage", "id": "false_1@lid_3A", "from": "123456789012345@lid"}
    events.apply("user_x", message)
    assert lookup.asked == []  # the store did not ask for a lookup
    store.lid_lookup = LidLookup("user_x", "123456789012345", "v1.k.token", None)
    events.apply("user_x", {**message, "id": "false_1@lid_3B"})
    assert lookup.asked == [store.lid_lookup]
