"""sla's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers and domain."""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView

from services.sla import handlers
from services.sla.schemas import (
    BreachListSchema,
    BreachQuerySchema,
    CalendarListSchema,
    CalendarPutSchema,
    CalendarSchema,
    PolicyListSchema,
    PolicyPutSchema,
    PolicySchema,
    StatsQuerySchema,
    StatsSchema,
    TicketClocksListSchema,
    TicketClocksSchema,
    TicketsQuerySchema,
    WhatIfBodySchema,
    WhatIfQuerySchema,
    WhatIfSchema,
)
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.web import create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """Service level targets: policies per priority, business calendars and each ticket's clocks.

Clocks: `first_response` starts at creation and is met by the first public reply; `next_response`
starts at each requester message that follows an agent reply or a resolve (whose resolution is an answer; a
message heard before the reply it follows starts it when the reply comes) and is met by the next reply (one
instance per cycle, numbered from 0; null in `GET /tickets/{id}` until the first one starts);
`resolution` starts at creation, pauses while the ticket waits on the requester, stops when it is
resolved, resumes with its elapsed time kept on reopen and stops for good when it is closed.
Targets count business time only, in the policy's calendar; every time in seconds is business seconds.

Changing a policy applies to tickets created afterwards, and to running clocks at their ticket's
next priority change; clocks record the version they run under (`GET /policies/{priority}/versions`
explains any past deadline). A changed calendar applies from the moment it is saved: time counted
before it stays counted in the hours then (a calendar keeps its last 50 changes), time after it counts in the
new hours, and the running clocks' deadlines move into them at the next step of each ticket's clocks (an event,
or the deadline timer's look, which the change asks for at every ticket with a clock in the calendar two seconds
later; `sla.deadlines_changed` says so, naming the calendar in `calendar`). A priority change keeps each
clock's elapsed time under the new target: a clock already past its old deadline keeps that breach,
announced under the priority and version it broke (`sla.breached` with them, its `due_at` the old
deadline); a paused one whose time so far is past the new target breaches at the change.

A clock breaches when it passes its deadline (a reply at the deadline's very millisecond is in time; `breached_at`
is the deadline). A clock's `state` says where it is in its life: `breached` while it runs or waits past its
deadline; once answered, resolved or closed it reads `met` or `stopped`, and a `breached_at` says it was late
(`/stats` counts it breached, and the console says "Met late, after its breach"). A breach is announced a moment
(`TICKETFLOW_SLA_BREACH_GRACE`) after its deadline, so that a reply or a resolve on its way lands first. One that
lands later still, and happened before the deadline (a backlog, a retry), makes the clock met, paused or stopped in
time, as it was: `GET /tickets/{id}` and `/stats` say so, while the `sla.breached` already sent stays sent (and
listed in `/breaches`). Should that clock pass its deadline later, it is marked breached without a second
`sla.breached`: at most one a clock instance.

Rights: `agent` and `admin` read policies, calendars, breaches and stats; only `admin` changes
policies and calendars; `portal`, `agent` and `admin` read a ticket's clocks, each only the tickets
it may see: admins and the portal server's own token every one, a requester-scoped portal token
(`requester_email`, maybe `ticket_id`) its requester's (that one), an agent those of its teams and
those assigned to it (learnt from `ticket.created`, `ticket.assigned` and `agent.updated`). Any other
ticket answers 404, as an unknown one does; an agent's `GET /breaches` lists only those tickets' breaches.
"""

WHAT_IF = """The body is a draft policy, exactly the body of `PUT /policies/{priority}` and checked the same way
(an unknown priority is 404, a bad field 422), and may carry `since` beside it (or the query does; two different
times are 422); `since` (default: 30 days ago) picks the tickets as `/stats` does: those of this priority created
since then.

Each of their clocks is replayed from the changes it took (its start, pauses while waiting on the
requester, resumes, reopen, met, stopped, priority changes, each at the moment it took effect), in
business time, with the draft in place of this priority's policy. Time spent under another priority
keeps that priority's current policy; a priority change keeps the elapsed time, as live clocks do; a
running clock counts as breached once its deadline has passed.

`current` and `draft` hold this priority's rows of `/stats` (met, breached, open, stopped, compliance,
median and 90th percentile) under the current policies and under the draft. A clock that ran only under
the current versions counts as it is, so with no policy change within the period `current` equals
`/stats` for the same `since`; one that ran under an older version is replayed under the current one.
`changed` lists every clock breached one way and not the other (met -> breached, breached -> met; a
clock still open, or stopped unanswered, shows as such), with its deadline each way, oldest first.
`skipped` counts tickets whose clocks were recorded before sla kept their history: they are in neither
figure. A ticket now of another priority is not replayed here, even if it spent time under this one.

Nothing changes: no policy version, no clock, no event."""

