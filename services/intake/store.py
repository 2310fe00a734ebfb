"""The only module that touches intake's collections: tickets, topics, idempotency keys, timeline."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.intake.domain import DEFAULT_TOPICS, Ticket
from shared import outbox
from shared.access import ListScope
from shared.cursors import Key, Paginator
from shared.documents import VersionedStore
from shared.mongo import ensure_document, next_sequence
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
    "closed_at",
    "watermarks",
)

NEWEST_TICKETS_FIRST = Paginator((Key("n", "number", int),), descending=True)
NOTIFICATION_TYPES = ("notification.sent", "notification.failed")
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
        projection = {**outbox.NO_OUTBOX, "thread": 0}
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

    def resolved_before(self, moment: datetime, limit: int = 200) -> list[str]:
        query = {"status": "resolved", "resolved_at": {"$lte": moment}}
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1}).limit(limit)]


class TopicStore:
    """Help topics; the ids are cached for a few seconds, since every new ticket checks its topic."""

    CACHE_SECONDS = 5.0

    def __init__(self, db: Database) -> None:
        self.collection = db["topics"]
        self._ids: frozenset[str] = frozenset()
        self._fresh_until = 0.0

    def seed_defaults(self) -> None:
        for topic_id, name in DEFAULT_TOPICS:
            ensure_document(self.collection, {"_id": topic_id, "name": name})

    def all(self) -> list[dict]:
        return [{"id": doc["_id"], "name": doc["name"]} for doc in self.collection.find().sort("_id", ASCENDING)]

    def known(self, topic_id: str) -> bool:
        if time.monotonic() >= self._fresh_until or topic_id not in self._ids:
            self._ids = frozenset(doc["_id"] for doc in self.collection.find({}, {"_id": 1}))
            self._fresh_until = time.monotonic() + self.CACHE_SECONDS
        return topic_id in self._ids

    def put(self, topic_id: str, name: str) -> dict:
        try:
            self.collection.update_one({"_id": topic_id}, {"$set": {"name": name}}, upsert=True)
        except DuplicateKeyError:  # a concurrent PUT created it: now it exists, so set its name
            self.collection.update_one({"_id": topic_id}, {"$set": {"name": name}})
        self._fresh_until = 0.0
        return {"id": topic_id, "name": name}


class IdempotencyKeys:
    """Idempotency-Key records: key -> (hash of the request, the ticket it created). Kept 48 h."""

    KEEP = timedelta(hours=48)

    def __init__(self, db: Database) -> None:
        self.collection = db["idempotency_keys"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("created_at", ASCENDING)])

    def claim(self, key: str, request_hash: str, ticket_id: str, now: datetime) -> dict:
        """Record the key for this ticket, or return the record that already holds it."""
        record = {"_id": key, "request_hash": request_hash, "ticket_id": ticket_id, "created_at": now}
        try:
            self.collection.insert_one(record)
            return record
        except DuplicateKeyError:
            existing = self.collection.find_one({"_id": key})
            return existing or record

    def expire(self, now: datetime) -> int:
        return self.collection.delete_many({"created_at": {"$lt": now - self.KEEP}}).deleted_count


class RateLimits:
    """Fixed-window counters of what a requester address did: one document per (action, address, window)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["rate_limits"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("expires_at", ASCENDING)])

    def hit(self, key: str, expires_at: datetime) -> int:
        """Count one more under the key (its window ends at expires_at); the count so far, this one included."""
        doc = self.collection.find_one_and_update({"_id": key}, {"$inc": {"count": 1}}, return_document=True)
        if doc is None:
            ensure_document(self.collection, {"_id": key, "count": 0, "expires_at": expires_at})
            doc = self.collection.find_one_and_update({"_id": key}, {"$inc": {"count": 1}}, return_document=True)
        return int(doc["count"])

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
        self, ticket_id: str, limit: int, cursor: str | None, for_requester: bool = False
    ) -> tuple[list[dict], str | None]:
        """The ticket's events, oldest first; the cursor is the last one's (occurred_at, id).

        For a requester: only the events with a requester summary, which stands in for the summary.
        """
        filters = {"ticket_id": ticket_id}
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
        self.collection.create_index([("ticket_id", ASCENDING), ("received_at", ASCENDING)])
        self.collection.create_index([("outcome", ASCENDING), ("received_at", DESCENDING)])
        self.collection.create_index([("received_at", DESCENDING)])

    def find(self, key: str) -> dict | None:
        return self.collection.find_one({"_id": key})

    def finish(self, key: str, record: dict) -> None:
        """Record the mail's outcome; a record already there (the same mail, another process) stays as it is."""
        try:
            self.collection.insert_one({**record, "_id": key})
        except DuplicateKeyError:
            pass

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
    if scope.requester_email:  # their own tickets, whatever requester_email they asked for
        narrowed = {**filters, "requester.email": scope.requester_email}
        return narrowed | ({"_id": scope.ticket_id} if scope.ticket_id else {})
    if scope.agent_id:
        return {**filters, "$or": [{"team": {"$in": list(scope.teams)}}, {"assignee.agent_id": scope.agent_id}]}
    return {**filters, "_id": {"$in": []}}
