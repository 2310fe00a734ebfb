"""sla's commands and event handlers: load a ticket's clocks, apply the event, save with the alerts now due."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.sla import reports
from services.sla.business_time import CalendarError, add_business_minutes, parse_calendar
from services.sla.domain import ALWAYS, Alert, Policy, PolicyError, TicketClocks, valid_calendar_id, validate_policy
from services.sla.store import BreachStore, CalendarStore, ClockStore, PolicyStore
from shared import events, metrics, outbox
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Invalid, NotFound
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes

SERVICE = "sla"
SAVE_ATTEMPTS = 16
STATS_WINDOW = timedelta(days=30)


@dataclass
class Sla:
    """Everything sla's handlers need, wired once per process (see `bootstrap`)."""

    settings: Settings
    policies: PolicyStore
    calendars: CalendarStore
    clocks: ClockStore
    breaches: BreachStore
    processed: ProcessedEvents
    pending: PendingOutboxes
    flusher: OutboxFlusher
    on_saved: Callable[[datetime | None], None] = field(default=lambda next_due: None)  # the worker's timer

    @property
    def breach_grace(self) -> timedelta:
        """How long past its deadline a breach waits: an event already on its way (a resolve) lands first."""
        return timedelta(seconds=self.settings.sla_breach_grace)

    def ensure_storage(self) -> None:
        self.clocks.ensure_indexes()
        self.breaches.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()
        self.policies.seed_defaults(now())


def bootstrap(settings: Settings) -> Sla:
    db = database(settings, SERVICE)
    pending = PendingOutboxes(db)
    return Sla(
        settings,
        PolicyStore(db),
        CalendarStore(db),
        ClockStore(db),
        BreachStore(db),
        ProcessedEvents(db),
        pending,
        OutboxFlusher(settings, SERVICE, pending),
    )


# --- clocks -----------------------------------------------------------------------------------------


def _staged(clocks: TicketClocks, alerts: list[Alert]) -> dict:
    """The alerts as outbox entries, each under its derived event id."""
    envelopes = [
        events.make_event(
            alert.type,
            clocks.ticket_id,
            alert.data,
            producer=SERVICE,
            correlation_id=clocks.correlation_id,
            event_id=alert.event_id,
            occurred_at=alert.at,
        )
        for alert in alerts
    ]
    return outbox.entries(envelopes, events.serialize)


def update_clocks(
    app: Sla, ticket_id: str, change: Callable[[TicketClocks], bool], *, create: bool = False, needed: set = frozenset()
) -> TicketClocks:
    """Load, change, announce what is due by now, save if anything moved; on a concurrent save, again.

    A ticket not known yet (its ticket.created not processed) is NotFound: the consumer retries later.
    """
    for _ in range(SAVE_ATTEMPTS):
        calendars = app.calendars.parsed(set(needed))
        loaded = app.clocks.load(ticket_id, calendars)
        if loaded is None and not create:
            raise NotFound(f"No clocks for ticket {ticket_id} yet.")
        clocks, version, stored_due = loaded or (TicketClocks(ticket_id, calendars=calendars), 0, None)
        changed = change(clocks)
        at = now()
        alerts = clocks.due_alerts(at, app.breach_grace)
        next_due = clocks.next_due(at, app.breach_grace)
        if not (changed or alerts or next_due != stored_due):
            return clocks
        staged = _staged(clocks, alerts)
        try:
            if version:
                version = app.clocks.save(clocks, version, next_due, staged)
            elif app.clocks.insert(clocks, next_due, staged):
                version = 1
            else:
                continue  # created meanwhile by another worker: apply the change to that
        except Stale:
            continue
        app.flusher.submit(app.clocks.collection, ticket_id, staged, version)
        app.on_saved(next_due)
        for alert in alerts:
            metrics.SLA_ALERT_LAG.labels(alert.type).observe(max((at - alert.at).total_seconds(), 0.0))
        return clocks
    raise Conflict(f"The clocks of ticket {ticket_id} are changing too fast; try again.")


def announce_due(app: Sla, ticket_id: str) -> None:
    """The timer's step for one ticket: publish what is due, and move its next_due on."""
    update_clocks(app, ticket_id, lambda clocks: False)


# --- events -----------------------------------------------------------------------------------------


