"""MongoDB access: one client per process, opened lazily after gunicorn forks, never at import."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from queue import Empty, Queue
from typing import TypeVar

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError

from shared.config import Settings

T = TypeVar("T")

_lock = threading.Lock()
_client: MongoClient | None = None
_client_key: tuple[int, str] | None = None
# how often the driver checks the server (pymongo's default: 10 s). A server that hangs rather than refusing is
# noticed only when a check times out, and the requests waiting on it are cancelled then: measured with FerretDB
# stopped, a request waited 19 s with the default and 11 s with this (two checks of TICKETFLOW_MONGO_TIMEOUT_MS)
HEARTBEAT_MS = 2000


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
                    heartbeatFrequencyMS=HEARTBEAT_MS,
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


# --- a database known to be down: requests answer at once instead of each waiting out the timeout ---------

DOWN_FOR = 2.0  # seconds: how long a process trusts a server selection that timed out (the Retry-After given)
_down_until: dict[str, float] = {}  # MONGO_URL -> time.monotonic(); a forked child starts with its parent's
_down_lock = threading.Lock()


class StorageDown(ConnectionFailure):
    """Refused without asking the database: it did not answer this process a moment ago (see note_failure)."""


def note_failure(settings: Settings, exc: BaseException) -> None:
    """A request failed for the database: if no server could be selected at all, the database is down.

    For DOWN_FOR seconds after that, `known_down()` is true, and the apis refuse requests that need the
    database at once (503): without it, every request of an outage waits out the selection timeout
    (TICKETFLOW_MONGO_TIMEOUT_MS, 5 s), holding a worker, and the requests queued behind them wait for
    minutes. A single broken connection (AutoReconnect) says nothing of the next one and does not count.
    """
    if isinstance(exc, ServerSelectionTimeoutError):
        with _down_lock:
            _down_until[settings.mongo_url] = time.monotonic() + DOWN_FOR


def known_down(settings: Settings) -> bool:
    """Whether a request that needs the database should be refused at once (call it only for those).

    Once DOWN_FOR has passed, this call's request is the one let through to ask the database, and the window
    is stretched over its selection timeout meanwhile: the other requests keep being answered at once until
    its answer comes (a timeout again: note_failure; an answer: note_answer), instead of each of them waiting
    out the timeout too.
    """
    if not _down_until:
        return False
    with _down_lock:
        until = _down_until.get(settings.mongo_url)
        if until is None:
            return False
        now = time.monotonic()
        if now < until:
            return True
        _down_until[settings.mongo_url] = now + settings.mongo_timeout_ms / 1000 + DOWN_FOR
        return False


def note_answer(settings: Settings) -> None:
    """A request that needed the database was answered without a storage failure: the database is back."""
    if _down_until:
        with _down_lock:
            _down_until.pop(settings.mongo_url, None)


def ensure_document(collection, doc: dict) -> None:
    """Insert a document unless one with its _id exists (seeds, counters)."""
    try:
        collection.insert_one(doc)
    except DuplicateKeyError:
        pass


def retire_indexes(collection, *names: str) -> None:
    """Drop indexes that a newer one replaced (a name that is not there is fine): a deployment that ran an older
    version keeps no index that nothing reads, and every write maintains."""
    present = set(collection.index_information())
    for name in names:
        if name in present:
            collection.drop_index(name)


def upserted(write: Callable[[], T]) -> T | None:
    """An upsert whose filter holds more than `_id`; None when the document exists and does not match.

    Such an upsert meets the document as it is (filter unmatched: it inserts, and the duplicate _id says
    so) or, on MongoDB, loses a race with another upsert creating it (MongoDB retries that itself only for
    a filter of equalities on the key). Once more, then: the document is there now, so the write either
    matches it or truly finds it newer."""
    for attempt in range(2):
        try:
            return write()
        except DuplicateKeyError:
            if attempt:
                return None
    return None


def next_sequence(db: Database, name: str, start: int) -> int:
    """Increase a named counter atomically and return the new value (unique, increasing)."""
    counters = db["counters"]
    doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}}, return_document=True)
    if doc is None:
        ensure_document(counters, {"_id": name, "value": start - 1})
        doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}}, return_document=True)
    return int(doc["value"])


def due_by(
    collection, field: str, until, limit: int, fields: tuple[str, ...] = (), where: dict | None = None
) -> list[dict]:
    """Up to `limit` documents whose date `field` is at most `until`, soonest first (the `_id`, `field`, `fields`).

    No sort in the query: the range is read along the field's index, so it comes in index order anyway,
    and FerretDB stops after `limit` documents, whereas with a sort it reads and sorts every match first
    (a backlog of 100,000 due clocks after an outage: 23 s a pass). The batch is sorted here instead.
    """
    projection = dict.fromkeys((field, *fields), 1)
    docs = collection.find({**(where or {}), field: {"$lte": until}}, projection).limit(limit)
    return sorted(docs, key=lambda doc: doc[field])


def read_ahead(cursors: list[Iterable[dict]], batch: int, batches: int = 2) -> Iterator[dict]:
    """The documents of the cursors, each read by a thread of its own, up to `batches` batches a cursor ahead
    of the caller (in the order they arrive: a cursor's in its order, the cursors' interleaved).

    The server prepares the next batches, of several cursors at once (FerretDB answers each query on one
    core), while the caller works on this one, instead of server and caller waiting for each other in turn.
    An error of a read is raised to the caller; the caller stopping early stops the reads.
    """
    done = object()
    queue: Queue = Queue(maxsize=batches * len(cursors))
    stop = threading.Event()

    def read(cursor) -> None:
        try:
            for chunk in _chunks(cursor, batch):
                if stop.is_set():
                    return
                queue.put(chunk)
            queue.put(done)
        except BaseException as exc:  # handed to the caller, which raises it
            queue.put(exc)
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    readers = [threading.Thread(target=read, args=(cursor,), name="read-ahead", daemon=True) for cursor in cursors]
    for reader in readers:
        reader.start()

    def documents() -> Iterator[dict]:
        try:
            running = len(readers)
            while running:
                chunk = queue.get()
                if chunk is done:
                    running -= 1
                elif isinstance(chunk, BaseException):
                    raise chunk
                else:
                    yield from chunk
        finally:
            stop.set()
            while any(reader.is_alive() for reader in readers):  # a reader blocked on a full queue sees `stop`
                with contextlib.suppress(Empty):
                    queue.get_nowait()
                readers[0].join(0.01)

    return documents()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def close_client() -> None:
    """Close the process's client, if one is open; the next client() call opens a new one."""
    global _client, _client_key
    with _lock:
        if _client is not None:
            _client.close()
        _client, _client_key = None, None


class Stale(Exception):
    """Someone saved the document since it was read: read it again and retry."""
