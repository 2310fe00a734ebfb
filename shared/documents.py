"""A collection of versioned domain objects that carry their events in an outbox (every service's tickets)."""

from __future__ import annotations

from typing import Any, ClassVar

from pymongo.collection import Collection

from shared import outbox
from shared.errors import NotFound


class VersionedStore:
    """Stores objects of `model` (with `id` and `version`) as documents of `fields`; subclasses add queries."""

    kind: ClassVar[str] = "document"
    model: ClassVar[type]
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def derived(self, obj: Any) -> dict:
        """Fields stored only for queries and sorting (computed from the object, never read back)."""
        return {}

    def to_doc(self, obj: Any) -> dict:
        return {**{name: getattr(obj, name) for name in self.fields}, **self.derived(obj), "_id": obj.id}

    def from_doc(self, doc: dict) -> Any:
        values = {name: doc[name] for name in self.fields if name in doc}
        return self.model(id=doc["_id"], version=doc.get("_v", 0), **values)

    def insert(self, obj: Any, staged: dict) -> bool:
        """Store a new object with its events; False when one with its id exists already (a replay)."""
        if not outbox.insert_with_events(self.collection, self.to_doc(obj), staged):
            return False
        obj.version = 1
        return True

    def get(self, obj_id: str) -> Any:
        doc = self.collection.find_one({"_id": obj_id}, outbox.NO_OUTBOX)
        if doc is None:
            raise NotFound(f"No {self.kind} {obj_id}.")
        return self.from_doc(doc)

    def save(self, obj: Any, staged: dict) -> None:
        """Write the object's changes and its events in one write if nobody saved it meanwhile (else Stale)."""
        obj.version = outbox.save_with_events(self.collection, obj.id, obj.version, self.to_doc(obj), staged)
