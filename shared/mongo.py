"""MongoDB access: one client per process, opened lazily after gunicorn forks, never at import."""

from __future__ import annotations

import os
import threading

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.config import Settings

_lock = threading.Lock()
_client: MongoClient | None = None
_client_key: tuple[int, str] | None = None


def client(settings: Settings) -> MongoClient:
    """The process's client; a forked child opens its own instead of reusing the parent's sockets."""
    global _client, _client_key
    key = (os.getpid(), settings.mongo_url)
    if _client_key != key:
        with _lock:
            if _client_key != key:
                _client = MongoClient(
                    settings.mongo_url,
                    tz_aware=True,
                    serverSelectionTimeoutMS=settings.mongo_timeout_ms,
                    connectTimeoutMS=settings.mongo_timeout_ms,
                    appname=f"ticketflow-{os.getpid()}",
                )
                _client_key = key
    return _client


def database(settings: Settings, service: str) -> Database:
    """The service's own database, `<ns>_<service>`."""
    return client(settings)[settings.database_name(service)]


def ping(settings: Settings) -> bool:
    try:
        client(settings).admin.command("ping")
        return True
    except PyMongoError:
        return False


def ensure_document(collection, doc: dict) -> None:
    """Insert a document unless one with its _id exists (seeds, counters)."""
    try:
        collection.insert_one(doc)
    except DuplicateKeyError:
        pass


def next_sequence(db: Database, name: str, start: int) -> int:
    """Increase a named counter atomically and return the new value (unique, increasing)."""
    counters = db["counters"]
    doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}}, return_document=True)
    if doc is None:
        ensure_document(counters, {"_id": name, "value": start - 1})
        doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}}, return_document=True)
    return int(doc["value"])


def due_by(collection, field: str, until, limit: int, fields: tuple[str, ...] = ()) -> list[dict]:
    """Up to `limit` documents whose date `field` is at most `until`, soonest first (the `_id`, `field`, `fields`).

    No sort in the query: the range is read along the field's index, so it comes in index order anyway,
    and FerretDB stops after `limit` documents, whereas with a sort it reads and sorts every match first
    (a backlog of 100,000 due clocks after an outage: 23 s a pass). The batch is sorted here instead.
    """
    projection = dict.fromkeys((field, *fields), 1)
    docs = collection.find({field: {"$lte": until}}, projection).limit(limit)
    return sorted(docs, key=lambda doc: doc[field])


def close_client() -> None:
    """Close the process's client, if one is open; the next client() call opens a new one."""
    global _client, _client_key
    with _lock:
        if _client is not None:
            _client.close()
        _client, _client_key = None, None


class Stale(Exception):
    """Someone saved the document since it was read: read it again and retry."""
