"""The only module that touches sla's collections: policies (with their history), calendars, clocks, breaches.

Filters on the clocks are `_id`, a range on one indexed date (`next_due`, `created_at`), or `ticket_id` (the
same value as `_id`, indexed of its own) `$in` a list: all index lookups on MongoDB and on the embedded FerretDB
(see scripts/ferretdb.patch; there `_id $in` reads the whole collection, 1.4 s at 20,000 tickets). Two scans
are kept to rare moments: the deadlines' backfill, once per database, and an admin's change of a calendar
(`look_again`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.sla import reports, whatif
from services.sla.business_time import Calendar, CalendarError, parse_calendar
from services.sla.domain import ALWAYS, Policy, TicketClocks, default_policies
from shared import outbox
from shared.access import Stamp, StampedRecords
from shared.clock import now
from shared.cursors import Key, Paginator
from shared.errors import NotFound
from shared.events import BY_URGENCY
from shared.mongo import Stale, due_by, ensure_document, read_ahead, upserted
from shared.relay import OutboxFlusher

log = logging.getLogger(__name__)
POLICY_TERMS = ("first_response_minutes", "next_response_minutes", "resolution_minutes", "warn_at_percent", "calendar")
BREACH_FIELDS = ("ticket_id", "clock", "instance", "priority", "due_at", "breached_at", "policy_version")
HISTORY_BATCH = 1000  # tickets per batch read for a what-if
# a copy's `u` is the database's time as it is written: a pass of StatsDays reads back this far before its start
ROLL_UP_MARGIN = timedelta(seconds=5)
SWEEP_EVERY = timedelta(hours=1)  # a sweep reads every copy: those an older worker wrote without `u`
SWEEP_SPAN = timedelta(days=30)  # of creation dates, a sweep's share of each pass (not the whole desk at once)
ROLL_UP_LEASE = timedelta(minutes=5)  # one pass at a time among the workers; a dead one's lease runs out
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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

    def every_version(self) -> dict[str, list[dict]]:
        """Each priority's versions (four documents, read whole)."""
        return {doc["_id"]: doc.get("versions", []) for doc in self.collection.find({}, {"versions": 1})}

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


EARLIER_KEPT = 50  # a calendar's changes kept (each: what it was until then); a clock older than the 50th counts
# the time before it in the hours after it


