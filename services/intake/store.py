"""The only module that touches intake's collections: tickets, topics, idempotency keys, timeline, attachments."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Container
from datetime import datetime, timedelta

from bson import Binary
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.intake.domain import DEFAULT_TOPIC, DEFAULT_TOPICS, Ticket
from shared import outbox
from shared.access import ListScope, same_email
from shared.clock import now
from shared.cursors import Key, Paginator
from shared.documents import VersionedStore
from shared.mongo import ensure_document, next_sequence, retire_indexes
from shared.relay import OutboxFlusher

FIRST_NUMBER = 100001
_TICKET_FIELDS = (
    "number",
    "subject",
    "description",
    "requester",
    "topic",
    "priority",
    "source",
    "status",
    "assignee",
    "team",
    "sla",
    "thread",
    "created_at",
    "updated_at",
    "resolved_at",
    "resolution",
    "earlier_resolutions",
    "merged_into",
    "closed_at",
    "mail_kept",
    "watermarks",
)

NEWEST_TICKETS_FIRST = Paginator((Key("n", "number", int),), descending=True)
DUPLICATE_KEY = 11000  # MongoDB's error code
NOTIFICATION_TYPES = ("notification.sent", "notification.failed")
WEBHOOK_LINE = {"$regex": "^Webhook about "}  # how a webhook's delivery reads on the timeline (domain.summarize)
OLDEST_EVENTS_FIRST = Paginator((Key("at", "occurred_at", datetime), Key("id", "_id", str)))
NEWEST_MAILS_FIRST = Paginator((Key("at", "received_at", datetime), Key("id", "_id", str)), descending=True)


class TicketStore(VersionedStore):
    kind, model, fields = "ticket", Ticket, _TICKET_FIELDS

    def __init__(self, db: Database, flusher: OutboxFlusher | None = None) -> None:
        super().__init__(db["tickets"], flusher)
        self.db = db

    def ensure_indexes(self) -> None:
        self.collection.create_index([("number", DESCENDING)], unique=True)
        self.collection.create_index([("requester.email", ASCENDING), ("number", DESCENDING)])
        self.collection.create_index([("status", ASCENDING), ("number", DESCENDING)])
        self.collection.create_index([("topic", ASCENDING), ("number", DESCENDING)])
        # an agent's list, its teams' tickets or its own: one walk per team and one of its own, merged by number
        self.collection.create_index([("team", ASCENDING), ("number", DESCENDING)])
        self.collection.create_index([("assignee.agent_id", ASCENDING), ("number", DESCENDING)])
        self.collection.create_index([("status", ASCENDING), ("resolved_at", ASCENDING)])
        ensure_document(self.db["counters"], {"_id": "ticket_number", "value": FIRST_NUMBER - 1})

    def derived(self, ticket: Ticket) -> dict:
        return {"thread_count": len(ticket.thread)}  # for lists, which never read the thread

    def next_number(self) -> int:
        return next_sequence(self.db, "ticket_number", FIRST_NUMBER)

    def page(
        self, filters: dict, limit: int, cursor: str | None, scope: ListScope | None = None
    ) -> tuple[list[tuple[Ticket, int]], str | None]:
        """Newest first, each ticket without its thread (empty) and with its thread's length; the cursor is the
        last number seen. `scope`: only the tickets one reader may see (None: every ticket)."""
        filters = _scoped(filters, scope)
        projection = {**outbox.NO_OUTBOX, "thread": 0, "earlier_resolutions": 0}
        docs, next_cursor = NEWEST_TICKETS_FIRST.page(self.collection, filters, limit, cursor, projection)
        unknown = [doc["_id"] for doc in docs if "thread_count" not in doc]  # saved before thread_count was
        counts = {
            doc["_id"]: len(doc.get("thread") or [])
            for doc in (self.collection.find({"_id": {"$in": unknown}}, {"thread.id": 1}) if unknown else [])
        }
        return [(self.from_doc(doc), doc.get("thread_count", counts.get(doc["_id"], 0))) for doc in docs], next_cursor

    def find_by_number(self, number: int) -> Ticket | None:
        doc = self.collection.find_one({"number": number}, {"_id": 1})
        return self.find(doc["_id"]) if doc else None

    def open_follow_up(self, email: str, number: int, prefix: str, looked_at: int = 50) -> Ticket | None:
        """The requester's newest ticket not closed that a mail opened to follow up closed ticket #`number`, among
        its newest `looked_at` mailed ones opened after it; None if none.

        Only mail in marks a ticket as one (`follows_up`, written with it): a ticket anyone may open on the web form
        under the requester's address, with the same words, must not receive the requester's mail. A follow-up
        opened before the mark was written is known by its description starting with `prefix`, mailed ones only."""
        query = {"requester.email": email.strip().lower(), "number": {"$gt": number}, "status": {"$ne": "closed"},
                 "source": "email"}  # fmt: skip
        fields = {"_id": 1, "description": 1, "follows_up": 1}
        found = self.collection.find(query, fields).sort("number", DESCENDING).limit(looked_at)
        return next((self.find(doc["_id"]) for doc in found if _follows_up(doc, number, prefix)), None)

    def resolved_before(self, moment: datetime, limit: int = 200, without: list[str] | None = None) -> list[str]:
        """Up to `limit` tickets resolved at or before `moment`, but those `without`."""
        query = {"status": "resolved", "resolved_at": {"$lte": moment}} | (
            {"_id": {"$nin": without}} if without else {}
        )
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]


def _follows_up(doc: dict, number: int, prefix: str) -> bool:
    if "follows_up" in doc:
        return doc["follows_up"] == number
    return (doc.get("description") or "").startswith(prefix)  # opened before mail in marked its follow-ups


class TopicStore:
    """Help topics; they are cached for a few seconds, since every new ticket checks its topic and the timeline
    names it."""

    CACHE_SECONDS = 5.0

    def __init__(self, db: Database) -> None:
        self.collection = db["topics"]
        self._ids: frozenset[str] = frozenset()  # those offered
        self._names: dict[str, str] = {}  # every topic's, retired ones too
        self._fresh_until = 0.0

    def _cached(self, topic_id: str, among: Callable[[], Container[str]]) -> None:
        """Read the topics again when the cache is old or `among()` lacks the topic."""
        if time.monotonic() >= self._fresh_until or topic_id not in among():
            docs = list(self.collection.find({}, {"name": 1, "retired": 1}))
            self._ids = frozenset(doc["_id"] for doc in docs if not doc.get("retired"))
            self._names = {doc["_id"]: doc["name"] for doc in docs}
            self._fresh_until = time.monotonic() + self.CACHE_SECONDS

    def seed_defaults(self) -> None:
        for topic_id, name in DEFAULT_TOPICS:
            ensure_document(self.collection, {"_id": topic_id, "name": name})

    def all(self, include_retired: bool = False) -> list[dict]:
        """The topics requesters choose from; with `include_retired`, also those retired from the form."""
        query = {} if include_retired else ACTIVE
        return [_topic(doc) for doc in self.collection.find(query).sort("_id", ASCENDING)]

    def known(self, topic_id: str) -> bool:
        """Whether a new ticket may take the topic (a retired one is not offered, nor taken)."""
        self._cached(topic_id, lambda: self._ids)
        return topic_id in self._ids

    def name(self, topic_id: str) -> str | None:
        """The topic's name (a retired one's too); None for a topic never stored."""
        self._cached(topic_id, lambda: self._names)
        return self._names.get(topic_id)

    def put(self, topic_id: str, name: str | None, retired: bool | None = None) -> dict | None:
        """Create or rename the topic; `retired` True takes it off the form, False brings it back, None keeps it.
        Without a name only an existing topic changes (None: there is none)."""
        change = {k: v for k, v in (("name", name), ("retired", retired)) if v is not None}
        if change:
            try:
                self.collection.update_one({"_id": topic_id}, {"$set": change}, upsert=name is not None)
            except DuplicateKeyError:  # a concurrent PUT created it: now it exists, so set its name
                self.collection.update_one({"_id": topic_id}, {"$set": change})
        self._fresh_until = 0.0
        found = self.collection.find_one({"_id": topic_id})
        return _topic(found) if found else None


ACTIVE = {"retired": {"$ne": True}}


def _topic(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "retired": bool(doc.get("retired")),
        "retirable": doc["_id"] != DEFAULT_TOPIC,
    }


class IdempotencyKeys:
    """Idempotency-Key records: key -> (hash of the request, the ticket it created). Kept 48 h."""

    KEEP = timedelta(hours=48)

    def __init__(self, db: Database) -> None:
        self.collection = db["idempotency_keys"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("created_at", ASCENDING)])

    def claim(self, key: str, request_hash: str, ticket_id: str, now: datetime) -> dict:
        """Record the key for this ticket, or return the record that already holds it."""
        return self.claimed(key, request_hash, ticket_id, now)[0]

    def claimed(self, key: str, request_hash: str, ticket_id: str, now: datetime) -> tuple[dict, bool]:
        """As `claim`, and whether this call recorded the key (False: an earlier request holds it)."""
        record = {"_id": key, "request_hash": request_hash, "ticket_id": ticket_id, "created_at": now}
        try:
            self.collection.insert_one(record)
            return record, True
        except DuplicateKeyError:
            existing = self.collection.find_one({"_id": key})
            return (existing, False) if existing else (record, True)

    def find(self, key: str) -> dict | None:
        return self.collection.find_one({"_id": key})

    def expire(self, now: datetime) -> int:
        return self.collection.delete_many({"created_at": {"$lt": now - self.KEEP}}).deleted_count


class RateLimits:
    """Fixed-window counters of what a requester address did: one document per (action, address, window)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["rate_limits"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("expires_at", ASCENDING)])

    def hit(self, key: str, expires_at: datetime) -> int:
        """Count one more under the key (its window ends at expires_at); the count so far, this one included.

        One round trip, also for a window's first hit (an upsert): most addresses open one ticket an hour, so
        a find, an insert and a find again would be the usual case, not the rare one.
        """
        count = {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}}
        try:
            doc = self.collection.find_one_and_update({"_id": key}, count, upsert=True, return_document=True)
        except DuplicateKeyError:  # two first hits raced and the other created it: count on that one
            doc = self.collection.find_one_and_update({"_id": key}, {"$inc": {"count": 1}}, return_document=True)
        return int(doc["count"])

    def first(self, key: str, value: str, expires_at: datetime) -> str:
        """The value the key's first holder gave in its window: `value` when this is the first, another's else."""
        claim = {"$setOnInsert": {"value": value, "expires_at": expires_at}}
        try:
            doc = self.collection.find_one_and_update({"_id": key}, claim, upsert=True, return_document=True)
        except DuplicateKeyError:  # two first claims raced and the other created it
            doc = self.collection.find_one({"_id": key})
        return str(doc.get("value"))

    def expire(self, now: datetime) -> int:
        return self.collection.delete_many({"expires_at": {"$lt": now}}).deleted_count


