"""Which events a service's consumer has already handled: a redelivered event has no second effect."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

KEEP = timedelta(days=7)
RECORD_EVERY = 0.25  # seconds between two writes of the records noted meanwhile (the worker's timer)
RECORD_AT = 100  # or as soon as this many wait
KEEP_PENDING = 50_000  # while the database is away: the oldest records beyond this many are given up

log = logging.getLogger(__name__)


class ProcessedEvents:
    """A record per handled event, written after its handler: the consumer's count of first and repeated deliveries.

    Nothing is looked up before a handler runs: every handler is idempotent anyway (it must be, since a worker
    may die between the handler's write and this record, and the records expire), so a check before each
    delivery would cost a read per event to spare work only on the rare repeat.

    The consumer notes each handled event (`note`) and the records are written together (`flush`: every
    RECORD_EVERY seconds by a timer of the worker, at RECORD_AT waiting, and when the worker stops), one
    write for many events instead of one each: a record says when its handler finished, and whether the
    delivery was the first is known once it is written. A worker killed (SIGKILL) loses the records of its
    last fraction of a second; its events are handled all the same, only not counted.
    """

    def __init__(self, db: Database) -> None:
        self.collection = db["processed_events"]
        self._pending: list[tuple[str, datetime, Callable[[bool], None] | None]] = []
        self._lock = threading.Lock()  # the pending list
        self._writing = threading.Lock()  # one flush at a time, so records are written in their order

    def ensure_indexes(self) -> None:
        self.collection.create_index([("at", ASCENDING)])

    def mark(self, event_id: str) -> bool:
        """Record the event as handled now; False when it was already (this delivery was a repeat)."""
        try:
            self.collection.insert_one({"_id": event_id, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            return False
        return True

    def note(self, event_id: str, recorded: Callable[[bool], None] | None = None) -> None:
        """Record the event as handled with the next flush; `recorded(first)` is called once it is written.

        Never raises: a write of a full batch that fails here leaves the records to the timer's next flush
        (the handler of the event that filled the batch has succeeded; its delivery must not look failed)."""
        with self._lock:
            self._pending.append((event_id, datetime.now(UTC), recorded))
            full = len(self._pending) >= RECORD_AT
        if full:
            try:
                self.flush()
            except PyMongoError as exc:
                log.warning(
                    "processed-event records not written yet (%s); the next flush tries again", type(exc).__name__
                )

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        """Write the records noted so far; what the database did not take waits for the next flush."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            repeats: set[int] = set()
            failed: set[int] = set()
            try:
                self.collection.insert_many([{"_id": e, "at": at} for e, at, _ in batch], ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                repeats = {error["index"] for error in errors if error.get("code") == 11000}
                if failed := {error["index"] for error in errors if error.get("code") != 11000}:
                    self._give_back([batch[i] for i in sorted(failed)])
                    first = next(error for error in errors if error.get("code") != 11000)
                    log.warning("%d processed-event records not written (the first: %s); trying again",
                                len(failed), first.get("errmsg"))  # fmt: skip
            except PyMongoError:  # written or not: a record written already comes back as a repeat (the metric's)
                self._give_back(batch)
                raise
            for i, (_, _, recorded) in enumerate(batch):
                if recorded is not None and i not in failed:
                    recorded(i not in repeats)

    def _give_back(self, rows: list) -> None:
        with self._lock:
            self._pending[:0] = rows  # before what was noted meanwhile: the order of the handlers
            if (extra := len(self._pending) - KEEP_PENDING) > 0:
                del self._pending[:extra]
                log.error("%d processed-event records given up: the database has been away too long", extra)

    def expire(self, keep: timedelta = KEEP) -> int:
        """Forget old records (FerretDB has no TTL indexes, so a timer calls this)."""
        return self.collection.delete_many({"at": {"$lt": datetime.now(UTC) - keep}}).deleted_count
