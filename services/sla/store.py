"""The only module that touches sla's collections: policies (with their history), calendars, clocks, breaches.

Filters on the clocks are `_id` or a range on one indexed date (`next_due`, `created_at`): both are
index lookups on MongoDB and on the embedded FerretDB (see scripts/ferretdb.patch).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.sla import whatif
from services.sla.business_time import Calendar, parse_calendar
from services.sla.domain import ALWAYS, Policy, TicketClocks, default_policies
from shared import outbox
from shared.access import Stamp, StampedRecords
from shared.cursors import Key, Paginator
from shared.errors import NotFound
from shared.events import BY_URGENCY
from shared.mongo import Stale, due_by, ensure_document, read_ahead
from shared.relay import OutboxFlusher

POLICY_TERMS = ("first_response_minutes", "next_response_minutes", "resolution_minutes", "warn_at_percent", "calendar")
BREACH_FIELDS = ("ticket_id", "clock", "instance", "priority", "due_at", "breached_at", "policy_version")
HISTORY_BATCH = 1000  # tickets per batch read for a what-if
NEWEST_BREACHES_FIRST = Paginator((Key("at", "breached_at", datetime), Key("id", "_id", str)), descending=True)


class PolicyStore:
    """One document per priority: the current terms, `version`, and every earlier version under `versions`."""

    def __init__(self, db: Database) -> None:
        self.collection = db["policies"]

    def seed_defaults(self, at: datetime) -> None:
        for policy in default_policies().values():
            terms = self._terms(policy)
            first = {**terms, "version": policy.version, "changed_at": at}
            ensure_document(self.collection, {"_id": policy.priority, **first, "versions": [first]})

    def all(self) -> dict[str, Policy]:
        docs = {doc["_id"]: doc for doc in self.collection.find({}, {"versions": 0})}
        return {priority: self._policy(docs[priority]) for priority in BY_URGENCY if priority in docs}

    def get(self, priority: str) -> Policy:
        doc = self.collection.find_one({"_id": priority}, {"versions": 0}) if priority in BY_URGENCY else None
        if doc is None:
            raise NotFound(f"No policy for priority {priority!r}; priorities are {', '.join(BY_URGENCY)}.")
        return self._policy(doc)

    def changed_at(self, priority: str) -> datetime | None:
        doc = self.collection.find_one({"_id": priority}, {"changed_at": 1})
        return doc and doc.get("changed_at")

    def versions(self, priority: str) -> list[dict]:
        """Every version of the priority's policy, newest first."""
        self.get(priority)
        doc = self.collection.find_one({"_id": priority}, {"versions": 1}) or {}
        return sorted(doc.get("versions", []), key=lambda v: v["version"], reverse=True)

    def replace(self, current: Policy, terms: dict, at: datetime) -> Policy:
        """The next version with these terms, if `current` is still the latest (else Stale)."""
        version = {**terms, "warn_at_percent": list(terms["warn_at_percent"]), "version": current.version + 1}
        version["changed_at"] = at
        done = self.collection.update_one(
            {"_id": current.priority, "version": current.version}, {"$set": version, "$push": {"versions": version}}
        )
        if not done.matched_count:
            raise Stale(current.priority)
        return self._policy({"_id": current.priority, **version})

    @staticmethod
    def _terms(policy: Policy) -> dict:
        terms = {name: getattr(policy, name) for name in POLICY_TERMS}
        return terms | {"warn_at_percent": list(policy.warn_at_percent)}

    @staticmethod
    def _policy(doc: dict) -> Policy:
        terms = {name: doc[name] for name in POLICY_TERMS} | {"warn_at_percent": tuple(doc["warn_at_percent"])}
        return Policy(priority=doc["_id"], version=doc["version"], **terms)


