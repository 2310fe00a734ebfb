"""Getting outbox events onto the broker: at once after the write (flusher), later if that failed (relay).

The flusher, a thread of every process that writes, publishes just-stored events and clears them.
When it cannot (broker down, no queue bound yet), it leaves a marker in the small `outbox_pending`
collection, which the worker's relay polls; a process that died between write and publish is
found by the relay's periodic sweep for documents whose `_outbox_due` has passed.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from datetime import timedelta

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared import outbox
from shared.bus import Publisher, PublishError
from shared.clock import now
from shared.config import Settings

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
RETRY_AFTER = timedelta(seconds=2)
KEEPALIVE = 10.0  # seconds; well within the 30 s heartbeat
BATCH = 50  # documents whose events the flusher publishes before clearing them together
WAITING_AT_MOST = 500  # documents the flusher holds; past them, a write's events go to the relay's markers at once


def publish_entries(publisher: Publisher, staged: dict[str, dict]) -> tuple[list[str], bool]:
    """Publish in order; stop at the first failure. Returns the published ids and whether all went out."""
    published = []
    for event_id, entry in outbox.ordered(staged):
        try:
            publisher.publish_entry(event_id, entry)
        except PublishError as exc:
            log.info("event %s (%s) stays in the outbox: %s", event_id, entry["type"], exc)
            return published, False
        published.append(event_id)
    return published, True


class PendingOutboxes:
    """Markers of documents whose events still wait to be published: {_id: "<collection>:<doc id>", due}."""

    def __init__(self, db: Database) -> None:
        self.collection = db["outbox_pending"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("due", 1)])

    def mark(self, collection: Collection, doc_id, delay: timedelta = RETRY_AFTER) -> None:
        marker = {"collection": collection.name, "doc_id": doc_id, "due": now() + delay}
        key = f"{collection.name}:{doc_id}"
        try:
            self.collection.update_one({"_id": key}, {"$set": marker}, upsert=True)
        except DuplicateKeyError:  # two upserts raced: the marker exists now, so set its due date
            self.collection.update_one({"_id": key}, {"$set": marker})

    def due(self, limit: int) -> list[dict]:
        return list(self.collection.find({"due": {"$lte": now()}}).limit(limit))

    def lease(self, marker: dict) -> dict | None:
        """Take a marker for LEASE so that two relays do not work on it at once."""
        until = now() + LEASE
        done = self.collection.update_one({"_id": marker["_id"], "due": marker["due"]}, {"$set": {"due": until}})
        return {**marker, "due": until} if done.modified_count else None

    def done(self, marker: dict) -> None:
        """Remove the marker unless someone marked the document again meanwhile."""
        self.collection.delete_one({"_id": marker["_id"], "due": marker["due"]})


class OutboxFlusher:
    """A background thread of the process: publishes just-stored events at once, then clears them."""

    def __init__(self, settings: Settings, service: str, pending: PendingOutboxes) -> None:
        self.settings, self.service, self.pending = settings, service, pending
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, collection: Collection, doc_id, staged: dict[str, dict], version: int | None) -> None:
        if not staged:
            return
        self._start()
        if self._queue.qsize() < WAITING_AT_MOST:
            self._queue.put((collection, doc_id, staged, version))
            return
        # The broker holds the flusher (a memory or disk alarm blocks publishers for half a minute a try): the
        # events wait in the store, for the relay, not in this process's memory (a plumbing review's find).
        try:
            self.pending.mark(collection, doc_id)
        except PyMongoError as exc:  # the sweep finds the document once its due date passes
            log.warning("could not mark the outbox of %s: %r", doc_id, exc)

    def _start(self) -> None:
        with self._lock:  # also after a fork: the child has no thread yet
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=f"{self.service}-outbox", daemon=True)
                self._thread.start()
                atexit.register(self.drain, 3.0)  # a worker shutting down publishes what it just stored

    def _loop(self) -> None:
        publisher = Publisher(self.settings, self.service)
        while True:
            try:
                batch = [self._queue.get(timeout=KEEPALIVE)]
            except queue.Empty:
                publisher.keepalive()
                continue
            while len(batch) < BATCH:  # what else is waiting: its clears go in one round trip with these
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._publish(publisher, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _publish(self, publisher: Publisher, batch: list[tuple]) -> None:
        """Publish each document's events, then clear those of all (one write per collection when they all
        went out); a document whose events did not all go out is cleared of those that did, and marked, as are
        the documents after it in the batch, untried."""
        cleared: dict[str, tuple[Collection, list]] = {}
        failed = False
        for collection, doc_id, staged, version in batch:
            # after a failure, the rest of the batch goes to the relay untried: each try could wait as long again
            published, complete = ([], False) if failed else publish_entries(publisher, staged)
            failed = failed or not complete
            try:
                if complete:
                    cleared.setdefault(collection.full_name, (collection, []))[1].append((doc_id, published, version))
                    continue
                outbox.clear(collection, doc_id, published)
                self.pending.mark(collection, doc_id)
            except PyMongoError as exc:  # the sweep finds the document once its due date passes
                log.warning("could not clear the outbox of %s: %r", doc_id, exc)
        for collection, published in cleared.values():
            try:
                outbox.clear_many(collection, published)
            except PyMongoError as exc:
                log.warning("could not clear the outboxes of %d documents: %r", len(published), exc)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted has been tried (tests and shutdown); whether it was, within timeout."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        return done.wait(timeout)


def outbox_for(settings: Settings, service: str, db: Database) -> tuple[PendingOutboxes, OutboxFlusher]:
    """A service's outbox plumbing on its database: the markers for the relay, and the flusher writing to them."""
    pending = PendingOutboxes(db)
    return pending, OutboxFlusher(settings, service, pending)


class OutboxRelay:
    """The worker's side: publishes marked documents, and sweeps for documents nobody marked."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        pending: PendingOutboxes,
        collections: list[Collection],
        batch: int = 200,
    ) -> None:
        self.pending, self.batch = pending, batch
        self.collections = {collection.name: collection for collection in collections}
        self.publisher = Publisher(settings, service)

    def ensure_indexes(self) -> None:
        self.pending.ensure_indexes()
        for collection in self.collections.values():
            collection.create_index([(outbox.DUE, 1)])

    def run_once(self) -> int:
        """Publish the events of every due marker; returns how many went out."""
        self.publisher.keepalive()
        total = 0
        for marker in self.pending.due(self.batch):
            leased = self.pending.lease(marker)
            collection = self.collections.get(marker["collection"])
            if leased is None or collection is None:
                continue
            doc = collection.find_one({"_id": marker["doc_id"]}) or {}
            published, complete = publish_entries(self.publisher, doc.get(outbox.FIELD) or {})
            outbox.clear(collection, marker["doc_id"], published)
            total += len(published)
            if complete:
                self.pending.done(leased)
                continue
            self.pending.mark(collection, marker["doc_id"])
            if not self.publisher.connected:  # the broker is away: the other markers wait, untouched, for it
                break
        return total

    def sweep(self) -> int:
        """Mark documents whose events are overdue (their writer died before publishing them)."""
        found = 0
        for collection in self.collections.values():
            overdue = collection.find({outbox.DUE: {"$lte": now()}}, {"_id": 1}).limit(self.batch)
            for doc in overdue:
                self.pending.mark(collection, doc["_id"], delay=timedelta(0))
                found += 1
        return found

    def close(self) -> None:
        self.publisher.close()
