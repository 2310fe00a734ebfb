"""The wire server honours what the services rely on: MongoDB's atomic single-document writes.

FerretDB v1.24.2 with SQLite reads documents, changes them and writes them back in separate steps,
so concurrent updates of one document lose writes. `make tools` builds it with
scripts/ferretdb.patch; these tests fail loudly on a server without that guarantee.
The patch also answers datetime ranges on an indexed field through the index, and a test checks that
they still match exactly the documents MongoDB matches.
"""

from __future__ import annotations

import operator
import threading
from datetime import datetime, timedelta

import pytest
from pymongo import MongoClient, ReturnDocument


@pytest.fixture
def scratch(infra):
    client = MongoClient(infra.mongo_url)
    db = client[f"{infra.namespace}_semantics"]
    yield db
    client.drop_database(db.name)
    client.close()


def _concurrently(work, threads: int = 8) -> None:
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_concurrent_increments_are_all_kept(infra, scratch):
    scratch.counters.insert_one({"_id": "n", "value": 0, "updates": 0})
    handed_out = []

    def work():
        client = MongoClient(infra.mongo_url)
        for _ in range(50):
            doc = client[scratch.name].counters.find_one_and_update(
                {"_id": "n"}, {"$inc": {"value": 1}}, return_document=ReturnDocument.AFTER
            )
            handed_out.append(doc["value"])
            client[scratch.name].counters.update_one({"_id": "n"}, {"$inc": {"updates": 1}})
        client.close()

    _concurrently(work)
    assert len(set(handed_out)) == len(handed_out) == 400, "findAndModify handed out a number twice"
    assert scratch.counters.find_one({"_id": "n"})["updates"] == 400, "concurrent $inc updates were lost"


def test_a_conditional_update_wins_only_once_per_version(infra, scratch):
    scratch.docs.insert_one({"_id": "d", "_v": 0})
    wins = []

    def work():
        client = MongoClient(infra.mongo_url)
        for _ in range(25):
            while True:
                seen = client[scratch.name].docs.find_one({"_id": "d"})["_v"]
                if (
                    client[scratch.name]
                    .docs.update_one({"_id": "d", "_v": seen}, {"$set": {"_v": seen + 1}})
                    .modified_count
                ):
                    wins.append(seen)
                    break
        client.close()

    _concurrently(work)
    assert sorted(wins) == list(range(200)), "two writers won the same version"


_COMPARISONS = {"$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge}


def test_range_queries_on_an_indexed_date_field_match_mongodb(scratch):
    ms = timedelta(milliseconds=1)
    dates = [
        datetime(1900, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999000),  # negative milliseconds
        datetime(1970, 1, 1),
        datetime(1999, 5, 5, 1, 2, 3, 456000),  # before 2001: fewer digits than now
        datetime(2024, 6, 1),
        datetime(2024, 6, 1) + ms,
        datetime(2024, 6, 1, 0, 0, 0, 500000),
        datetime(2286, 11, 20, 17, 46, 39, 999000),  # after 2286: more digits than now
        datetime(2286, 11, 20, 17, 46, 40),
        datetime(2300, 1, 1),
    ]
    # Values that a datetime comparison never matches (numbers as large as dates in milliseconds
    # included), and arrays, which match when one of their datetimes does.
    others = [None, 5, 1717200000000, 1.7e12, -1, True, "2024-06-01", "[x", {"at": datetime(2024, 6, 1)}]
    arrays = [[datetime(2024, 6, 1), "s"], [datetime(1900, 1, 1), datetime(2300, 1, 1)], ["s", 3], []]
    docs = [{"_id": f"v{i}", "due": value} for i, value in enumerate(dates + others + arrays)]
    docs.append({"_id": "missing"})
    scratch.clocks.insert_many(docs)
    scratch.clocks.create_index([("due", 1)])

    def expected(bounds, ids=None):
        matched = set()
        for doc in docs:
            value = doc.get("due")
            candidates = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, datetime)]
            if (ids is None or doc["_id"] in ids) and all(
                any(_COMPARISONS[op](v, bound) for v in candidates) for op, bound in bounds.items()
            ):
                matched.add(doc["_id"])
        return matched

    points = [datetime(1800, 1, 1), datetime(2000, 1, 1), datetime(9999, 1, 1)] + dates
    ranges = [{op: point} for op in _COMPARISONS for point in points]
    ranges += [{"$gte": datetime(1969, 1, 1), "$lte": datetime(2024, 6, 1)}]
    ranges += [{"$gt": datetime(2024, 6, 1), "$lt": datetime(2286, 11, 20, 17, 46, 40)}]
    ranges += [{"$gte": datetime(2001, 1, 1), "$lt": datetime(2200, 1, 1)}]  # [1900, 2300] matches with two elements
    for bounds in ranges:
        found = {doc["_id"] for doc in scratch.clocks.find({"due": bounds})}
        assert found == expected(bounds), bounds
        assert scratch.clocks.count_documents({"due": bounds}) == len(expected(bounds)), bounds
        for one in ("v1", "v5", "v11", "v20"):
            found = {doc["_id"] for doc in scratch.clocks.find({"_id": one, "due": bounds})}
            assert found == expected(bounds, {one}), (one, bounds)