class CalendarStore:
    """Calendars as their JSON form (timezone, weekly hours, holidays) plus `version`; parsed ones kept a second."""

    FRESH_SECONDS = 1.0

    def __init__(self, db: Database) -> None:
        self.collection = db["calendars"]
        self._parsed: dict[str, Calendar] = {}
        self._fresh_until = 0.0
        self._lock = threading.Lock()

    def documents(self) -> list[dict]:
        return [_hours_as_pairs(doc) for doc in self.collection.find().sort("_id", ASCENDING)]

    def document(self, calendar_id: str) -> dict:
        doc = self.collection.find_one({"_id": calendar_id})
        if doc is None:
            raise NotFound(f"No calendar {calendar_id!r}.")
        return _hours_as_pairs(doc)

    def ids(self) -> set[str]:
        return {ALWAYS} | {doc["_id"] for doc in self.collection.find({}, {"_id": 1})}

    def parsed(self, needed: set[str] = frozenset()) -> dict[str, Calendar]:
        """Every calendar, parsed; read again when a second old or when one of `needed` is missing."""
        with self._lock:
            if time.monotonic() >= self._fresh_until or not needed <= self._parsed.keys() | {ALWAYS}:
                self._parsed = {doc["_id"]: parse_calendar(doc["_id"], self._json(doc)) for doc in self.documents()}
                self._fresh_until = time.monotonic() + self.FRESH_SECONDS
            return {ALWAYS: Calendar.always(), **self._parsed}

    def put(self, calendar_id: str, raw: dict, at: datetime) -> tuple[dict, bool]:
        """Create or replace; returns (the stored document, whether it was created)."""
        fields = {**raw, "hours": {day: [f"{a}-{b}" for a, b in periods] for day, periods in raw["hours"].items()}}
        fields["updated_at"] = at
        before = self.collection.find_one_and_update(
            {"_id": calendar_id}, {"$set": fields, "$inc": {"version": 1}}, upsert=False
        )
        if before is None:
            try:
                self.collection.insert_one({"_id": calendar_id, **fields, "version": 1})
            except DuplicateKeyError:  # a concurrent PUT created it first: ours replaces it
                return self.put(calendar_id, raw, at)
            created = True
        else:
            created = False
        with self._lock:
            self._fresh_until = 0.0
        return self.document(calendar_id), created

    @staticmethod
    def _json(doc: dict) -> dict:
        return {"timezone": doc["timezone"], "hours": doc["hours"], "holidays": doc.get("holidays", [])}


def _hours_as_pairs(doc: dict) -> dict:
    """Periods are stored as "09:00-17:00" (FerretDB v1 refuses arrays inside arrays); the API's form is pairs."""
    return {**doc, "hours": {day: [p.split("-") for p in periods] for day, periods in doc["hours"].items()}}


