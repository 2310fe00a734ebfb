"""The consumer's records of handled events, written together (ProcessedEvents.note and flush)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pymongo.errors import AutoReconnect

from shared import idempotency, mongo
from shared.config import load_settings
from shared.idempotency import ProcessedEvents


@pytest.fixture
def processed(infra):
    store = ProcessedEvents(mongo.database(load_settings(), f"records_{uuid.uuid4().hex[:8]}"))
    yield store
    store.collection.database.client.drop_database(store.collection.database.name)


def test_records_noted_are_written_together_a_repeat_known_once_written(processed):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    seen: list[tuple[str, bool]] = []
    before = datetime.now(UTC)
    for event_id in [*ids, ids[0]]:  # the first one delivered twice
        processed.note(event_id, lambda first, event_id=event_id: seen.append((event_id, first)))
    assert seen == [] and processed.collection.count_documents({}) == 0 and processed.pending() == 4

    processed.flush()
    assert seen == [(ids[0], True), (ids[1], True), (ids[2], True), (ids[0], False)]
    assert processed.pending() == 0
    records = {r["_id"]: r["at"] for r in processed.collection.find()}
    assert set(records) == set(ids)
    assert all(
        at.replace(tzinfo=UTC) >= before.replace(microsecond=before.microsecond // 1000 * 1000)
        for at in records.values()
    )

    processed.note(ids[1], lambda first: seen.append((ids[1], first)))  # a repeat after its record was written
    processed.flush()
    assert seen[-1] == (ids[1], False)
    processed.flush()  # nothing waits: nothing written, nothing called
    assert len(seen) == 5


def test_records_wait_while_the_database_is_away_and_are_written_once_it_answers(processed, monkeypatch):
    seen: list[bool] = []
    first_id, second_id = str(uuid.uuid4()), str(uuid.uuid4())
    processed.note(first_id, seen.append)
    real = processed.collection.insert_many

    def away(*args, **kwargs):
        raise AutoReconnect("the database restarts")

    monkeypatch.setattr(processed.collection, "insert_many", away)
    with pytest.raises(AutoReconnect):
        processed.flush()
    assert seen == [] and processed.pending() == 1
    processed.note(second_id, seen.append)  # noted meanwhile: after the one given back

    monkeypatch.setattr(processed.collection, "insert_many", real)
    processed.flush()
    assert seen == [True, True] and processed.pending() == 0
    assert [r["_id"] for r in processed.collection.find().sort("at", 1)] == [first_id, second_id]


def test_a_full_batch_is_written_at_once_without_waiting_for_the_timer(processed, monkeypatch):
    monkeypatch.setattr(idempotency, "RECORD_AT", 3)
    for _ in range(3):
        processed.note(str(uuid.uuid4()))
    assert processed.pending() == 0 and processed.collection.count_documents({}) == 3


def test_a_full_batch_that_cannot_be_written_waits_for_the_timer_and_the_delivery_goes_on(processed, monkeypatch):
    monkeypatch.setattr(idempotency, "RECORD_AT", 2)
    real = processed.collection.insert_many

    def away(*args, **kwargs):
        raise AutoReconnect("the database restarts")

    monkeypatch.setattr(processed.collection, "insert_many", away)
    processed.note(str(uuid.uuid4()))
    processed.note(str(uuid.uuid4()))  # fills the batch: its write fails, the handler's delivery does not
    assert processed.pending() == 2
    monkeypatch.setattr(processed.collection, "insert_many", real)
    processed.flush()
    assert processed.pending() == 0 and processed.collection.count_documents({}) == 2
