"""The only module that touches search's collections: each ticket's document as learnt from events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database

from services.search.domain import TicketDoc
from shared import outbox
from shared.access import TicketFacts
from shared.documents import VersionedStore

_FIELDS = (
    "number",
    "subject",
    "description",
    "requester_email",
    "requester_name",
    "messages",
    "resolution",
    "status",
    "team",
    "agent_id",
    "created_at",
    "resolved_at",
    "watermarks",
    "updated_at",
)


class TicketDocs(VersionedStore):
    kind, model, fields = "ticket", TicketDoc, _FIELDS

    def __init__(self, db: Database) -> None:
        super().__init__(db["tickets"])

    def ensure_indexes(self) -> None:
        self.collection.create_index([("updated_at", ASCENDING)])  # a reindex catches up from a time

    def facts(self, ticket_id: str) -> TicketFacts | None:
        """Whose the ticket is, for the access rule; None when search has not heard of its creation."""
        doc = self.collection.find_one(
            {"_id": ticket_id}, {"requester_email": 1, "team": 1, "agent_id": 1, "number": 1}
        )
        if doc is None or doc.get("number") is None:
            return None
        return TicketFacts(ticket_id, doc.get("requester_email"), doc.get("team"), doc.get("agent_id"))

    def indexable(self, since: datetime | None = None, batch: int = 500) -> Iterator[TicketDoc]:
        """Every document the engine should hold (those changed at or after `since`), in _id order."""
        query: dict = {"number": {"$ne": None}}
        if since is not None:
            query["updated_at"] = {"$gte": since}
        last = None
        while True:
            page = {**query, "_id": {"$gt": last}} if last is not None else query
            docs = list(self.collection.find(page, outbox.NO_OUTBOX).sort("_id", ASCENDING).limit(batch))
            yield from (self.from_doc(doc) for doc in docs)
            if len(docs) < batch:
                return
            last = docs[-1]["_id"]

    def count(self) -> int:
        return self.collection.estimated_document_count()

    def any_whole(self) -> bool:
        """Whether a document was learnt from its ticket.created (one only events after it began is not)."""
        return self.collection.find_one({"number": {"$ne": None}}, {"_id": 1}) is not None

    def nameless(self) -> bool:
        """Whether a document was learnt before requesters' names were (`learn_names` fills them in)."""
        # absent, or null: a document learnt before was saved whole at its next event, the name None (a reviewer's)
        learnt_before = {"number": {"$ne": None}, "requester_name": None}
        return self.collection.find_one(learnt_before, {"_id": 1}) is not None

    def learn_names(self, names: dict[str, str]) -> int:
        """Each ticket's requester name where its document has none yet (ticket id -> name); how many took one."""
        if not names:
            return 0
        done = self.collection.bulk_write(
            [
                UpdateOne({"_id": ticket_id, "requester_name": None}, {"$set": {"requester_name": name}})
                for ticket_id, name in names.items()
            ],
            ordered=False,
        )
        return done.modified_count
