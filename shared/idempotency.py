"""Which events a service's consumer has already handled: a redelivered event has no second effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

KEEP = timedelta(days=7)


class ProcessedEvents:
    """A record per handled event, written after its handler: the consumer's count of first and repeated deliveries.

    Nothing is looked up before a handler runs: every handler is idempotent anyway (it must be, since a worker
    may die between the handler's write and this record, and the records expire), so a check before each
    delivery would cost a read per event to spare work only on the rare repeat.
    """

    def __init__(self, db: Database) -> None:
        self.collection = db["processed_events"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("at", ASCENDING)])

    def mark(self, event_id: str) -> bool:
        """Record the event as handled; False when it was already (this delivery was a repeat)."""
        try:
            self.collection.insert_one({"_id": event_id, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            return False
        return True

    def expire(self, keep: timedelta = KEEP) -> int:
        """Forget old records (FerretDB has no TTL indexes, so a timer calls this)."""
        return self.collection.delete_many({"at": {"$lt": datetime.now(UTC) - keep}}).deleted_count
