"""A ticket's team and agent copied onto its records (shared.access.StampedRecords): newest wins, whatever the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import DESCENDING, MongoClient

from shared.access import Stamp, StampedRecords, TicketAccess

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


@pytest.fixture
def access(infra, settings):
    client = MongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.database_name("accesstest")]
    yield TicketAccess(db)
    client.drop_database(db.name)
    client.close()


CREATED = {"requester": {"name": "Ana", "email": "Ana@Example.com"}}


def _assigned(team: str, agent: str | None = "jane") -> dict:
    return {"team": team, "agent_id": agent}


def test_a_ticket_s_assignment_says_whether_its_records_need_restamping(access):
    access.learn_created("t-1", CREATED)  # created here first: no record of it is stamped yet
    assert access.learn_assigned("t-1", _assigned("network"), T0) == (Stamp("network", "jane", T0), False)

    access.note_records("t-1")  # a breach is about to be recorded
    access.learn_created("t-1", CREATED)  # delivered again later: it does not forget the records
    later = T0 + timedelta(minutes=5)
    assert access.learn_assigned("t-1", _assigned("desk", None), later) == (Stamp("desk", None, later), True)

    # an older assignment arriving late changes nothing and answers the stamp the ticket has
    assert access.learn_assigned("t-1", _assigned("network"), T0) == (Stamp("desk", None, later), True)
    assert access.find("t-1").requester_email == "ana@example.com"


def test_an_assignment_before_the_creation_restamps_since_nothing_says_no_record_exists(access):
    assert access.learn_assigned("t-2", _assigned("network"), T0) == (Stamp("network", "jane", T0), True)
    access.learn_created("t-2", CREATED)  # the document exists: creation does not claim there are no records
    assert access.learn_assigned("t-2", _assigned("desk"), T0 + timedelta(minutes=1))[1] is True
