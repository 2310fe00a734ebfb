"""sla's commands and event handlers: load a ticket's clocks, apply the event, save with the alerts now due."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from services.sla import reports, whatif
from services.sla.business_time import DAYS, CalendarError, add_business_minutes, parse_calendar
from services.sla.distribution import with_tallied_histograms
from services.sla.domain import (
    ALWAYS,
    STATS_WINDOW,
    Alert,
    Policy,
    PolicyError,
    TicketClocks,
    valid_calendar_id,
    validate_policy,
    why_calendar_stays,
)
from services.sla.store import BreachStore, CalendarStore, ClockStore, PolicyStore
from shared import events, metrics, outbox
from shared.access import AgentDirectory, TicketAccess, may_read, sees_everything
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Invalid, NotFound
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes, outbox_for
from shared.saving import NO_CHANGE, read_after_first, update

SERVICE = "sla"


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
    wake_timer: Callable[[datetime | None], None]  # told each saved next_due: the deadline timer, or nothing
    access: TicketAccess  # each ticket's requester, team and agent: who reads its clocks
    agents: AgentDirectory  # agent_id -> teams, from agent.updated

    @property
    def breach_grace(self) -> timedelta:
        """How long past its deadline a breach waits: an event already on its way (a resolve) lands first."""
        return timedelta(seconds=self.settings.sla_breach_grace)

    def ensure_storage(self) -> None:
        self.clocks.ensure_indexes()
        self.breaches.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()
        self.access.ensure_indexes()
        self.policies.seed_defaults(now())


def bootstrap(settings: Settings, wake_timer: Callable[[datetime | None], None] = lambda next_due: None) -> Sla:
    """sla's stores on its own database; `wake_timer` hears of every saved next_due (the worker's timer)."""
    db = database(settings, SERVICE)
    pending, flusher = outbox_for(settings, SERVICE, db)
    return Sla(
        settings,
        PolicyStore(db),
        CalendarStore(db),
        ClockStore(db, flusher),
        BreachStore(db),
        ProcessedEvents(db),
        pending,
        flusher,
        wake_timer,
        TicketAccess(db),
        AgentDirectory(db),
    )


# --- clocks -----------------------------------------------------------------------------------------


def _staged(clocks: TicketClocks, alerts: list[Alert]) -> dict:
    """The alerts (and a change of the deadlines) as outbox entries, each under its derived event id."""
    envelopes = [
        events.make_event(
            alert.type,
            clocks.ticket_id,
            alert.data,
            producer=SERVICE,
            correlation_id=alert.correlation_id or clocks.correlation_id,
            event_id=alert.event_id,
            occurred_at=alert.at,
        )
        for alert in alerts
    ]
    return outbox.entries(envelopes, events.serialize)


@dataclass
class _Loaded:
    """A ticket's clocks as read, with what saving them needs: the version read and the next_due stored."""

    clocks: TicketClocks
    version: int
    stored_due: datetime | None


@dataclass
class _Due:
    """What a change leaves to save: the alerts due by `at`, when the timer must look next, and the deadlines
    changed (`announced`: an sla.deadlines_changed, published with the alerts)."""

    at: datetime
    alerts: list[Alert]
    next_due: datetime | None
    announced: list[Alert] = field(default_factory=list)


