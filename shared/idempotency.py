"""Which events a service's consumer has already handled: a redelivered event has no second effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

KEEP = timedelta(days=7)


class ProcessedEvents:
    def __init__(self, db: Database) -> None:
        self.collection = db["processed_events"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("at", ASCENDING)])

    def seen(self, event_id: str) -> bool:
        return self.collection.find_one({"_id": event_id}, {"_id": 1}) is not None

    def mark(self, event_id: str) -> None:
        try:
            self.collection.insert_one({"_id": event_id, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass

    def expire(self, keep: timedelta = KEEP) -> int:
        """Forget old records (FerretDB has no TTL indexes, so a timer calls this)."""
        return self.collection.delete_many({"at": {"$lt": datetime.now(UTC) - keep}}).deleted_count