class TimelineStore:
    """Every event of every ticket, keyed by event_id (so recording twice keeps one)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["timeline"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("ticket_id", ASCENDING), ("occurred_at", ASCENDING), ("_id", ASCENDING)])

    def record(self, entry: dict) -> None:
        try:
            self.collection.insert_one({**entry, "_id": entry["event_id"]})
        except DuplicateKeyError:
            pass

    def page(
        self, ticket_id: str, limit: int, cursor: str | None, for_requester: bool = False, for_agent: bool = False
    ) -> tuple[list[dict], str | None]:
        """The ticket's events, oldest first; the cursor is the last one's (occurred_at, id).

        For a requester: only the events with a requester summary, which stands in for the summary. For an agent:
        no webhook's delivery (marked `webhook` since it was; before, known by its summary's first word).
        """
        filters: dict = {"ticket_id": ticket_id}
        if for_agent:
            filters["$nor"] = [{"webhook": True}, {"type": {"$in": list(NOTIFICATION_TYPES)}, "summary": WEBHOOK_LINE}]
        if for_requester:
            filters["$or"] = [
                {"requester_summary": {"$type": "string"}},
                # recorded before requester summaries: only notifications name recipients, URLs or errors
                {"requester_summary": {"$exists": False}, "type": {"$nin": list(NOTIFICATION_TYPES)}},
            ]
        items, next_cursor = OLDEST_EVENTS_FIRST.page(self.collection, filters, limit, cursor)
        if for_requester:
            items = [{**item, "summary": item.get("requester_summary") or item["summary"]} for item in items]
        return items, next_cursor


class InboundMailStore:
    """What each inbound mail became (services/intake/inbox.py), keyed by the mail; its raw bytes are a blob."""

    def __init__(self, db: Database) -> None:
        self.collection = db["inbound_mails"]

    def ensure_indexes(self) -> None:
        # The log's order ends with _id (mails of one moment): so do its indexes, or a page is sorted in memory.
        self.collection.create_index([("ticket_id", ASCENDING), ("received_at", ASCENDING)])
        self.collection.create_index([("outcome", ASCENDING), *NEWEST_MAILS_FIRST.order])
        self.collection.create_index(NEWEST_MAILS_FIRST.order)
        retire_indexes(self.collection, "outcome_1_received_at_-1", "received_at_-1")

    def find(self, key: str) -> dict | None:
        return self.collection.find_one({"_id": key})

    def finish(self, key: str, record: dict) -> None:
        """Record the mail's outcome; a record already there (the same mail, another process) stays as it is, but
        one of a mail given up on (`given_up`: polled, refused for a fault since mended) is replaced."""
        try:
            self.collection.insert_one({**record, "_id": key})
        except DuplicateKeyError:
            self.collection.replace_one({"_id": key, "given_up": True}, record)

    def of_ticket(self, ticket_id: str, limit: int = 200) -> list[dict]:
        """The mails about a ticket, oldest first."""
        return list(self.collection.find({"ticket_id": ticket_id}).sort("received_at", ASCENDING).limit(limit))

    def page(self, outcome: str | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
        """Newest first, of one outcome or all; the cursor is the last one's (received_at, id)."""
        return NEWEST_MAILS_FIRST.page(self.collection, {"outcome": outcome} if outcome else {}, limit, cursor)


