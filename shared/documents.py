"""A collection of versioned domain objects that carry their events in an outbox (every service's tickets)."""

from __future__ import annotations

from typing import Any, ClassVar

from pymongo.collection import Collection

from shared import outbox
from shared.errors import NotFound
from shared.relay import OutboxFlusher


class VersionedStore:
    """Stores objects of `model` (with `id` and `version`) as documents of `fields`; subclasses add queries."""

    kind: ClassVar[str] = "document"
    model: ClassVar[type]
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, collection: Collection, flusher: OutboxFlusher | None = None) -> None:
        self.collection, self.flusher = collection, flusher

    def derived(self, obj: Any) -> dict:
        """Fields stored only for queries and sorting (computed from the object, never read back)."""
        return {}

    def to_doc(self, obj: Any) -> dict:
        return {**{name: getattr(obj, name) for name in self.fields}, **self.derived(obj), "_id": obj.id}

    def from_doc(self, doc: dict) -> Any:
        values = {name: doc[name] for name in self.fields if name in doc}
        return self.model(id=doc["_id"], version=doc.get("_v", 0), **values)

    def insert(self, obj: Any, staged: dict, extra: dict | None = None) -> bool:
        """Store a new object with its events; False when one with its id exists already (a replay).

        `extra`: fields written with the new document only, never read back (a save writes the model's
        fields and leaves them as they are)."""
        if not outbox.insert_with_events(self.collection, {**self.to_doc(obj), **(extra or {})}, staged):
            return False
        obj.version = 1
        self.publish(obj.id, staged, obj.version)
        return True

    def get(self, obj_id: str) -> Any:
        doc = self.collection.find_one({"_id": obj_id}, outbox.NO_OUTBOX)
        if doc is None:
            raise NotFound(f"No {self.kind} {obj_id}.")
        return self.from_doc(doc)

    def find(self, obj_id: str) -> Any | None:
        """The object, or None when there is none with this id."""
        doc = self.collection.find_one({"_id": obj_id}, outbox.NO_OUTBOX)
        return self.from_doc(doc) if doc else None

    def save(self, obj: Any, staged: dict) -> None:
        """Write the object's changes and its events in one write if nobody saved it meanwhile (else Stale)."""
        obj.version = outbox.save_with_events(self.collection, obj.id, obj.version, self.to_doc(obj), staged)
        self.publish(obj.id, staged, obj.version)

    def publish(self, doc_id: str, staged: dict, version: int) -> None:
        """Hand the events just stored with a document to the flusher, which publishes them at once."""
        if self.flusher is not None:
            self.flusher.submit(self.collection, doc_id, staged, version)