def update_clocks(
    svc: Sla,
    ticket_id: str,
    change: Callable[[TicketClocks], bool],
    *,
    create: bool = False,
    needed: set = frozenset(),
    cause: dict | None = None,
    announce: bool = False,
) -> TicketClocks:
    """Load, change, announce what is due by now and the deadlines if they moved, save if anything moved; on a
    concurrent save, again.

    A ticket not known yet (its ticket.created not processed) is NotFound: the consumer retries later.
    `create`: the clocks are nearly never stored yet, so the first attempt inserts without a read (an insert
    that finds them there, a repeated event, reads them and applies the change to them). `cause`: the event's
    envelope, whose correlation id the deadlines' event carries on. `announce`: the deadlines are published
    whatever they were before (clocks stored before there was sla.deadlines_changed).
    """
    correlation_id = (cause or {}).get("correlation_id")
    stored = read_after_first(svc.clocks.load, create)

    def load() -> _Loaded:
        calendars = svc.calendars.parsed(set(needed))
        loaded = stored(ticket_id, calendars)
        if loaded is None and not create:
            raise NotFound(f"No clocks for ticket {ticket_id} yet.")
        return _Loaded(*(loaded or (TicketClocks(ticket_id, calendars=calendars), 0, None)))

    def step(loaded: _Loaded):
        clocks = loaded.clocks
        before = {} if announce else clocks.deadlines()  # announce: never equal, so published whatever they are
        changed, at = change(clocks), now()
        followed = clocks.follow_calendars()  # hours changed since a deadline was computed: at any step
        due = _Due(at, clocks.due_alerts(at, svc.breach_grace), clocks.next_due(at, svc.breach_grace))
        because = next(iter(followed)) if len(followed) == 1 and not changed else None  # the calendar alone: said
        if (changed or followed) and (deadlines := clocks.deadlines_changed(before, at, correlation_id, because)):
            due.announced.append(deadlines)
        changed = changed or bool(followed)
        return due if changed or due.alerts or due.next_due != loaded.stored_due else NO_CHANGE

    def save(loaded: _Loaded, due: _Due) -> None:
        staged = _staged(loaded.clocks, [*due.alerts, *due.announced])
        if loaded.version:
            svc.clocks.save(loaded.clocks, loaded.version, due.next_due, staged)
        elif not svc.clocks.insert(loaded.clocks, due.next_due, staged):
            raise Stale(ticket_id)  # created meanwhile by another worker: apply the change to that

    busy = f"The clocks of ticket {ticket_id} are changing too fast; try again."
    loaded, due = update(load, step, save, busy)
    if due is NO_CHANGE:
        if loaded.version:  # a redelivered event: the copy of the histories the first delivery may not have made
            svc.clocks.copy_histories(loaded.clocks, loaded.version)
        return loaded.clocks
    svc.wake_timer(due.next_due)
    for alert in due.alerts:
        metrics.SLA_ALERT_LAG.labels(alert.type).observe(max((due.at - alert.at).total_seconds(), 0.0))
    return loaded.clocks


DEADLINES_BACKFILL = "deadlines_published"  # the migration's name


def backfill_deadlines(svc: Sla, stop: threading.Event) -> int:
    """Once per database: the deadlines of each ticket not closed that never had an sla.deadlines_changed (its clocks
    stored before there was one), published as its revision 1, nulls included: assignment's queue and intake's ticket
    replace what older warnings left there (a clock paused or met since) before the ticket's next change; how many.
    An unfinished pass (a stop) starts again."""
    if svc.clocks.histories.migrated(DEADLINES_BACKFILL):
        return 0
    tickets = svc.clocks.without_deadlines()
    for ticket_id in tickets:
        if stop.is_set():
            return 0
        # unless an event gave it a revision meanwhile
        update_clocks(svc, ticket_id, lambda clocks: clocks.deadlines_revision == 0, announce=True)
    svc.clocks.histories.mark_migrated(DEADLINES_BACKFILL)
    return len(tickets)


def announce_due(svc: Sla, ticket_id: str) -> None:
    """The timer's step for one ticket: publish what is due, and move its next_due on (its running clocks'
    deadlines follow their calendars first, as at every step: update_clocks)."""
    update_clocks(svc, ticket_id, lambda clocks: False)


# --- events -----------------------------------------------------------------------------------------