def _scoped(filters: dict, scope: ListScope | None) -> dict:
    """The list's filters narrowed to a reader's scope; a scope of nothing still pages (a bad cursor is a 422)."""
    if scope is None:
        return filters
    if scope.requester_email:  # their own tickets; another address asked for: none (a prober's find: their own)
        asked = filters.get("requester.email")
        if asked is not None and not same_email(asked, scope.requester_email):
            return {**filters, "_id": {"$in": []}}
        narrowed = {**filters, "requester.email": scope.requester_email}
        return narrowed | ({"_id": scope.ticket_id} if scope.ticket_id else {})
    if scope.agent_id:
        return {**filters, "$or": [{"team": {"$in": list(scope.teams)}}, {"assignee.agent_id": scope.agent_id}]}
    return {**filters, "_id": {"$in": []}}


class BlobDamaged(RuntimeError):
    """A stored blob's chunks do not add up to what its metadata says (a chunk lost or overwritten)."""


class BlobStore:
    """Bytes of any size, like GridFS: chunks of at most 255 KiB in `blob_chunks` ({_id: "<blob_id>:<n>",
    blob_id, n, data}), and one document of metadata per blob in `blobs`, written after the last chunk.

    So a blob exists only once whole: a put that died half-way left chunks that nothing reads, and the next put
    of that blob_id writes them again. No transaction and no TTL index (FerretDB v1 has neither); reads go by
    _id, the one key FerretDB looks up without a scan (docs/benchmarks.md: why not pymongo's gridfs).
    """

    CHUNK_BYTES = 255 * 1024
    CHUNKS_PER_WRITE = 16  # about 4 MiB a round trip, far below a wire message's 48 MB

    def __init__(self, db: Database) -> None:
        self.blobs = db["blobs"]
        self.chunks = db["blob_chunks"]

    def ensure_indexes(self) -> None:
        self.chunks.create_index([("blob_id", ASCENDING), ("n", ASCENDING)])  # for people looking; reads use _id

    def put(self, blob_id: str, data: bytes, meta: dict) -> None:
        """Store the bytes under blob_id, once: a blob_id already stored is left as it is (ids name their bytes)."""
        if self.blobs.find_one({"_id": blob_id}, {"_id": 1}) is not None:
            return
        count = math.ceil(len(data) / self.CHUNK_BYTES)
        for first in range(0, count, self.CHUNKS_PER_WRITE):
            self._write_chunks(
                [self._chunk(blob_id, n, data) for n in range(first, min(first + self.CHUNKS_PER_WRITE, count))]
            )
        digest = hashlib.sha256(data).hexdigest()
        document = {"_id": blob_id, "length": len(data), "chunks": count, "chunk_bytes": self.CHUNK_BYTES}
        ensure_document(self.blobs, {**document, "sha256": digest, "meta": dict(meta), "created_at": now()})

    def _write_chunks(self, chunks: list[dict]) -> None:
        """Insert the chunks; one left by an earlier put that died half-way is written again, in case it differs.

        Inserts, not upserts, first: FerretDB spends about a fifth less on them (docs/benchmarks.md).
        """
        try:
            self.chunks.insert_many(chunks, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            again = [ReplaceOne({"_id": chunks[e["index"]]["_id"]}, chunks[e["index"]], upsert=True) for e in errors]
            self.chunks.bulk_write(again, ordered=False)

    def _chunk(self, blob_id: str, n: int, data: bytes) -> dict:
        piece = data[n * self.CHUNK_BYTES : (n + 1) * self.CHUNK_BYTES]
        return {"_id": f"{blob_id}:{n}", "blob_id": blob_id, "n": n, "data": Binary(piece)}

    def meta(self, blob_id: str) -> dict | None:
        """The meta given to put, with the blob's `length`, `sha256` and `created_at`; None for no (whole) blob."""
        document = self.blobs.find_one({"_id": blob_id})
        if document is None:
            return None
        return {**document["meta"], **{key: document[key] for key in ("length", "sha256", "created_at")}}

    def read(self, blob_id: str) -> bytes | None:
        """The bytes (checked against their length and sha256); None for no (whole) blob; BlobDamaged."""
        document = self.blobs.find_one({"_id": blob_id})
        if document is None:
            return None
        pieces = []
        for n in range(document["chunks"]):  # one lookup by _id each: no scan, on FerretDB too
            chunk = self.chunks.find_one({"_id": f"{blob_id}:{n}"}, {"data": 1})
            if chunk is None:
                raise BlobDamaged(f"blob {blob_id}: chunk {n} of {document['chunks']} is missing")
            pieces.append(bytes(chunk["data"]))
        data = b"".join(pieces)
        if len(data) != document["length"] or hashlib.sha256(data).hexdigest() != document["sha256"]:
            raise BlobDamaged(f"blob {blob_id}: its chunks do not match its length and sha256")
        return data


class AttachmentIdTaken(Exception):
    """The attachment id is another ticket's: ids are the caller's, and this one is not free."""


class AttachmentStore:
    """Files attached to tickets: what they are in `attachments`, their bytes in the BlobStore
    (blob id `attachment:<id>`). Ids come from the caller, deterministic (a mail redelivered, a form sent
    twice), so putting the same attachment again makes nothing new."""

    FIELDS = ("filename", "content_type", "size", "message_id", "created_at")

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.collection = db["attachments"]
        self.blobs = blobs

    def ensure_indexes(self) -> None:
        self.collection.create_index([("ticket_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])

    def put(
        self,
        ticket_id: str,
        attachment_id: str,
        filename: str,
        content_type: str,
        data: bytes,
        message_id: str | None,
        source: str,
    ) -> dict:
        """Store the file (the bytes first, then its record) and return its item; the same id again: the item
        stored before. AttachmentIdTaken when the id belongs to another ticket's file."""
        existing = self.collection.find_one({"_id": attachment_id})
        if existing is None:
            self.blobs.put(self._blob_id(attachment_id), data, {"ticket_id": ticket_id, "attachment_id": attachment_id})
            record = {"_id": attachment_id, "ticket_id": ticket_id, "filename": filename, "content_type": content_type,
                      "size": len(data), "message_id": message_id, "source": source, "created_at": now(),
                      "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
            ensure_document(self.collection, record)
            existing = self.collection.find_one({"_id": attachment_id})
        if existing["ticket_id"] != ticket_id:
            raise AttachmentIdTaken(attachment_id)
        return self._item(existing)

    def holds(self, ticket_id: str, data: bytes) -> bool:
        """Whether the ticket has a file of these very bytes (stored since files were known by their SHA-256)."""
        found = {"ticket_id": ticket_id, "sha256": hashlib.sha256(data).hexdigest()}
        return self.collection.find_one(found, {"_id": 1}) is not None

    def list(self, ticket_id: str) -> list[dict]:
        """The ticket's attachments, oldest first."""
        found = self.collection.find({"ticket_id": ticket_id}).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [self._item(document) for document in found]

    def get(self, ticket_id: str, attachment_id: str) -> tuple[dict, bytes] | None:
        """(item, bytes) of the ticket's attachment; None when the ticket has no such attachment."""
        document = self.collection.find_one({"_id": attachment_id, "ticket_id": ticket_id})
        data = self.blobs.read(self._blob_id(attachment_id)) if document else None
        return (self._item(document), data) if data is not None else None

    @staticmethod
    def _blob_id(attachment_id: str) -> str:
        return f"attachment:{attachment_id}"

    def _item(self, document: dict) -> dict:
        return {"id": document["_id"], **{key: document[key] for key in self.FIELDS}}
