"""assignment's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers and domain."""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView

from services.assignment import handlers
from services.assignment.schemas import (
    HEAVY_FIELDS,
    AgentCreateSchema,
    AgentListQuerySchema,
    AgentListSchema,
    AgentPatchSchema,
    AgentSchema,
    AssignSchema,
    NoteCreateSchema,
    NoteSchema,
    PriorityChangeSchema,
    QueueQuerySchema,
    ReplyCreateSchema,
    ReplySchema,
    ResolveSchema,
    StatusChangeSchema,
    TeamCreateSchema,
    TeamListSchema,
    TeamPatchSchema,
    TeamSchema,
    TicketListSchema,
    TicketSchema,
    only_fields,
)
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.web import correlation_id, create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """Who works on which ticket: agents, teams, queues, and the agents' work on tickets.

Every new ticket goes to the team that routes its topic (team `general` takes every topic no team
names) and, in it, to the available agent under capacity with the fewest open tickets (ties: the one
assigned least recently). With nobody free the ticket waits in the team queue and is assigned as
soon as capacity frees, emergency first, then high, normal, low, oldest first.

Rights: the role `agent` acts on tickets assigned to its `agent_id` or waiting unassigned in one of
its teams, reads agents, teams and queues, and switches its own availability (`PATCH /agents/{id}` with
`available` alone, on its own id). Every agent of a ticket's team may also add an internal note to
it, whoever has it (a word for the one who does). An agent who is a team lead (`lead: true`) also assigns
and transfers tickets of its team and changes their priority. `admin` may do everything; agents and
teams are otherwise managed by admins only. A ticket an agent may not read (not of its teams, not its own)
answers 404 on every route, as one that does not exist (as in every service); one it reads but may not act
on that way answers 403.

Claiming is the agent's own choice, so it is allowed while the agent is unavailable or at capacity;
availability and capacity govern auto-assignment only. Two agents claiming at once: exactly one wins,
the other gets 409.

`open_tickets` counts the tickets assigned to the agent that are not resolved or closed.
`ticket.assigned` has null `agent_id`, `agent_name` and `agent_email` when a transfer or a reopen puts
the ticket in the team queue rather than with an agent. Replies are public (`ticket.replied`, the
first one is the first response); a reply by an admin who is no agent is signed "The help desk", never with
their address. Notes are internal and never leave this service.
"""

agents = Blueprint("agents", __name__, description="Agents: their teams, capacity and availability")
teams = Blueprint("teams", __name__, description="Teams and the topics they take")
tickets = Blueprint("tickets", __name__, description="Tickets as assignment sees them, and the queue")


def assignment() -> handlers.Assignment:
    return current_app.extensions["ticketflow.assignment"]


@agents.route("/agents")
class Agents(MethodView):
    @require_roles("admin")
    @agents.arguments(AgentCreateSchema())
    @agents.response(201, AgentSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, body):
        """Add an agent; 409 if the id exists or another agent has the email address (in any case: `errors.email`),
        422 for a team that does not exist."""
        agent = handlers.create_agent(assignment(), body, correlation_id())
        return agent, 201, {"Location": f"/agents/{agent['id']}"}

    @require_roles("agent", "admin")
    @agents.arguments(AgentListQuerySchema(), location="query")
    @agents.response(200, AgentListSchema)
    def get(self, query):
        """The agents, or those of one team (a short list: next_cursor is always null)."""
        return {"items": handlers.list_agents(assignment(), team=query.get("team")), "next_cursor": None}


@agents.route("/agents/<agent_id>")
class AgentById(MethodView):
    @require_roles("agent", "admin")
    @agents.response(200, AgentSchema)
    def get(self, agent_id):
        """An agent, with the number of its open tickets."""
        return handlers.get_agent(assignment(), agent_id)

    @require_roles("agent", "admin")
    @agents.arguments(AgentPatchSchema())
    @agents.response(200, AgentSchema)
    def patch(self, changes, agent_id):
        """Change any of name, email, teams, capacity, available and lead_of (admins); an agent may change only
        its own `available` (403 for anything else). 409 for an email address another agent has (`errors.email`).
        An agent taken out of a team hands that team's open tickets back to it (another agent of the team by the
        rule, or its queue): up to 100 in the change itself, the rest by the worker's reconciler, up to 200 a run
        (every `TICKETFLOW_RECONCILE_INTERVAL` s)."""
        return handlers.update_agent(assignment(), agent_id, changes, principal(), correlation_id())


@teams.route("/teams")
class Teams(MethodView):
    @require_roles("admin")
    @teams.arguments(TeamCreateSchema())
    @teams.response(201, TeamSchema)
    def post(self, body):
        """Add a team and the topics it takes; 409 if the id exists.

        A topic goes to the team that names it. Where several name one (a move half done), it goes to the first of
        them by id, and `general` takes every topic no team names; the portal's team page asks before a team takes
        another's topic, then takes it off that team."""
        return handlers.create_team(assignment(), body)

    @require_roles("agent", "admin")
    @teams.response(200, TeamListSchema)
    def get(self):
        """The teams (a short list: next_cursor is always null)."""
        return {"items": handlers.list_teams(assignment()), "next_cursor": None}


