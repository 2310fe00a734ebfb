"""intake's commands and event handlers: load, call the domain, save with the events it recorded."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.intake.domain import Ticket, TicketClosed, changes_view, summarize
from services.intake.store import IdempotencyKeys, TicketStore, TimelineStore, TopicStore
from shared import events, outbox
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Invalid
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes

SERVICE = "intake"
SAVE_ATTEMPTS = 8


@dataclass
class Intake:
    """Everything intake's handlers need, wired once per process (see `bootstrap`)."""

    settings: Settings
    tickets: TicketStore
    topics: TopicStore
    keys: IdempotencyKeys
    timeline: TimelineStore
    processed: ProcessedEvents
    pending: PendingOutboxes
    flusher: OutboxFlusher

    def ensure_storage(self) -> None:
        self.tickets.ensure_indexes()
        self.keys.ensure_indexes()
        self.timeline.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()
        self.topics.seed_defaults()


def bootstrap(settings: Settings) -> Intake:
    db = database(settings, SERVICE)
    pending = PendingOutboxes(db)
    return Intake(
        settings,
        TicketStore(db),
        TopicStore(db),
        IdempotencyKeys(db),
        TimelineStore(db),
        ProcessedEvents(db),
        pending,
        OutboxFlusher(settings, SERVICE, pending),
    )


def _recorded(ticket: Ticket, correlation_id: str | None, at: datetime | None = None) -> dict:
    """The events the ticket recorded, as outbox entries."""
    recorded, ticket.recorded = ticket.recorded, []
    return outbox.stage(SERVICE, ticket.id, recorded, correlation_id, at)


def _request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- commands ---------------------------------------------------------------------------------


def create_ticket(
    app: Intake, request: dict, idempotency_key: str | None, correlation_id: str | None
) -> tuple[Ticket, bool]:
    """Open a ticket; with an Idempotency-Key the same request gives the same ticket. Returns (ticket, created)."""
    if not app.topics.known(request["topic"]):
        raise Invalid("Unknown topic.", {"topic": [f"Unknown topic {request['topic']!r}; see GET /topics."]})
    ticket_id = uuid.uuid4().hex
    if idempotency_key:
        request_hash = _request_hash(request)
        record = app.keys.claim(idempotency_key, request_hash, ticket_id, now())
        if record["request_hash"] != request_hash:
            raise Conflict("This Idempotency-Key was used with a different request body.")
        if record["ticket_id"] != ticket_id:  # the key was used before: answer with its ticket
            ticket_id = record["ticket_id"]
            existing = _find(app, ticket_id)
            if existing is not None:
                return existing, False
    at = now()
    ticket = Ticket.open(ticket_id, app.tickets.next_number(), request, at)
    staged = _recorded(ticket, correlation_id, at)  # occurred_at is the ticket's created_at
    if not app.tickets.insert(ticket, staged):  # a concurrent request with the same key won
        return app.tickets.get(ticket_id), False
    app.flusher.submit(app.tickets.collection, ticket.id, staged, ticket.version)
    return ticket, True


def _find(app: Intake, ticket_id: str) -> Ticket | None:
    doc = app.tickets.collection.find_one({"_id": ticket_id}, {"_id": 1})
    return app.tickets.get(ticket_id) if doc else None


def _change(app: Intake, ticket_id: str, change, correlation_id: str | None):
    """Load, change, save with events; on a concurrent save read again and retry."""
    for _ in range(SAVE_ATTEMPTS):
        ticket = app.tickets.get(ticket_id)
        result = change(ticket)
        if not ticket.recorded and result is False:
            return ticket, result
        staged = _recorded(ticket, correlation_id)
        try:
            app.tickets.save(ticket, staged)
        except Stale:
            continue
        app.flusher.submit(app.tickets.collection, ticket.id, staged, ticket.version)
        return ticket, result
    raise Conflict("The ticket is changing too fast; try again.")


def add_message(app: Intake, ticket_id: str, body: str, correlation_id: str | None) -> dict:
    message_id = uuid.uuid4().hex

    def change(ticket: Ticket):
        try:
            ticket.add_message(message_id, body, now())
        except TicketClosed:
            raise Conflict("The ticket is closed; open a new ticket instead.") from None
        return True

    ticket, _ = _change(app, ticket_id, change, correlation_id)
    return next(entry for entry in ticket.thread if entry["id"] == message_id)


def close_ticket(app: Intake, ticket_id: str, by: str, correlation_id: str | None) -> Ticket:
    ticket, _ = _change(app, ticket_id, lambda t: t.close(by, now()), correlation_id)
    return ticket


def auto_close(app: Intake) -> int:
    """Close tickets resolved longer ago than TICKETFLOW_AUTO_CLOSE_HOURS."""
    hours = app.settings.auto_close_hours
    closed = 0
    for ticket_id in app.tickets.resolved_before(now() - timedelta(hours=hours)):
        ticket, changed = _change(
            app, ticket_id, lambda t: t.due_for_auto_close(now(), hours) and t.close("auto", now()), None
        )
        closed += bool(changed)
    return closed


def expire_records(app: Intake) -> None:
    app.keys.expire(now())
    app.processed.expire()


# --- events -----------------------------------------------------------------------------------


def record_and_apply(app: Intake, envelope: dict) -> None:
    """Apply another service's event to intake's view, then put every event on the ticket's timeline."""
    data = events.load_data(envelope)
    at = events.parse_time(envelope["occurred_at"])
    # intake's own events changed the ticket when they were stored; notification.* never change it
    if envelope["producer"] != SERVICE and changes_view(envelope["type"]):
        _change(
            app, envelope["ticket_id"], lambda t: t.apply(envelope["type"], data, at), envelope.get("correlation_id")
        )
    app.timeline.record(
        {
            "event_id": envelope["event_id"],
            "ticket_id": envelope["ticket_id"],
            "type": envelope["type"],
            "producer": envelope["producer"],
            "occurred_at": at,
            "correlation_id": envelope.get("correlation_id"),
            "summary": summarize(envelope["type"], data),
        }
    )


def handlers(app: Intake) -> dict:
    return {event_type: (lambda envelope: record_and_apply(app, envelope)) for event_type in events.EVENT_TYPES}