policies = Blueprint("policies", __name__, description="SLA policies per priority, with every version")
calendars = Blueprint("calendars", __name__, description="Business calendars the targets count in")
tickets = Blueprint("tickets", __name__, description="A ticket's SLA clocks")
breaches = Blueprint("breaches", __name__, description="Every SLA breach announced")
stats = Blueprint("stats", __name__, description="SLA compliance per priority and clock")


def sla() -> handlers.Sla:
    return current_app.extensions["ticketflow.sla"]


@policies.route("/policies")
class Policies(MethodView):
    @require_roles("agent", "admin")
    @policies.response(200, PolicyListSchema)
    def get(self):
        """The current policy of each priority: emergency, high, normal, low (next_cursor is always null)."""
        return {"items": handlers.list_policies(sla()), "next_cursor": None}


@policies.route("/policies/<priority>")
class PolicyByPriority(MethodView):
    @require_roles("agent", "admin")
    @policies.response(200, PolicySchema)
    def get(self, priority):
        """The current policy of a priority."""
        return handlers.get_policy(sla(), priority)

    @require_roles("admin")
    @policies.doc(
        description="Every field is required. Minutes are numbers greater than 0 and may be fractional (0.05 is "
        "three seconds); warn_at_percent lists distinct whole percents from 1 to 99; calendar names a calendar "
        "that exists. Any change raises the version; the same terms again keep it.\n\n"
        "Changing a policy applies to tickets created afterwards, and to running clocks at their ticket's next "
        "priority change; clocks record the version they run under."
    )
    @policies.arguments(PolicyPutSchema())
    @policies.response(200, PolicySchema)
    def put(self, body, priority):
        """Set a priority's policy (a new version if the terms change)."""
        return handlers.policy_view(sla(), handlers.put_policy(sla(), priority, body))


@policies.route("/policies/<priority>/versions")
class PolicyVersions(MethodView):
    @require_roles("agent", "admin")
    @policies.response(200, PolicyListSchema)
    def get(self, priority):
        """Every version of a priority's policy, newest first, with its terms and when it took effect."""
        return {"items": handlers.policy_versions(sla(), priority), "next_cursor": None}


@policies.route("/policies/<priority>/what-if")
class PolicyWhatIf(MethodView):
    @require_roles("admin")
    @policies.doc(description=WHAT_IF)
    @policies.arguments(WhatIfQuerySchema(), location="query")
    @policies.arguments(WhatIfBodySchema())
    @policies.response(200, WhatIfSchema)
    def post(self, query, body, priority):
        """What a draft policy would have done to the priority's recent tickets (changes nothing). `since` in the
        query or in the body (422 when both are given and differ)."""
        since = handlers.one_since(query.get("since"), body.pop("since", None))
        return handlers.what_if(sla(), priority, body, since)


@calendars.route("/calendars")
class Calendars(MethodView):
    @require_roles("agent", "admin")
    @calendars.response(200, CalendarListSchema)
    def get(self):
        """The built-in 24x7 first, then every calendar by id (next_cursor is always null)."""
        return {"items": handlers.list_calendars(sla()), "next_cursor": None}


