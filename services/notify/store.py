"""The only module that touches notify's collections: ticket projections, notifications, webhooks."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from services.notify.domain import Notification, TicketView
from shared import outbox
from shared.cursors import after_time_cursor, time_cursor
from shared.documents import VersionedStore
from shared.errors import NotFound
from shared.mongo import due_by

_VIEW_FIELDS = (
    "number",
    "subject",
    "priority",
    "requester",
    "agent",
    "team",
    "team_lead_email",
    "assignment_known",
    "watermarks",
)
_NOTIFICATION_FIELDS = (
    "event_id",
    "event_type",
    "ticket_id",
    "channel",
    "recipient",
    "subject",
    "body",
    "html",
    "webhook_id",
    "endpoint",
    "status",
    "attempts",
    "step",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
)


class TicketViews(VersionedStore):
    kind, model, fields = "ticket", TicketView, _VIEW_FIELDS

    def __init__(self, db: Database) -> None:
        super().__init__(db["tickets"])

    def find(self, ticket_id: str) -> TicketView | None:
        doc = self.collection.find_one({"_id": ticket_id}, outbox.NO_OUTBOX)
        return self.from_doc(doc) if doc else None


class NotificationStore(VersionedStore):
    """Notifications; `next_attempt_at` (indexed) is when the dispatcher should send one: None once settled."""

    kind, model, fields = "notification", Notification, _NOTIFICATION_FIELDS

    def __init__(self, db: Database) -> None:
        super().__init__(db["notifications"])

    def ensure_indexes(self) -> None:
        self.collection.create_index([("next_attempt_at", ASCENDING)])
        self.collection.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
        self.collection.create_index([("ticket_id", ASCENDING), ("created_at", DESCENDING)])

    def due(self, until: datetime, limit: int) -> list[tuple[str, datetime, str]]:
        """(id, next_attempt_at, endpoint) of up to `limit` notifications to send by `until`, soonest first."""
        docs = due_by(self.collection, "next_attempt_at", until, limit, ("endpoint",))
        return [(doc["_id"], doc["next_attempt_at"], doc.get("endpoint", "smtp")) for doc in docs]

    def page(self, filters: dict, limit: int, cursor: str | None) -> tuple[list[Notification], str | None]:
        """Newest first; the cursor is the last one's (created_at, id)."""
        query: dict = {key: value for key, value in filters.items() if value is not None}
        if cursor:
            query |= after_time_cursor("created_at", cursor, newest_first=True)
        order = [("created_at", DESCENDING), ("_id", DESCENDING)]
        docs = list(self.collection.find(query, outbox.NO_OUTBOX).sort(order).limit(limit + 1))
        items = [self.from_doc(doc) for doc in docs[:limit]]
        last = items[-1] if len(docs) > limit else None
        return items, time_cursor(last.created_at, last.id) if last else None


class WebhookStore:
    """Registered webhooks: {_id, url, events (patterns), secret, created_at}."""

    def __init__(self, db: Database) -> None:
        self.collection = db["webhooks"]

    def add(self, webhook: dict) -> dict:
        self.collection.insert_one(dict(webhook))
        return webhook

    def all(self) -> list[dict]:
        return list(self.collection.find().sort([("created_at", ASCENDING), ("_id", ASCENDING)]))

    def find(self, webhook_id: str) -> dict | None:
        return self.collection.find_one({"_id": webhook_id})

    def delete(self, webhook_id: str) -> None:
        if not self.collection.delete_one({"_id": webhook_id}).deleted_count:
            raise NotFound(f"No webhook {webhook_id}.")
