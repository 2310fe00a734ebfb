"""A ticket's team and agent copied onto its records (shared.access.StampedRecords): newest wins, whatever the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import DESCENDING, MongoClient

from shared.access import Stamp, StampedRecords

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def records(infra, settings):
    client = MongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.database_name("stampstest")]
    stamps = StampedRecords(db["records"], db["migrations"], [("at", DESCENDING), ("_id", DESCENDING)])
    stamps.ensure_indexes()
    yield stamps
    client.drop_database(db.name)
    client.close()


def _insert(stamps: StampedRecords, record_id: str, ticket_id: str, stamp: Stamp, minute: int = 0) -> None:
    stamps.collection.insert_one({"_id": record_id, "ticket_id": ticket_id, "at": T0 + timedelta(minutes=minute),
                                  **stamp.fields()})  # fmt: skip


def _stamp_of(stamps: StampedRecords, record_id: str) -> Stamp:
    doc = stamps.collection.find_one({"_id": record_id})
    return Stamp(doc["team"], doc["agent_id"], doc["access_at"])


def _visible(stamps: StampedRecords, agent_id: str, teams: list[str]) -> list[str]:
    return [doc["_id"] for doc in stamps.collection.find(StampedRecords.visible_to(agent_id, teams)).sort("_id")]


def test_an_assignment_stamps_every_record_of_its_ticket_and_an_older_one_changes_nothing(records):
    _insert(records, "r1", "t1", Stamp())  # written before the ticket was assigned
    _insert(records, "r2", "t1", Stamp("red", None, T0))
    _insert(records, "r3", "t2", Stamp("red", None, T0))
    newer = Stamp("blue", "ana", T0 + timedelta(minutes=5))
    records.restamp({"ticket_id": "t1"}, newer)
    assert _stamp_of(records, "r1") == _stamp_of(records, "r2") == newer
    assert _stamp_of(records, "r3") == Stamp("red", None, T0), "another ticket's record changed"

    records.restamp({"ticket_id": "t1"}, Stamp("green", "bo", T0 + timedelta(minutes=1)))  # late, older
    assert _stamp_of(records, "r1") == newer
    records.restamp({"ticket_id": "t1"}, Stamp("green", None, None))  # no assignment: nothing to copy
    assert _stamp_of(records, "r1") == newer


def test_a_record_written_with_a_stale_stamp_is_corrected_by_its_check(records):
    stale, current = Stamp("red", None, T0), Stamp("blue", "ana", T0 + timedelta(minutes=5))
    _insert(records, "r1", "t1", stale)  # the assignment to blue was stored between the read and this write
    records.check({"_id": "r1"}, stale, current)
    assert _stamp_of(records, "r1") == current
    records.check({"_id": "r1"}, current, Stamp("red", None, T0))  # a check never goes back
    assert _stamp_of(records, "r1") == current
    records.check({"_id": "r1"}, current, Stamp())  # a ticket notify never heard of: nothing
    assert _stamp_of(records, "r1") == current


def test_an_agent_reads_its_teams_records_and_its_own_only(records):
    _insert(records, "r1", "t1", Stamp("red", None, T0))
    _insert(records, "r2", "t2", Stamp("blue", "ana", T0))
    _insert(records, "r3", "t3", Stamp("green", None, T0))
    _insert(records, "r4", "t4", Stamp())
    assert _visible(records, "ana", ["red"]) == ["r1", "r2"]
    assert _visible(records, "bo", ["green", "red"]) == ["r1", "r3"]
    assert _visible(records, "bo", []) == []


def test_the_backfill_stamps_older_records_once_and_marks_the_database(records):
    _insert(records, "r1", "t1", Stamp())
    records.collection.insert_one({"_id": "r2", "ticket_id": "t2", "at": T0})  # written before there were stamps
    assert not records.backfilled()
    given = [("t1", Stamp("red", "ana", T0)), ("t2", Stamp("blue", None, T0))]
    assert records.backfill(iter(given)) == 2
    assert _stamp_of(records, "r1") == Stamp("red", "ana", T0)
    assert _stamp_of(records, "r2") == Stamp("blue", None, T0)
    assert records.backfilled()

    again = StampedRecords(records.collection, records.migrations, records.order)  # another process
    assert again.backfilled()
    assert again.backfill(iter([("t1", Stamp("green", None, T0 + timedelta(hours=1)))])) == 0
    assert _stamp_of(records, "r1") == Stamp("red", "ana", T0)