@calendars.route("/calendars/<calendar_id>")
class CalendarById(MethodView):
    @require_roles("agent", "admin")
    @calendars.response(200, CalendarSchema)
    def get(self, calendar_id):
        """A calendar."""
        return handlers.get_calendar(sla(), calendar_id)

    @require_roles("admin")
    @calendars.doc(
        description="Hours are local wall-clock periods in the time zone; a day left out is closed; holidays "
        "(optional) are dates in that zone. 24x7 is built in and cannot change (409).\n\n"
        "A changed calendar applies from the moment it is saved: time counted before stays counted in the hours "
        "then, and running clocks' deadlines move into the new hours (the deadline timer's next step)."
    )
    @calendars.arguments(CalendarPutSchema())
    @calendars.response(200, CalendarSchema)
    @calendars.alt_response(
        201,
        schema=CalendarSchema,
        description="The calendar was created",
        headers={"Location": {"schema": {"type": "string"}}},
    )
    def put(self, body, calendar_id):
        """Create (201, with its Location) or replace (200) a calendar; the same hours again make no new version (the
        deadline timer is still asked to look at its clocks: the PUT may repeat one whose look failed)."""
        document, created = handlers.put_calendar(sla(), calendar_id, body)
        return (document, 201, {"Location": f"/calendars/{calendar_id}"}) if created else (document, 200)

    @require_roles("admin")
    @calendars.response(204)
    def delete(self, calendar_id):
        """Remove a calendar added by mistake: one no version of any policy ever named (clocks under a version
        count in its calendar, and every version is kept). 409 for 24x7 and for a calendar a policy named, saying
        which; 404 for no such calendar. Its id may be used again for a new calendar. A policy saved naming it in the
        same instant brings it back, even after the 204."""
        handlers.delete_calendar(sla(), calendar_id)


@tickets.route("/tickets")
class SeveralTicketsClocks(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.arguments(TicketsQuerySchema(), location="query")
    @tickets.response(200, TicketClocksListSchema)
    def get(self, query):
        """The clocks of several tickets at once (a queue's rows), in the order asked; those the reader may not
        see, or sla does not know yet, are left out."""
        return {"items": handlers.tickets_view(sla(), query["ticket_id"], principal()), "next_cursor": None}


@tickets.route("/tickets/<ticket_id>")
class TicketClocks(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.response(200, TicketClocksSchema)
    def get(self, ticket_id):
        """The latest clock of each kind; 404 until sla has seen the ticket's creation."""
        return handlers.ticket_view(sla(), ticket_id, principal())


@breaches.route("/breaches")
class Breaches(MethodView):
    @require_roles("agent", "admin")
    @breaches.arguments(BreachQuerySchema(), location="query")
    @breaches.response(200, BreachListSchema)
    def get(self, query):
        """Breaches, newest first, filtered by when they happened (since, until), priority and clock."""
        filters = {"priority": query.get("priority"), "clock": query.get("clock")}
        items, cursor = handlers.list_breaches(
            sla(), filters, query.get("since"), query["limit"], query.get("cursor"), principal(), query.get("until")
        )
        return {"items": items, "next_cursor": cursor}


@stats.route("/stats")
class Stats(MethodView):
    @require_roles("agent", "admin")
    @stats.doc(
        description="Over the tickets created since `since` (default: 30 days ago) and before `until` (default: no "
        "end; one call per week with both gives a weekly series), per priority and clock: "
        "`met` (answered in time; a resolution clock resolved in time), `breached` (passed its "
        "target, whenever that was), `open` (running or paused), `stopped` (a response clock ended unanswered "
        "by a resolve or close; a resolution clock a close ended unresolved: closed by the requester, or merged "
        "into another ticket), compliance = met / (met + breached), and the median (the middle time, or the mean of "
        "the two middle ones) and 90th percentile (nearest rank) of the business seconds to answer or resolve "
        "over the `measured` finished clocks (to the millisecond), and `histogram`: those times in buckets up to "
        "1, 5, 15 and 30 minutes, 1, 2, 4 and 8 hours, 1, 3 and 7 days, then beyond (`up_to_seconds` null)."
    )
    @stats.arguments(StatsQuerySchema(), location="query")
    @stats.response(200, StatsSchema)
    def get(self, query):
        """SLA compliance per priority and clock (next_cursor is always null)."""
        return handlers.stats(sla(), query.get("since"), query.get("until"))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app("sla", DESCRIPTION, settings)
    app.extensions["ticketflow.sla"] = handlers.bootstrap(settings)
    for blueprint in (policies, calendars, tickets, breaches, stats):
        api.register_blueprint(blueprint)
    ensure_storage_once(app, app.extensions["ticketflow.sla"].ensure_storage)
    return app
