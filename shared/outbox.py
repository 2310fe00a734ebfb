"""The transactional outbox, kept inside the document whose change causes the events.

MongoDB gives no multi-document transactions here, so the events of a change are written in
the same single-document write as the change itself: under `_outbox` (a map event_id -> entry),
with `_outbox_n` (how many entries it holds) and `_outbox_due` (when a sweep should publish them
if nobody has by then). A change that was not stored has no events; a stored one has its events.
Documents that carry an outbox have a version `_v` that every write raises.

Filters here use only `_id` and scalar fields: FerretDB (the embedded server) uses an index only
for `_id`, and gives up even that when a filter compares embedded documents.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from shared import events
from shared.clock import now
from shared.mongo import Stale

FIELD, COUNT, DUE = "_outbox", "_outbox_n", "_outbox_due"
NO_OUTBOX = {FIELD: 0, COUNT: 0, DUE: 0}  # a projection for reading a document without its outbox
SWEEP_AFTER = timedelta(seconds=30)  # a process that died between write and publish: the sweep's turn


def entries(envelopes: list[dict], encode) -> dict[str, dict]:
    """Outbox entries for validated wire-form envelopes, in order: {event_id: {type, body, at, seq, ...}}."""
    return {
        env["event_id"]: {
            "type": env["type"],
            "body": encode(env).decode(),
            "at": env["occurred_at"],
            "seq": i,
            "correlation_id": env.get("correlation_id"),
        }
        for i, env in enumerate(envelopes)
    }


def stage(
    producer: str,
    aggregate_id: str,
    recorded: list[tuple[str, dict]],
    correlation_id: str | None,
    at: datetime | None = None,
) -> dict:
    """Outbox entries for the events a domain object recorded at `at` (now); those of one write 1 ms apart."""
    at = at or now()
    return entries(
        [
            events.make_event(
                kind,
                aggregate_id,
                data,
                producer=producer,
                correlation_id=correlation_id,
                occurred_at=at + timedelta(milliseconds=i),
            )
            for i, (kind, data) in enumerate(recorded)
        ],
        events.serialize,
    )  # make_event validated them


def insert_with_events(collection: Collection, doc: dict, staged: dict[str, dict]) -> bool:
    """Insert a document (version 1) with its events; False when one with its _id exists (a replay)."""
    try:
        collection.insert_one({**doc, "_v": 1, **insert_fields(staged)})
    except DuplicateKeyError:
        if collection.find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
            raise  # another unique index: a real error, not a replay
        return False
    return True


def save_with_events(collection: Collection, doc_id, version: int, fields: dict, staged: dict[str, dict]) -> int:
    """Write a change and its events in one write if the document is still at `version`; the new version."""
    update = update_operators(staged)
    update["$set"] = {**fields, "_v": version + 1, **update.get("$set", {})}
    if not collection.update_one({"_id": doc_id, "_v": version}, update).matched_count:
        raise Stale(doc_id)
    return version + 1


def insert_fields(staged: dict[str, dict]) -> dict:
    """Fields of a document inserted together with its events."""
    return {FIELD: staged, COUNT: len(staged), DUE: now() + SWEEP_AFTER} if staged else {}


def update_operators(staged: dict[str, dict]) -> dict[str, dict]:
    """The update operators that add events to a document in the same write as the change. The sweep's due date
    only ever moves earlier: an entry left by a writer that died is swept 30 s after it was written, however often
    later writes add (and clear) their own (a reviewer's find: each write put it 30 s later again). It goes when the
    outbox empties; a document whose outbox never empties for 30 s (writes that overlap all along, or flushers that
    far behind) is swept while its writers live, and its entries may go out twice: the consumers are idempotent."""
    if not staged:
        return {}
    return {
        "$set": {f"{FIELD}.{event_id}": entry for event_id, entry in staged.items()},
        "$inc": {COUNT: len(staged)},
        "$min": {DUE: now() + SWEEP_AFTER},
    }


def ordered(staged: dict[str, dict]) -> list[tuple[str, dict]]:
    """Entries in the order they were written (time of the write, then position in it)."""
    return sorted(staged.items(), key=lambda item: (item[1].get("at", ""), item[1].get("seq", 0)))


def clear_many(collection: Collection, published: list[tuple[object, list[str], int]]) -> None:
    """Forget the published events of several documents, each (doc_id, event ids, the version its writer produced).

    One round trip for all whose document is still at that version with just those entries (the usual case:
    the flusher clears at once); when any was not, each goes through `clear` as it would alone.
    """
    published = [(doc_id, event_ids, version) for doc_id, event_ids, version in published if event_ids]
    if len(published) == 1:
        clear(collection, *published[0])
    if len(published) <= 1:
        return
    empty = {"$unset": {FIELD: "", COUNT: "", DUE: ""}}
    writes = [UpdateOne(_just(doc_id, ids, version), empty) for doc_id, ids, version in published]
    done = collection.bulk_write(writes, ordered=False)
    if done.matched_count < len(published):  # which did not match is not said: the others match nothing now
        for doc_id, event_ids, _ in published:
            clear(collection, doc_id, event_ids)


def _just(doc_id, published: list[str], version: int) -> dict:
    """The document still at `version` whose entries are the published ones, each still there: as many entries as
    published is not enough, for a relay may have cleared one of them and left an older one it could not publish
    (a reviewer's find: that one went with the rest, never published)."""
    return {
        "_id": doc_id,
        "_v": version,
        COUNT: len(published),
        **{f"{FIELD}.{event_id}": {"$exists": True} for event_id in published},
    }


def clear(collection: Collection, doc_id, published: list[str], version: int | None = None) -> None:
    """Forget published events.

    With the version the publishing writer produced: when the document is still at that version
    and holds as many entries as were published, each of them, those are exactly its entries and one
    write clears the outbox. Otherwise the published entries go one by one, and the due date with the
    last entry.
    """
    if not published:
        return
    if version is not None:
        done = collection.update_one(_just(doc_id, published, version), {"$unset": {FIELD: "", COUNT: "", DUE: ""}})
        if done.matched_count:
            return
    for event_id in published:  # each removal counts only if the entry was still there (no double count)
        collection.update_one(
            {"_id": doc_id, f"{FIELD}.{event_id}": {"$exists": True}},
            {"$unset": {f"{FIELD}.{event_id}": ""}, "$inc": {COUNT: -1}},
        )
    collection.update_one({"_id": doc_id, COUNT: {"$lte": 0}}, {"$unset": {FIELD: "", COUNT: "", DUE: ""}})