class ClockStore:
    """One document per ticket: its TicketClocks, `next_due` (when the timer must look) and `created_at`."""

    def __init__(self, db: Database, flusher: OutboxFlusher | None = None) -> None:
        self.collection, self.flusher = db["clocks"], flusher
        self.histories = HistoryStore(db)

    def ensure_indexes(self) -> None:
        self.collection.create_index([("next_due", ASCENDING)])
        self.collection.create_index([("created_at", ASCENDING)])
        self.histories.ensure_indexes()

    def load(self, ticket_id: str, calendars: dict[str, Calendar]) -> tuple[TicketClocks, int, datetime | None] | None:
        """(the ticket's clocks, the document's version, its stored next_due), or None."""
        doc = self.collection.find_one({"_id": ticket_id}, outbox.NO_OUTBOX)
        return (TicketClocks.from_dict(doc, calendars), doc.get("_v", 0), doc.get("next_due")) if doc else None

    def insert(self, clocks: TicketClocks, next_due: datetime | None, staged: dict) -> bool:
        doc = self._doc(clocks, next_due)
        if not outbox.insert_with_events(self.collection, doc, staged):
            return False
        self._publish(clocks.ticket_id, staged, 1)
        self.histories.write(doc, 1)
        return True

    def save(self, clocks: TicketClocks, version: int, next_due: datetime | None, staged: dict) -> int:
        """Write if nobody saved the ticket's clocks since `version` (else Stale); the new version."""
        doc = self._doc(clocks, next_due)
        version = outbox.save_with_events(self.collection, clocks.ticket_id, version, doc, staged)
        self._publish(clocks.ticket_id, staged, version)
        self.histories.write(doc, version)
        return version

    def _publish(self, ticket_id: str, staged: dict, version: int) -> None:
        """Hand the alerts just stored to the flusher, which publishes them at once."""
        if self.flusher is not None:
            self.flusher.submit(self.collection, ticket_id, staged, version)

    def due(self, until: datetime, limit: int) -> list[tuple[str, datetime]]:
        """(ticket id, next_due) of up to `limit` clocks that pass a threshold by `until`, soonest first."""
        return [(doc["_id"], doc["next_due"]) for doc in due_by(self.collection, "next_due", until, limit)]

    def created_since(self, since: datetime, until: datetime | None = None) -> Iterator[dict]:
        """Documents of the tickets created at or after `since` and before `until` (their priority and clocks)."""
        window = {"$gte": since} | ({"$lt": until} if until is not None else {})
        return self.collection.find({"created_at": window}, {"priority": 1, "clocks": 1})

    def copy_histories(self, clocks: TicketClocks, version: int) -> None:
        """The copy of the ticket's clocks as stored at `version`, unless it is there (or a later one)."""
        self.histories.write(self._doc(clocks, None), version)

    def backfill_histories(self) -> int:
        """Once per database: the history copy of every ticket saved before there were copies; how many."""
        if self.histories.backfilled():
            return 0
        count = 0
        for doc in self.collection.find({}, outbox.NO_OUTBOX, batch_size=HISTORY_BATCH):
            self.histories.write(doc, doc.get("_v", 1))
            count += 1
        self.histories.mark_backfilled()
        return count

    @staticmethod
    def _doc(clocks: TicketClocks, next_due: datetime | None) -> dict:
        started = [clock.started_at for clock in clocks.clocks]
        doc = {**clocks.to_dict(), "_id": clocks.ticket_id, "next_due": next_due}
        return doc | {"created_at": min(started) if started else None}


class BreachStore:
    """Every sla.breached published, recorded from the event itself (so each is listed once)."""

    def __init__(self, db: Database) -> None:
        self.collection = db["breaches"]
        self.stamps = StampedRecords(self.collection, db["migrations"], NEWEST_BREACHES_FIRST.order)

    def ensure_indexes(self) -> None:
        self.collection.create_index([("breached_at", DESCENDING), ("_id", DESCENDING)])
        self.stamps.ensure_indexes()

    def record(self, event_id: str, data: dict, ticket_id: str, stamp: Stamp) -> None:
        """The breach, with the ticket's team and agent as `stamp` (StampedRecords: who lists it)."""
        try:
            self.collection.insert_one({"_id": event_id, "ticket_id": ticket_id, **data, **stamp.fields()})
        except DuplicateKeyError:
            pass

    def page(
        self,
        filters: dict,
        since: datetime | None,
        limit: int,
        cursor: str | None,
        among: list[str] | None = None,
        until: datetime | None = None,
        visible: dict | None = None,
    ) -> tuple[list, str | None]:
        """Newest breach first; the cursor is the last one's (breached_at, id). `among`: only these tickets';
        `visible`: only those an agent reads (StampedRecords.visible_to)."""
        if among is not None:
            filters = {**filters, "ticket_id": {"$in": among}}
        if visible is not None:
            filters = {**filters, **visible}
        window = ({"$gte": since} if since is not None else {}) | ({"$lt": until} if until is not None else {})
        if window:
            filters = {**filters, "breached_at": window}
        docs, next_cursor = NEWEST_BREACHES_FIRST.page(self.collection, filters, limit, cursor)
        return [
            {"event_id": doc["_id"], **{name: doc.get(name) for name in BREACH_FIELDS}} for doc in docs
        ], next_cursor


