"""The only module that touches notify's collections: ticket projections, notifications, webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from services.notify.domain import Notification, TicketView
from shared import outbox
from shared.access import Stamp, StampedRecords
from shared.cursors import Key, Paginator
from shared.documents import VersionedStore
from shared.errors import NotFound
from shared.mongo import due_by, retire_indexes
from shared.relay import OutboxFlusher

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # before every next attempt: `>= EPOCH` is the index's whole non-null range
PENDING_CAP = 10_000  # the count stops there: enough to scale on, and never a long scan

_VIEW_FIELDS = (
    "number",
    "subject",
    "priority",
    "requester",
    "agent",
    "team",
    "team_name",
    "team_lead_email",
    "team_lead_name",
    "assignment_known",
    "watermarks",
    "mail_message_id",
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
    "relay_waits",
    "last_error",
    "created_at",
    "sent_at",
    "next_attempt_at",
    "correlation_id",
    "replying_to",
)

WHOLE = (*_NOTIFICATION_FIELDS, "_v")  # a notification's fields and version, without its outbox
NEWEST_NOTIFICATIONS_FIRST = Paginator((Key("at", "created_at", datetime), Key("id", "_id", str)), descending=True)


class TicketViews(VersionedStore):
    kind, model, fields = "ticket", TicketView, _VIEW_FIELDS

    def __init__(self, db: Database) -> None:
        super().__init__(db["tickets"])

    def ensure_indexes(self) -> None:
        # an agent's lists ask which tickets are the agent's teams' or the agent's: one index per branch
        self.collection.create_index("team")
        self.collection.create_index("agent.id")

    def stamp_of(self, ticket_id: str) -> Stamp:
        """The ticket's team and agent as notify last heard (Stamp.at: None before its first ticket.assigned)."""
        doc = self.collection.find_one({"_id": ticket_id}, {"team": 1, "agent.id": 1, "watermarks.assigned": 1})
        return self._stamp(doc or {})

    def stamps(self) -> Iterator[tuple[str, Stamp]]:
        """(ticket_id, stamp) of every ticket assigned (a backfill's source)."""
        fields = {"team": 1, "agent.id": 1, "watermarks.assigned": 1}
        for doc in self.collection.find({"assignment_known": True}, fields, batch_size=1000):
            yield doc["_id"], self._stamp(doc)

    @staticmethod
    def _stamp(doc: dict) -> Stamp:
        agent = doc.get("agent") or {}
        return Stamp(doc.get("team"), agent.get("id"), (doc.get("watermarks") or {}).get("assigned"))

    @staticmethod
    def stamp(view: TicketView | None) -> Stamp:
        if view is None:
            return Stamp()
        return Stamp(view.team, view.agent["id"] if view.agent else None, view.watermarks.get("assigned"))

    def ids_visible_to(self, agent_id: str, teams: list[str]) -> list[str]:
        """The tickets of the teams, and those assigned to the agent, as notify last heard."""
        query = {"$or": [{"team": {"$in": list(teams)}}, {"agent.id": agent_id}]}
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1})]


class NotificationStore(VersionedStore):
    """Notifications; `next_attempt_at` (indexed) is when the dispatcher should send one: None once settled."""

    kind, model, fields = "notification", Notification, _NOTIFICATION_FIELDS

    def __init__(self, db: Database, flusher: OutboxFlusher | None = None) -> None:
        super().__init__(db["notifications"], flusher)
        order = NEWEST_NOTIFICATIONS_FIRST.order  # and an index by ticket_id first (ensure_indexes)
        self.stamps = StampedRecords(self.collection, db["migrations"], order, by_ticket=False)

    def ensure_indexes(self) -> None:
        self.stamps.ensure_indexes()
        self.collection.create_index([("next_attempt_at", ASCENDING)])
        self.collection.create_index([("endpoint", ASCENDING), ("next_attempt_at", ASCENDING)])  # due_at(endpoint)
        self.collection.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
        # the list's filters, each followed by the list's order (a rare status, `dead`, is then as fast as `sent`)
        for first in ("ticket_id", "status", "recipient"):
            self.collection.create_index([(first, ASCENDING), *NEWEST_NOTIFICATIONS_FIRST.order])
        retire_indexes(self.collection, "ticket_id_1_created_at_-1")

    def due(self, until: datetime, limit: int, endpoint: str | None = None) -> list[Notification]:
        """Up to `limit` notifications to send by `until`, soonest first, whole: a claim needs no read of its own.
        `endpoint`: only those for it ("smtp", or a webhook's host)."""
        where = {"endpoint": endpoint} if endpoint is not None else None
        return [self.from_doc(doc) for doc in due_by(self.collection, "next_attempt_at", until, limit, WHOLE, where)]

    def backlog(self, at: datetime, cap: int = PENDING_CAP) -> tuple[int, float]:
        """(how many are pending, up to `cap`; seconds the most overdue one has waited past its attempt, or 0).

        Both read through the `next_attempt_at` index (set while a notification is pending or failed,
        None once sent or dead): a bounded count of a range, and the first key of that range.
        """
        unsettled = {"next_attempt_at": {"$gte": EPOCH}}
        count = self.collection.count_documents(unsettled, limit=cap)
        first = self.collection.find_one(unsettled, {"next_attempt_at": 1}, sort=[("next_attempt_at", ASCENDING)])
        overdue = (at - first["next_attempt_at"]).total_seconds() if first else 0.0
        return count, max(overdue, 0.0)

    def page(
        self,
        filters: dict,
        limit: int,
        cursor: str | None,
        among: list[str] | None = None,
        visible: dict | None = None,
    ) -> tuple[list[Notification], str | None]:
        """Newest first; the cursor is the last one's (created_at, id). `among`: only these tickets' notifications
        (an empty list: none, still paged, so that a bad cursor is refused whoever asks); `visible`: only those
        an agent reads (StampedRecords.visible_to)."""
        address = filters.get("recipient")
        if isinstance(address, str) and "@" in address and "://" not in address:  # an email: in any letter case
            filters = {**filters, "recipient": {"$in": sorted({address, address.strip().lower()})}}
        if among is not None:
            wanted = filters.get("ticket_id")
            filters = {**filters, "ticket_id": wanted if wanted in among else {"$in": [] if wanted else among}}
        if visible is not None:
            filters = {**filters, **visible}
        docs, next_cursor = NEWEST_NOTIFICATIONS_FIRST.page(self.collection, filters, limit, cursor, outbox.NO_OUTBOX)
        return [self.from_doc(doc) for doc in docs], next_cursor


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