@teams.route("/teams/<team_id>")
class TeamById(MethodView):
    @require_roles("admin")
    @teams.arguments(TeamPatchSchema())
    @teams.response(200, TeamSchema)
    def patch(self, changes, team_id):
        """Rename a team or change the topics it takes (a topic several teams name goes to the first by id)."""
        return handlers.update_team(assignment(), team_id, changes)

    @require_roles("admin")
    @teams.response(204)
    def delete(self, team_id):
        """Remove a team added by mistake: one no agent is in (or leads) and no ticket ever went to; the topics it
        named go back to `general`. 409 for `general`, and for a team with agents or tickets (its tickets and the
        reports name it: give its topics to another team instead); 404 for no such team. A ticket routed or moved to
        the team in the same instant brings it back, even after the 204."""
        handlers.delete_team(assignment(), team_id)


@tickets.route("/tickets/<ticket_id>")
class TicketById(MethodView):
    @require_roles("agent", "admin")
    @tickets.response(200, TicketSchema)
    def get(self, ticket_id):
        """A ticket with its team, agent, SLA due times, internal notes and assignment history."""
        return handlers.get_ticket(assignment(), ticket_id, principal())


@tickets.route("/queue")
class Queue(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(QueueQuerySchema(), location="query")
    @tickets.response(200, TicketListSchema)
    def get(self, query):
        """Open tickets, soonest SLA deadline first, then priority, then age; the filters combine. The deadlines are
        those of the clocks running (met, paused and stopped ones do not count), as sla tells them in
        `sla.deadlines_changed` when they change; a ticket with none comes after those, by priority then age."""
        filters = {name: query.get(name) for name in ("agent_id", "team", "status", "priority", "topic", "unassigned")}
        only = query.get("only")
        unread = [name for name in HEAVY_FIELDS if name not in only] if only else []
        items, cursor = handlers.queue(assignment(), filters, query["limit"], query.get("cursor"), principal(), unread)
        if only:
            items = [only_fields(ticket, only) for ticket in items]
        return {"items": items, "next_cursor": cursor}


@tickets.route("/tickets/<ticket_id>/claim")
class Claim(MethodView):
    @require_roles("agent", "admin")
    @tickets.response(200, TicketSchema)
    def post(self, ticket_id):
        """Take a ticket of one of your teams, even while unavailable or at capacity; 409 if another agent has it.
        An admin claims as the agent its token names (`agent_id`), with that agent's rights; an admin's token that
        names none has nobody to give it to (403: `assign` gives a ticket to an agent)."""
        return handlers.claim(assignment(), ticket_id, principal(), correlation_id())


@tickets.route("/tickets/<ticket_id>/assign")
class Assign(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(AssignSchema())
    @tickets.response(200, TicketSchema)
    def post(self, body, ticket_id):
        """Reassign to an agent or transfer to a team (exactly one); an agent must lead the ticket's team."""
        return handlers.assign(
            assignment(), ticket_id, body.get("agent_id"), body.get("team"), principal(), correlation_id()
        )


@tickets.route("/tickets/<ticket_id>/replies")
class Replies(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(ReplyCreateSchema())
    @tickets.response(201, ReplySchema)
    def post(self, body, ticket_id):
        """A public reply to the requester, optionally with a new status; the first one is the first response.
        `files` (an addition to the contract): the names of the files the client attaches to it next, on intake; its
        event names them, so the requester's email says they came."""
        return handlers.reply(
            assignment(), ticket_id, body["body"], body.get("status"), principal(), correlation_id(), body.get("files")
        )


@tickets.route("/tickets/<ticket_id>/notes")
class Notes(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(NoteCreateSchema())
    @tickets.response(201, NoteSchema)
    def post(self, body, ticket_id):
        """An internal note: never shown to the requester, never sent out."""
        return handlers.add_note(assignment(), ticket_id, body["body"], principal())


@tickets.route("/tickets/<ticket_id>/status")
class Status(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(StatusChangeSchema())
    @tickets.response(200, TicketSchema)
    def post(self, body, ticket_id):
        """Set the status to in_progress or waiting_on_requester."""
        return handlers.change_status(assignment(), ticket_id, body["status"], principal(), correlation_id())


@tickets.route("/tickets/<ticket_id>/priority")
class Priority(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(PriorityChangeSchema())
    @tickets.response(200, TicketSchema)
    def post(self, body, ticket_id):
        """Change the priority; an agent must lead the ticket's team."""
        return handlers.change_priority(assignment(), ticket_id, body["priority"], principal(), correlation_id())


@tickets.route("/tickets/<ticket_id>/resolve")
class Resolve(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(ResolveSchema())
    @tickets.response(200, TicketSchema)
    def post(self, body, ticket_id):
        """Resolve the ticket (its assigned agent or an admin); 409 if already resolved or closed. `merged_into`: a
        duplicate's, the number of the same requester's request it was merged into (carried by `ticket.resolved`);
        assignment knows neither requesters nor the other request, so the caller checks it (the portal's merge
        does: the same requester's, open, the two held against a merge the other way round at the same time)."""
        return handlers.resolve(
            assignment(), ticket_id, body["resolution"], principal(), correlation_id(), body.get("merged_into")
        )


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app("assignment", DESCRIPTION, settings)
    app.extensions["ticketflow.assignment"] = handlers.bootstrap(settings)
    api.register_blueprint(agents)
    api.register_blueprint(teams)
    api.register_blueprint(tickets)
    ensure_storage_once(app, app.extensions["ticketflow.assignment"].ensure_storage)
    return app
