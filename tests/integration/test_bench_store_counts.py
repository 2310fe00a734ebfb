"""The benchmarks count store calls from serverStatus: the session's server (FerretDB or MongoDB) must answer it."""

from __future__ import annotations

from pymongo import MongoClient

from benchmarks.meters import StoreCommands, command_deltas


def test_the_server_counts_each_command_it_receives(infra):
    store, client = StoreCommands(infra.mongo_url), MongoClient(infra.mongo_url)
    collection = client[f"{infra.namespace}_benchmeters"]["counted"]
    try:
        before = store.read()
        collection.insert_one({"_id": 1})
        collection.insert_one({"_id": 2})
        collection.find_one({"_id": 1})
        collection.find_one_and_update({"_id": 2}, {"$set": {"seen": True}})
        calls = command_deltas(before, store.read())
        # server-wide: other clients of a shared server may add to them, never take away
        assert calls.get("insert", 0) >= 2
        assert calls.get("find", 0) >= 1
        assert calls.get("findAndModify", 0) >= 1
        assert store.label in ("FerretDB", "MongoDB")
    finally:
        client.drop_database(collection.database.name)
        client.close()
        store.close()