def on_created(svc: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    svc.access.learn_created(envelope["ticket_id"], data)
    policies = svc.policies.all()

    def start(clocks: TicketClocks) -> bool:
        clocks.correlation_id = clocks.correlation_id or envelope.get("correlation_id")
        return clocks.created(data["priority"], at, policies)

    update_clocks(svc, envelope["ticket_id"], start, create=True, needed=_calendars_of(policies), cause=envelope)


def on_message_added(svc: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    if data["author"]["type"] != "requester":
        return
    policies = svc.policies.all()
    change = lambda c: c.message_added(at, policies)  # noqa: E731
    update_clocks(svc, envelope["ticket_id"], change, needed=_calendars_of(policies), cause=envelope)


def on_replied(svc: Sla, envelope: dict) -> None:
    at, policies = events.parse_time(envelope["occurred_at"]), svc.policies.all()
    change = lambda c: c.replied(at, policies)  # noqa: E731
    update_clocks(svc, envelope["ticket_id"], change, needed=_calendars_of(policies), cause=envelope)


def on_priority_changed(svc: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    policies = svc.policies.all()
    change = lambda c: c.priority_changed(data["priority"], at, policies)  # noqa: E731
    update_clocks(svc, envelope["ticket_id"], change, needed=_calendars_of(policies), cause=envelope)


def on_status_changed(svc: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    update_clocks(svc, envelope["ticket_id"], lambda c: c.status_changed(data["status"], at), cause=envelope)


def on_moment(method: str) -> Callable[[Sla, dict], None]:
    """ticket.reopened, ticket.closed: each calls the TicketClocks method of that name."""

    def handle(svc: Sla, envelope: dict) -> None:
        at = events.parse_time(envelope["occurred_at"])
        update_clocks(svc, envelope["ticket_id"], lambda clocks: getattr(clocks, method)(at), cause=envelope)

    return handle


def on_resolved(svc: Sla, envelope: dict) -> None:
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    merged = data.get("merged_into") is not None  # the other ticket's resolution, not this one's
    policies = svc.policies.all()  # a message heard before the resolve, and written after it, starts a next_response
    change = lambda clocks: clocks.resolved(at, merged, policies)  # noqa: E731
    update_clocks(svc, envelope["ticket_id"], change, needed=_calendars_of(policies), cause=envelope)


def on_breached(svc: Sla, envelope: dict) -> None:
    """sla's own sla.breached, recorded for GET /breaches once it has been published."""
    if envelope["producer"] == SERVICE:
        ticket_id = envelope["ticket_id"]
        svc.access.note_records(ticket_id)  # first: an assignment learnt from now on restamps the breach
        stamp = svc.access.stamp_of(ticket_id)
        new = svc.breaches.record(envelope["event_id"], events.load_data(envelope), ticket_id, stamp)
        # a redelivery: the first may have died between its write and this check, leaving an older stamp
        svc.breaches.stamps.check({"_id": envelope["event_id"]}, stamp if new else None, svc.access.stamp_of(ticket_id))


def on_assigned(svc: Sla, envelope: dict) -> None:
    """The ticket's team and agent: who may read its clocks (the clocks themselves do not change)."""
    at, data = events.parse_time(envelope["occurred_at"]), events.load_data(envelope)
    # the projection's stamp, not the event's: of two assignments at the same moment the projection kept one
    stamp, records = svc.access.learn_assigned(envelope["ticket_id"], data, at)
    if records:  # else no breach of the ticket exists: on_breached notes one before it reads the stamp to write
        svc.breaches.stamps.restamp({"ticket_id": envelope["ticket_id"]}, stamp)


def on_agent_updated(svc: Sla, envelope: dict) -> None:
    svc.agents.learn(events.load_data(envelope), events.parse_time(envelope["occurred_at"]))


def _calendars_of(policies: dict[str, Policy]) -> set[str]:
    return {policy.calendar for policy in policies.values()}


# --- commands and queries of the API -----------------------------------------------------------------


def _policy_terms(svc: Sla, priority: str, raw: object) -> dict:
    """The terms of a PUT /policies/{priority} body: 404 for an unknown priority, then 422 for any bad field."""
    svc.policies.get(priority)
    try:
        return validate_policy(raw, svc.calendars.ids())
    except PolicyError as exc:
        raise Invalid("The policy is not valid.", exc.errors) from None


def put_policy(svc: Sla, priority: str, raw: object) -> Policy:
    """A new version of the priority's policy; the same terms again change nothing (and keep the version)."""
    terms = _policy_terms(svc, priority, raw)

    def new_terms(policy: Policy):
        return NO_CHANGE if all(getattr(policy, name) == value for name, value in terms.items()) else None

    saved: list[Policy] = []
    save = lambda policy, _: saved.append(svc.policies.replace(policy, terms, now()))  # noqa: E731
    policy, _ = update(
        lambda: svc.policies.get(priority), new_terms, save, "The policy is changing too fast; try again."
    )
    if saved and terms["calendar"] != ALWAYS:
        svc.calendars.restore(terms["calendar"])  # deleted after it was checked above: a version names it now
    return saved[-1] if saved else policy


def put_calendar(svc: Sla, calendar_id: str, raw: object) -> tuple[dict, bool]:
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
    at = now()
    saved = svc.calendars.put(calendar_id, stored, at)
    # the running clocks' deadlines in the new hours (the timer's step), once every process reads them (each keeps
    # the calendars it parsed for up to FRESH_SECONDS: a look before would find the old hours, a review's find).
    # Asked for a PUT of the same hours too: it may repeat one whose look failed after its save (a review's find).
    svc.clocks.look_again(calendar_id, at + timedelta(seconds=2 * CalendarStore.FRESH_SECONDS))
    return saved


def ticket_view(svc: Sla, ticket_id: str, principal: Principal | None = None) -> dict:
    """The ticket's clocks; 404 as for an unknown ticket when the principal may not see it (shared.access)."""
    loaded = svc.clocks.load(ticket_id, svc.calendars.parsed()) if _reader(svc, principal)(ticket_id) else None
    if loaded is None:
        raise NotFound(f"sla knows no ticket {ticket_id} (yet).")
    return _clocks_view(loaded[0], now())


def tickets_view(svc: Sla, ticket_ids: list[str], principal: Principal | None = None) -> list[dict]:
    """The clocks of several tickets as `ticket_view` shows one, in the order asked; a ticket the principal may
    not see, or sla does not know, is left out (never a 404 for the page: a queue asks for its rows at once)."""
    wanted = list(filter(_reader(svc, principal), dict.fromkeys(ticket_ids)))
    at = now()
    loaded = {clocks.ticket_id: clocks for clocks in svc.clocks.load_many(wanted, svc.calendars.parsed())}
    return [_clocks_view(loaded[ticket_id], at) for ticket_id in wanted if ticket_id in loaded]


def _reader(svc: Sla, principal: Principal | None) -> Callable[[str], bool]:
    """Whether the principal may see a ticket (shared.access); one look-up by _id each when it is not everyone's
    reader (an `_id $in` reads the whole collection on the embedded store: 50 one by one take ~20 ms)."""
    if principal is None or sees_everything(principal):
        return lambda ticket_id: True
    agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
    return lambda ticket_id: may_read(principal, svc.access.find(ticket_id), agent)


def _clocks_view(clocks: TicketClocks, at: datetime) -> dict:
    return {"ticket_id": clocks.ticket_id, "priority": clocks.priority, "clocks": clocks.describe(at)}


def stats(svc: Sla, since: datetime | None, until: datetime | None = None) -> dict:
    since = since or now() - STATS_WINDOW
    # the days' figures and the copies written since (store.StatsDays); until the worker's first sweep of them,
    # the compact copies once every ticket has one (a copy follows each write of the clocks, in the same
    # handling), else the clocks themselves
    histories = svc.clocks.histories
    tallied = histories.days.tallied(since, until)
    if tallied is None:
        source = histories.created_between if histories.backfilled() else svc.clocks.created_since
        tallied = reports.tally(source(since, until))
    items = with_tallied_histograms(reports.rows(tallied), tallied)
    return {"since": since, "until": until, "items": items, "next_cursor": None}


def one_since(in_query: datetime | None, in_body: datetime | None) -> datetime | None:
    """The what-if's `since`, given in its query or its body: 422 for two different times."""
    if in_query is not None and in_body is not None and in_query != in_body:
        said = "Given twice, as two different times: give since in the query or in the body."
        raise Invalid("The what-if's since is given twice.", {"since": [said]})
    return in_query or in_body


def what_if(svc: Sla, priority: str, raw: object, since: datetime | None) -> dict:
    """The priority's tickets since `since` replayed under the current policies and under a draft; writes nothing."""
    terms = _policy_terms(svc, priority, raw)
    policies = svc.policies.all()
    current = policies[priority]
    draft = Policy(priority, current.version + 1, **terms)
    calendars = svc.calendars.parsed(_calendars_of(policies) | {draft.calendar})
    since = since or now() - STATS_WINDOW
    until = now() - svc.breach_grace  # running clocks count as breached once the timer would have said so
    with _collector_paused():
        answer = whatif.compare(svc.clocks.histories.since(since, priority), policies, draft, calendars, until)
    answer["current"]["policy"] = policy_view(svc, current)
    answer["draft"]["policy"] = {"priority": priority, **terms}
    answer["changed"] = [_json_ready(change) for change in answer["changed"]]  # see schemas.AsGiven
    return {"priority": priority, "since": since, **answer}


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector held off: a what-if makes some 100,000 small acyclic objects, and the
    collections they trigger cost a third of its time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json_ready(change: dict) -> dict:
    def outcome(side: dict) -> dict:
        times = {name: side[name] and events.format_time(side[name]) for name in ("due_at", "breached_at")}
        return {"outcome": side["outcome"], **times}

    return {**change, "current": outcome(change["current"]), "draft": outcome(change["draft"])}


def policy_view(svc: Sla, policy: Policy) -> dict:
    return {**asdict(policy), "changed_at": svc.policies.changed_at(policy.priority)}


def list_policies(svc: Sla) -> list[dict]:
    return [policy_view(svc, policy) for policy in svc.policies.all().values()]


def get_policy(svc: Sla, priority: str) -> dict:
    return policy_view(svc, svc.policies.get(priority))


def delete_calendar(svc: Sla, calendar_id: str) -> None:
    """Remove a calendar no policy version ever named (domain.why_calendar_stays); 409 otherwise, 404 for none.

    Checked again once it is gone: a policy saved meanwhile naming it (it read the calendar before it went) puts it
    back, refused as if it had come first; the policy's save restores it too, whichever runs last."""
    if reason := why_calendar_stays(calendar_id, {}):  # 24x7: no read
        raise Conflict(reason)
    svc.calendars.document(calendar_id)  # 404
    if reason := why_calendar_stays(calendar_id, svc.policies.every_version()):
        raise Conflict(reason)
    if not svc.calendars.delete(calendar_id, now()):
        raise NotFound(f"No calendar {calendar_id!r}.")
    if reason := why_calendar_stays(calendar_id, svc.policies.every_version()):
        svc.calendars.restore(calendar_id)
        raise Conflict(reason)


def policy_versions(svc: Sla, priority: str) -> list[dict]:
    return [{**version, "priority": priority} for version in svc.policies.versions(priority)]


def list_calendars(svc: Sla) -> list[dict]:
    return [always_calendar(), *svc.calendars.documents()]


def get_calendar(svc: Sla, calendar_id: str) -> dict:
    return always_calendar() if calendar_id == ALWAYS else svc.calendars.document(calendar_id)


def always_calendar() -> dict:
    """The built-in 24x7 calendar in its JSON form."""
    hours = {day: [["00:00", "24:00"]] for day in DAYS}
    return {"_id": ALWAYS, "timezone": "UTC", "hours": hours, "holidays": [], "version": 1}


def list_breaches(
    svc: Sla,
    filters: dict,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    principal: Principal | None = None,
    until: datetime | None = None,
):
    """Newest first; an agent's list holds only the breaches of the tickets it may see (shared.access)."""
    if principal is not None and not sees_everything(principal):
        agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
        scope = svc.breaches.stamps.agent_scope(agent, svc.access.ids_visible_to)
        return svc.breaches.page(filters, since, limit, cursor, until=until, **scope)
    return svc.breaches.page(filters, since, limit, cursor, until=until)


HANDLERS = {
    "ticket.created": on_created,
    "ticket.assigned": on_assigned,
    "agent.updated": on_agent_updated,
    "ticket.message_added": on_message_added,
    "ticket.replied": on_replied,
    "ticket.status_changed": on_status_changed,
    "ticket.priority_changed": on_priority_changed,
    "ticket.resolved": on_resolved,
    "ticket.reopened": on_moment("reopened"),
    "ticket.closed": on_moment("closed"),
    "sla.breached": on_breached,
}