class HistoryStore:
    """A compact copy of each ticket's clock histories, one small document per ticket: what a what-if reads.

    FerretDB reads a document in a time that grows with its fields and values: a ticket's clocks
    document costs it about 1.7 ms, this copy (its histories as one string) about 0.15 ms (see
    docs/benchmarks.md). The copy is made from the whole clocks document after each write of it, and
    replaces only an older copy (`v` is the clocks' version). A process dying between the two writes
    leaves the copy one change behind until the ticket's next write, or until the event, redelivered and
    found already applied, makes the copy again (handlers.update_clocks).
    """

    def __init__(self, db: Database) -> None:
        self.collection, self.migrations = db["clock_histories"], db["migrations"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("created_at", ASCENDING)])

    def write(self, clocks_doc: dict, version: int) -> None:
        """The copy of a stored clocks document at `version`, unless a copy of a later version is there."""
        copy = self.copy_of(clocks_doc, version)
        try:
            self.collection.update_one({"_id": copy.pop("_id"), "v": {"$lt": version}}, {"$set": copy}, upsert=True)
        except DuplicateKeyError:
            pass  # a later version's copy is there already

    @staticmethod
    def copy_of(clocks_doc: dict, version: int) -> dict:
        """The copy's document: the ticket's id, priority and creation time, the version, the histories."""
        return {
            "_id": clocks_doc["_id"],
            "priority": clocks_doc.get("priority"),
            "created_at": clocks_doc.get("created_at"),
            "v": version,
            "h": _compact(clocks_doc.get("clocks", [])),
        }

    def since(self, since: datetime, priority: str) -> Iterator[dict]:
        """The tickets of `priority` created at or after `since` (those /stats counts), read in batches:
        `{"_id", "priority", "clocks"}`, each clock `{"kind", "instance", "steps", "state", "breached_at",
        "elapsed", "due_at"}` (times in epoch ms; no history: no steps)."""
        middle = since + max(datetime.now(UTC) - since, timedelta(0)) / 2
        halves = ({"$gte": since, "$lt": middle}, {"$gte": middle})  # read at once: FerretDB gives each a core
        fields = {"priority": 1, "h": 1}
        cursors = [
            self.collection.find({"created_at": dates, "priority": priority}, fields, batch_size=HISTORY_BATCH)
            for dates in halves
        ]
        return map(self.ticket_of, read_ahead(cursors, HISTORY_BATCH))

    def created_between(self, since: datetime, until: datetime | None) -> Iterator[dict]:
        """Every priority's tickets created at or after `since` and before `until`, as `since` gives them: what
        /stats counts, read at a tenth of the clocks documents' cost (their state, breach and elapsed time)."""
        window = {"$gte": since} | ({"$lt": until} if until is not None else {})
        fields = {"priority": 1, "h": 1}
        return map(self.ticket_of, self.collection.find({"created_at": window}, fields, batch_size=HISTORY_BATCH))

    @staticmethod
    def ticket_of(copy: dict) -> dict:
        """A copy as whatif.compare reads a ticket."""
        return {"_id": copy["_id"], "priority": copy["priority"], "clocks": _expand(copy["h"])}

    def backfilled(self) -> bool:
        return self.migrations.find_one({"_id": "clock_histories"}) is not None

    def mark_backfilled(self) -> None:
        try:
            self.migrations.insert_one({"_id": "clock_histories", "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # another worker finished first


def _compact(clocks: list[dict]) -> str:
    """[[kind, instance, steps or null, [state, breached_at, elapsed, due_at]], ...] as JSON, times in epoch ms
    (the steps: whatif.steps_of the clock's history)."""
    return json.dumps(
        [
            [
                c["kind"],
                c["instance"],
                whatif.steps_of(c["history"]) if c.get("history") else None,
                [c["state"], whatif.ms(c["breached_at"]), c["elapsed"], whatif.ms(c["due_at"])],
            ]
            for c in clocks
        ],
        separators=(",", ":"),
    )


def _expand(compact: str) -> list[dict]:
    """The clocks of `_compact`, as whatif.compare reads them."""
    return [
        {
            "kind": kind,
            "instance": instance,
            "steps": steps or [],
            "state": state,
            "breached_at": breached_at,
            "elapsed": elapsed,
            "due_at": due_at,
        }
        for kind, instance, steps, (state, breached_at, elapsed, due_at) in json.loads(compact)
    ]