class CalendarStore:
    """Calendars as their JSON form (timezone, weekly hours, holidays) plus `version`; parsed ones kept a second.

    A deleted calendar keeps its document with `deleted_at`: gone from the API, still parsed, so that a clock of a
    policy version saved in the same instant as the delete still counts in it (and the policy's save brings it
    back: `restore`)."""

    LIVE = {"deleted_at": {"$exists": False}}

    FRESH_SECONDS = 1.0

    def __init__(self, db: Database) -> None:
        self.collection = db["calendars"]
        self._parsed: dict[str, Calendar] = {}
        self._fresh_until = 0.0
        self._lock = threading.Lock()

    def documents(self, *, deleted: bool = False) -> list[dict]:
        found = self.collection.find({} if deleted else self.LIVE).sort("_id", ASCENDING)
        return [_hours_as_pairs(doc) for doc in found]

    def document(self, calendar_id: str) -> dict:
        doc = self.collection.find_one({"_id": calendar_id, **self.LIVE})
        if doc is None:
            raise NotFound(f"No calendar {calendar_id!r}.")
        return _hours_as_pairs(doc)

    def ids(self) -> set[str]:
        return {ALWAYS} | {doc["_id"] for doc in self.collection.find(self.LIVE, {"_id": 1})}

    def parsed(self, needed: set[str] = frozenset()) -> dict[str, Calendar]:
        """Every calendar, parsed; read again when a second old or when one of `needed` is missing."""
        with self._lock:
            if time.monotonic() >= self._fresh_until or not needed <= self._parsed.keys() | {ALWAYS}:
                self._parsed = dict(self._each_parsed(self.documents(deleted=True)))
                self._fresh_until = time.monotonic() + self.FRESH_SECONDS
            return {ALWAYS: Calendar.always(), **self._parsed}

    def _each_parsed(self, docs: list[dict]) -> Iterator[tuple[str, Calendar]]:
        """Each stored calendar parsed; one that no longer parses (a time zone this host's database lacks, one
        stored before the rules) is left out, and counts as 24x7 as an unknown one does (domain's `_calendar`),
        rather than stopping every clock of every calendar (the comprehension it was raised for all)."""
        for doc in docs:
            try:
                current = parse_calendar(doc["_id"], self._json(doc), stored=True)
            except CalendarError as exc:
                log.error("calendar %r does not parse, its clocks count every hour: %s", doc["_id"], exc)
                continue
            earlier = []
            for was in doc.get("earlier") or ():
                try:
                    parsed = parse_calendar(doc["_id"], self._json(_hours_as_pairs(was)), stored=True)
                    earlier.append((was["until"], parsed))
                except CalendarError as exc:  # counted in the hours that followed it
                    log.error("calendar %r before %s does not parse: %s", doc["_id"], was["until"], exc)
            yield doc["_id"], replace(current, earlier=tuple(earlier)) if earlier else current

    def put(self, calendar_id: str, raw: dict, at: datetime) -> tuple[dict, bool]:
        """Create or replace; returns (the stored document, whether it was created). A replaced calendar keeps what it
        was until `at` (`earlier`, its last EARLIER_KEPT changes): time before the change counts in the hours then
        (they were recounted in the new ones: two reviewers' find). The same hours again change nothing, not even the
        version (a PUT repeated)."""
        fields = {**raw, "hours": {day: [f"{a}-{b}" for a, b in periods] for day, periods in raw["hours"].items()}}
        fields["updated_at"] = at
        before = self.collection.find_one({"_id": calendar_id})
        if before is None:
            try:
                self.collection.insert_one({"_id": calendar_id, **fields, "version": 1})
            except DuplicateKeyError:  # a concurrent PUT created it first: ours replaces it
                return self.put(calendar_id, raw, at)
            created = True
        elif "deleted_at" not in before and self._json(before) == self._json(fields):
            return self.document(calendar_id), False  # the same hours again: no new version
        else:
            change: dict = {"$set": fields, "$inc": {"version": 1}, "$unset": {"deleted_at": ""}}
            was = {"until": at, **self._json(before)}
            if self._json(before) != self._json(fields):
                change["$push"] = {"earlier": {"$each": [was], "$slice": -EARLIER_KEPT}}
            done = self.collection.update_one({"_id": calendar_id, "version": before.get("version")}, change)
            if not done.matched_count:  # another PUT meanwhile: ours goes after it
                return self.put(calendar_id, raw, at)
            created = "deleted_at" in before  # made again after a delete
        with self._lock:
            self._fresh_until = 0.0
        return self.document(calendar_id), created

    def delete(self, calendar_id: str, at: datetime) -> bool:
        """Mark the calendar deleted; False when there is none to delete."""
        done = self.collection.update_one({"_id": calendar_id, **self.LIVE}, {"$set": {"deleted_at": at}})
        return bool(done.matched_count)

    def restore(self, calendar_id: str) -> None:
        """Undo a delete (nothing when the calendar was not deleted)."""
        deleted = {"_id": calendar_id, "deleted_at": {"$exists": True}}
        self.collection.update_one(deleted, {"$unset": {"deleted_at": ""}})

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
        self.collection.create_index([("ticket_id", ASCENDING)])  # several tickets' clocks at once (load_many)
        self.histories.ensure_indexes()

    def load(self, ticket_id: str, calendars: dict[str, Calendar]) -> tuple[TicketClocks, int, datetime | None] | None:
        """(the ticket's clocks, the document's version, its stored next_due), or None."""
        doc = self.collection.find_one({"_id": ticket_id}, outbox.NO_OUTBOX)
        return (TicketClocks.from_dict(doc, calendars), doc.get("_v", 0), doc.get("next_due")) if doc else None

    def load_many(self, ticket_ids: list[str], calendars: dict[str, Calendar]) -> list[TicketClocks]:
        """The clocks of those of `ticket_ids` sla knows, in one read (in no particular order)."""
        if not ticket_ids:
            return []
        found = self.collection.find({"ticket_id": {"$in": list(ticket_ids)}}, outbox.NO_OUTBOX)
        return [TicketClocks.from_dict(doc, calendars) for doc in found]

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

    def look_again(self, calendar_id: str, at: datetime) -> int:
        """The timer looks at every open ticket with a clock in the calendar at `at` (its hours changed: the
        deadline moves, TicketClocks.follow_calendars); how many. A scan of the clocks, at an admin's change."""
        # any clock of the ticket in it (FerretDB's $elemMatch takes no field's condition): the timer's step moves
        # only those running
        under = {"clocks.calendar": calendar_id, "closed_at": None}
        return self.collection.update_many(under, {"$min": {"next_due": at}}).modified_count  # never later

    def due(self, until: datetime, limit: int) -> list[tuple[str, datetime]]:
        """(ticket id, next_due) of up to `limit` clocks that pass a threshold by `until`, soonest first."""
        return [(doc["_id"], doc["next_due"]) for doc in due_by(self.collection, "next_due", until, limit)]

    def put_off(self, ticket_id: str, due: datetime, until: datetime) -> bool:
        """The timer's next look at a ticket whose step failed, moved to `until`, unless it was saved since (its
        `next_due` no longer `due`); whether it moved."""
        return bool(self.collection.update_one({"_id": ticket_id, "next_due": due}, {"$set": {"next_due": until}})
                    .modified_count)  # fmt: skip

    def created_since(self, since: datetime, until: datetime | None = None) -> Iterator[dict]:
        """Documents of the tickets created at or after `since` and before `until` (their priority and clocks)."""
        window = {"$gte": since} | ({"$lt": until} if until is not None else {})
        return self.collection.find({"created_at": window}, {"priority": 1, "clocks": 1})

    def copy_histories(self, clocks: TicketClocks, version: int) -> None:
        """The copy of the ticket's clocks as stored at `version`, unless it is there (or a later one)."""
        self.histories.write(self._doc(clocks, None), version)

    def without_deadlines(self) -> list[str]:
        """The tickets, not closed, that never had an sla.deadlines_changed: stored before there was one (no
        `deadlines_revision`, or 0 once saved since without a change of deadlines). A scan of the ids, once per
        database (handlers.backfill_deadlines)."""
        never = [{"deadlines_revision": {"$exists": False}}, {"deadlines_revision": 0}]
        query = {"$or": never, "closed_at": None}
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1}, batch_size=HISTORY_BATCH)]

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

    def record(self, event_id: str, data: dict, ticket_id: str, stamp: Stamp) -> bool:
        """The breach, with the ticket's team and agent as `stamp` (StampedRecords: who lists it); False when
        it was recorded before (a redelivery: it keeps the stamp written then)."""
        try:
            self.collection.insert_one({"_id": event_id, "ticket_id": ticket_id, **data, **stamp.fields()})
        except DuplicateKeyError:
            return False
        return True

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
        self.days = StatsDays(db, self.collection)

    def ensure_indexes(self) -> None:
        self.collection.create_index([("created_at", ASCENDING)])
        self.collection.create_index([("u", ASCENDING)])
        self.days.ensure_indexes()

    def write(self, clocks_doc: dict, version: int) -> None:
        """The copy of a stored clocks document at `version`, unless a copy of a later version is there."""
        copy = self.copy_of(clocks_doc, version)
        update = {"$set": copy, "$currentDate": {"u": True}}  # when it was written, by the database's clock
        older = {"_id": copy.pop("_id"), "v": {"$lt": version}}
        upserted(lambda: self.collection.update_one(older, update, upsert=True))  # None: a later copy is there

    @staticmethod
    def copy_of(clocks_doc: dict, version: int) -> dict:
        """The copy's document: the ticket's id, priority and creation time, the version, the histories (`write`
        adds when it was written, `u`, by the database's clock: what StatsDays reads changes by)."""
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

    def roll_up(self) -> int:
        """A pass of StatsDays (the worker's timer), once every ticket has its copy; the copies it read."""
        return self.days.roll_up() if self.backfilled() else 0

    def backfilled(self) -> bool:
        return self.migrated("clock_histories")

    def mark_backfilled(self) -> None:
        self.mark_migrated("clock_histories")

    def migrated(self, name: str) -> bool:
        """Whether the one-off step `name` has run to its end on this database."""
        return self.migrations.find_one({"_id": name}) is not None

    def mark_migrated(self, name: str) -> None:
        try:
            self.migrations.insert_one({"_id": name, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # another worker finished first


class StatsDays:
    """What GET /stats counts of each ticket, gathered per UTC day of its creation: one document a day.

    /stats over 30 days read every ticket's copy of the window (0.15 ms of FerretDB each: 3,300 tickets,
    half a second); it now reads the window's days and the copies written since the last pass. Each day
    holds, per ticket, the copy's version, priority, creation time and each clock's kind, state, whether
    it breached and its elapsed time (`t`, one JSON string: FerretDB reads a string at once), and the
    day's tally (`s`).

    A pass (sla worker's timer, one worker at a time by a lease) reads the copies written since the last
    pass began less ROLL_UP_MARGIN (`u`, indexed, set by the database as it writes the copy; the pass's start
    is the database's time too, so that no host's clock matters) and merges them into their days, each
    entry replaced only by a later version of its copy and each day written only if unchanged since read
    (`n`); then it moves the watermark (`upto`) to its start less the margin. A sweep reads every copy, a
    SWEEP_SPAN of creation dates a pass (first, then hourly: copies an older worker wrote without `u`);
    until the first sweep has ended, `tallied` answers None (the caller reads the copies as before). A
    reader takes the days of the window and every copy written since the watermark: together, each
    ticket's last copy. A ticket stays in one day: its creation time is the earliest start of its clocks, and
    a clock starts later than the ticket's first (only an event stamped before `ticket.created`, with the
    services' clocks apart across midnight, could move it: that ticket would then count in both days); a
    copy is never deleted.
    A day holds its tickets in one document: some 100,000 tickets created in one day would reach MongoDB's
    16 MB (the pass then fails and logs, the watermark stays, and /stats reads ever more copies, still right).
    The lease is by the hosts' clocks: it decides only whether two passes run at once (harmless), never what
    a pass reads.
    """

    WATERMARK = "watermark"

    def __init__(self, db: Database, copies) -> None:
        self.collection, self.copies = db["stats_days"], copies

    def ensure_indexes(self) -> None:
        self.collection.create_index([("day", ASCENDING)])

    def tallied(self, since: datetime, until: datetime | None) -> dict[tuple[str, str], dict] | None:
        """reports.tally of the tickets created at or after `since` and before `until`; None before a sweep.

        A day inside the window that no copy written since the watermark belongs to is read as its tally (`s`);
        the others (the window's first and last, those with newer copies) as their tickets (`t`), merged with
        the newer copies and cut to the window."""
        mark = self.collection.find_one({"_id": self.WATERMARK})
        if mark is None or mark.get("full_at") is None or mark.get("upto") is None:
            return None
        # (`u` alone: with the window beside it, FerretDB walks the window's `created_at` instead, every copy of it)
        newer = dict(filter(None, map(_entry, self.copies.find({"u": {"$gte": mark["upto"]}}, COPY_FIELDS))))
        touched = {_day_key(entry[2]) for entry in newer.values()}
        total, partial = reports.tally(()), []
        days = {"$gte": _day_of(since)} | ({"$lt": until} if until is not None else {})
        for doc in self.collection.find({"day": days}, {"day": 1, "s": 1}):
            inside = doc["day"] >= since and (until is None or doc["day"] + DAY <= until)
            if inside and doc["_id"] not in touched:
                reports.add(total, _tally_of(json.loads(doc["s"])))
            else:
                partial.append(doc["day"])
        entries: dict[str, list] = {}
        for doc in self.collection.find({"day": {"$in": partial}}, {"t": 1}) if partial else ():  # (by `day`: indexed)
            _merge_into(entries, json.loads(doc["t"]))
        _merge_into(entries, newer)
        low, high = whatif.ms(since), None if until is None else whatif.ms(until)
        cut = [entry for entry in entries.values() if low <= entry[2] and (high is None or entry[2] < high)]
        reports.add(total, reports.tally(map(_ticket, cut)))
        return total

    def roll_up(self, sweep: bool = False) -> int:
        """One pass (the worker's timer); how many copies it read (0 also when another worker's pass runs).

        `sweep` starts a sweep now (else: first, then once an hour after the last one began)."""
        mark = self._lease()
        if mark is None:
            return 0
        lease, started = mark["lease_until"], mark["pass_at"]  # pass_at: the database's clock, as each copy's `u`
        try:
            read, by_day = 0, {}
            sources = [{"u": {"$gte": mark["upto"]}}] if mark.get("upto") is not None else []
            sweeping = sweep or mark.get("sweep_from") is not None or mark.get("full_at") is None
            sweeping = sweeping or started - mark["full_at"] >= SWEEP_EVERY
            if sweeping:  # the copies created in the next SWEEP_SPAN that has any
                low = self._first_created(None if sweep else mark.get("sweep_from"))
                high = None if low is None else low + SWEEP_SPAN
                if low is not None:
                    sources.append({"created_at": {"$gte": low, "$lt": high}})
            for source in sources:
                for copy in self.copies.find(source, COPY_FIELDS, batch_size=HISTORY_BATCH):
                    read += 1
                    if (found := _entry(copy)) is not None:
                        by_day.setdefault(_day_of(copy["created_at"]), {})[found[0]] = found[1]
            for day, entries in sorted(by_day.items()):
                self._merge(day, entries)
            done: dict = {"lease_until": None}
            if sweeping:
                began = (mark.get("sweep_began") if not sweep else None) or started
                if high is None:  # swept to the newest: every copy there was when it began is in
                    done |= {"full_at": began, "sweep_from": None, "sweep_began": None}
                else:
                    done |= {"sweep_from": high, "sweep_began": began}
            self.collection.update_one(
                {"_id": self.WATERMARK, "lease_until": lease},
                {"$set": {**done, "upto": started - ROLL_UP_MARGIN}},  # (not $max: a clock set back re-reads)
            )
            log.log(
                logging.INFO if sweeping else logging.DEBUG,
                "stats per day: %d copies read%s, %d days merged",
                read, f" (a sweep, {high:%Y-%m-%d} reached)" if sweeping and high else "", len(by_day),
            )  # fmt: skip
            return read
        finally:  # a pass that failed lets the next one try at once (and never frees another worker's lease)
            self.collection.update_one({"_id": self.WATERMARK, "lease_until": lease}, {"$set": {"lease_until": None}})

    def _lease(self) -> dict | None:
        """The watermark document with this pass's lease and start (`pass_at`, the database's time), or None
        while another worker's lease runs."""
        mine = now() + ROLL_UP_LEASE
        free = {"$or": [{"lease_until": None}, {"lease_until": {"$lte": now()}}]}
        try:
            return self.collection.find_one_and_update(
                {"_id": self.WATERMARK, **free},
                {"$set": {"lease_until": mine}, "$currentDate": {"pass_at": True}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # held: the upsert found no free lease and the document is there

    def _first_created(self, since: datetime | None) -> datetime | None:
        """When the first copy created at or after `since` (None: ever) was created; None when there is none."""
        window = {"$gte": since or EPOCH}  # a range (an index walk), where `$ne: None` would be filtered in memory
        first = self.copies.find_one({"created_at": window}, {"created_at": 1}, sort=[("created_at", ASCENDING)])
        return None if first is None else first["created_at"]

    def _merge(self, day: datetime, entries: dict[str, list]) -> None:
        key = _day_key(whatif.ms(day))
        for _ in range(20):
            doc = self.collection.find_one({"_id": key})
            if doc is None:
                try:
                    self.collection.insert_one(
                        {"_id": key, "day": day, "n": 1, "t": _json(entries), "s": _summary(entries)}
                    )
                    return
                except DuplicateKeyError:
                    continue  # written meanwhile: merge into it
            held = json.loads(doc["t"])
            if not _merge_into(held, entries):
                return
            update = {"$set": {"t": _json(held), "s": _summary(held), "n": doc["n"] + 1}}
            if self.collection.update_one({"_id": key, "n": doc["n"]}, update).matched_count:
                return
        raise Stale(key)


COPY_FIELDS = {"priority": 1, "created_at": 1, "v": 1, "h": 1}


def _entry(copy: dict) -> tuple[str, list] | None:
    """(ticket id, [version, priority, created ms, [[kind, state, breached, elapsed], ...]]) of a copy; None
    for a ticket without clocks (no creation time: /stats never counts it)."""
    if copy.get("created_at") is None:
        return None
    clocks = [[kind, state, breached is not None, elapsed] for kind, _, _, (state, breached, elapsed, _) in
              json.loads(copy["h"])]  # fmt: skip
    return copy["_id"], [copy.get("v", 0), copy.get("priority"), whatif.ms(copy["created_at"]), clocks]


def _merge_into(held: dict[str, list], entries: dict[str, list]) -> bool:
    """Each entry into `held` unless it holds the same or a later version of that ticket; whether any went in."""
    changed = False
    for ticket_id, entry in entries.items():
        mine = held.get(ticket_id)
        if mine is None or mine[0] < entry[0]:
            held[ticket_id], changed = entry, True
    return changed


def _ticket(entry: list) -> dict:
    """An entry as reports.tally reads a ticket (its outcome and time are those of the copy's clocks)."""
    return {
        "priority": entry[1],
        "clocks": [
            {"kind": kind, **_state(state), "breached_at": True if breached else None, "elapsed": elapsed}
            for kind, state, breached, elapsed in entry[3]
        ],
    }


UNRESOLVED = "unresolved"  # a copy's state of a resolution clock stopped with no resolution (Clock.no_resolution)


def _state(state: str) -> dict:
    """A copy's state as reports.outcome reads it."""
    return {"state": "stopped", "no_resolution": True} if state == UNRESOLVED else {"state": state}


def _summary(entries: dict[str, list]) -> str:
    """A day's tally as JSON: {"priority|clock": [met, breached, open, stopped, [times]]}, the empty ones left out."""
    tallied = reports.tally(map(_ticket, entries.values()))
    return _json(
        {
            f"{priority}|{clock}": [*(row[name] for name in reports.OUTCOMES), row["times"]]
            for (priority, clock), row in tallied.items()
            if any(row[name] for name in reports.OUTCOMES)
        }
    )


def _tally_of(summary: dict[str, list]) -> dict[tuple[str, str], dict]:
    return {
        tuple(key.split("|", 1)): {**dict(zip(reports.OUTCOMES, row[:4], strict=True)), "times": row[4]}
        for key, row in summary.items()
    }


def _day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _day_key(milliseconds: int) -> str:
    """The `_id` of the day of a time in epoch ms: its UTC date."""
    return whatif.moment(milliseconds).strftime("%Y-%m-%d")


def _json(entries: dict[str, list]) -> str:
    return json.dumps(entries, separators=(",", ":"))


def _compact(clocks: list[dict]) -> str:
    """[[kind, instance, steps or null, [state, breached_at, elapsed, due_at]], ...] as JSON, times in epoch ms
    (the steps: whatif.steps_of the clock's history; the state UNRESOLVED for a resolution clock stopped with none)."""
    return json.dumps(
        [
            [
                c["kind"],
                c["instance"],
                whatif.steps_of(c["history"]) if c.get("history") else None,
                [
                    UNRESOLVED if c["state"] == "stopped" and c.get("no_resolution") else c["state"],
                    whatif.ms(c["breached_at"]),
                    c["elapsed"],
                    whatif.ms(c["due_at"]),
                ],
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
            **_state(state),
            "breached_at": breached_at,
            "elapsed": elapsed,
            "due_at": due_at,
        }
        for kind, instance, steps, (state, breached_at, elapsed, due_at) in json.loads(compact)
    ]