def on_created(app: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    policies = app.policies.all()

    def start(clocks: TicketClocks) -> bool:
        clocks.correlation_id = clocks.correlation_id or envelope.get("correlation_id")
        return clocks.created(data["priority"], at, policies)

    update_clocks(app, envelope["ticket_id"], start, create=True, needed=_calendars_of(policies))


def on_message_added(app: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    if data["author"]["type"] != "requester":
        return
    policies = app.policies.all()
    update_clocks(app, envelope["ticket_id"], lambda c: c.message_added(at, policies), needed=_calendars_of(policies))


def on_priority_changed(app: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    policies = app.policies.all()
    change = lambda c: c.priority_changed(data["priority"], at, policies)  # noqa: E731
    update_clocks(app, envelope["ticket_id"], change, needed=_calendars_of(policies))


def on_status_changed(app: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    update_clocks(app, envelope["ticket_id"], lambda c: c.status_changed(data["status"], at))


def on_moment(method: str) -> Callable[[Sla, dict], None]:
    """ticket.replied, resolved, reopened, closed: each calls the TicketClocks method of that name."""

    def handle(app: Sla, envelope: dict) -> None:
        at = events.parse_time(envelope["occurred_at"])
        update_clocks(app, envelope["ticket_id"], lambda clocks: getattr(clocks, method)(at))

    return handle


def on_breached(app: Sla, envelope: dict) -> None:
    """sla's own sla.breached, recorded for GET /breaches once it has been published."""
    if envelope["producer"] == SERVICE:
        app.breaches.record(envelope["event_id"], events.load_data(envelope), envelope["ticket_id"])


def _calendars_of(policies: dict[str, Policy]) -> set[str]:
    return {policy.calendar for policy in policies.values()}


EVENT_HANDLERS = {
    "ticket.created": on_created,
    "ticket.message_added": on_message_added,
    "ticket.replied": on_moment("replied"),
    "ticket.status_changed": on_status_changed,
    "ticket.priority_changed": on_priority_changed,
    "ticket.resolved": on_moment("resolved"),
    "ticket.reopened": on_moment("reopened"),
    "ticket.closed": on_moment("closed"),
    "sla.breached": on_breached,
}


def handlers(app: Sla) -> dict:
    return {kind: (lambda envelope, handle=handle: handle(app, envelope)) for kind, handle in EVENT_HANDLERS.items()}


# --- commands and queries of the API -----------------------------------------------------------------


def put_policy(app: Sla, priority: str, raw: object) -> Policy:
    """A new version of the priority's policy; the same terms again change nothing (and keep the version)."""
    current = app.policies.get(priority)
    try:
        terms = validate_policy(raw, app.calendars.ids())
    except PolicyError as exc:
        raise Invalid("The policy is not valid.", exc.errors) from None
    for _ in range(SAVE_ATTEMPTS):
        if all(getattr(current, name) == value for name, value in terms.items()):
            return current
        try:
            return app.policies.replace(current, terms, now())
        except Stale:
            current = app.policies.get(priority)
    raise Conflict("The policy is changing too fast; try again.")


def put_calendar(app: Sla, calendar_id: str, raw: object) -> tuple[dict, bool]:
    """Create or replace a calendar; (its stored form, whether it was created). 24x7 cannot change."""
    if calendar_id == ALWAYS:
        raise Conflict("The 24x7 calendar is built in and cannot be changed.")
    if not valid_calendar_id(calendar_id):
        raise Invalid("Not a calendar id.", {"id": ["Letters, digits, '_', '.' or '-', up to 64."]})
    try:
        calendar = parse_calendar(calendar_id, raw)
        add_business_minutes(calendar, now(), 1)  # open at some point in the next SEARCH_DAYS
    except CalendarError as exc:
        raise Invalid("The calendar is not valid.", exc.errors) from None
    except ValueError:
        never = ["The calendar is never open in the next 400 days."]
        raise Invalid("The calendar is not valid.", {"hours": never}) from None
    stored = {"timezone": raw["timezone"], "hours": raw["hours"], "holidays": sorted(set(raw.get("holidays", [])))}
    return app.calendars.put(calendar_id, stored, now())


def ticket_view(app: Sla, ticket_id: str) -> dict:
    loaded = app.clocks.load(ticket_id, app.calendars.parsed())
    if loaded is None:
        raise NotFound(f"sla knows no ticket {ticket_id} (yet).")
    clocks = loaded[0]
    return {"ticket_id": ticket_id, "priority": clocks.priority, "clocks": clocks.describe(now())}


def stats(app: Sla, since: datetime | None) -> dict:
    since = since or now() - STATS_WINDOW
    return {"since": since, "items": reports.stats(app.clocks.created_since(since)), "next_cursor": None}
