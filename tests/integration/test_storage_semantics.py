"""The wire server honours what the services rely on: MongoDB's atomic single-document writes.

FerretDB v1.24.2 with SQLite reads documents, changes them and writes them back in separate steps,
so concurrent updates of one document lose writes. `make tools` builds it with
scripts/ferretdb.patch; these tests fail loudly on a server without that guarantee.
"""

from __future__ import annotations

import threading

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
