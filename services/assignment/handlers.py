"""assignment's commands and event handlers: load, decide with the domain, save with the events it recorded.

Capacity is counted on the agent (`open`, its open tickets). Assigning reserves a slot on the agent
with a version-checked write (so the capacity seen when choosing still holds), then saves the
ticket with its event; a ticket save that loses a race gives the slot back unless the ticket went
to that agent anyway. The worker's reconciliation fixes what a crash between the two writes leaves.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.assignment.domain import (
    Candidate,
    RuleViolation,
    Ticket,
    choose_agent,
    may_manage,
    may_work_on,
    route,
    takes_back,
)
from services.assignment.store import AgentStore, TeamStore, TicketStore
from shared import events, outbox
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Forbidden, Invalid
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes

SERVICE = "assignment"
ATTEMPTS = 20
SYSTEM = "assignment"  # the actor of automatic moves


@dataclass
class Assignment:
    settings: Settings
    agents: AgentStore
    teams: TeamStore
    tickets: TicketStore
    processed: ProcessedEvents
    pending: PendingOutboxes
    flusher: OutboxFlusher

    def ensure_storage(self) -> None:
        self.agents.ensure_indexes()
        self.tickets.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()
        self.teams.seed_general(now())


def bootstrap(settings: Settings) -> Assignment:
    db = database(settings, SERVICE)
    pending = PendingOutboxes(db)
    return Assignment(
        settings,
        AgentStore(db),
        TeamStore(db),
        TicketStore(db),
        ProcessedEvents(db),
        pending,
        OutboxFlusher(settings, SERVICE, pending),
    )


def _back_off(attempt: int) -> None:
    """A short random pause after losing a race, so that competing writers stop colliding in step."""
    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _save(app: Assignment, ticket: Ticket, cid: str | None, insert: bool = False) -> bool:
    """Store the ticket with the events it recorded (insert: False if it exists), then publish them at once."""
    recorded, ticket.recorded = ticket.recorded, []
    staged = outbox.stage(SERVICE, ticket.id, recorded, cid)
    if insert:
        if not app.tickets.insert(ticket, staged):
            return False
    else:
        app.tickets.save(ticket, staged)
    app.flusher.submit(app.tickets.collection, ticket.id, staged, ticket.version)
    return True


# --- agents and teams -----------------------------------------------------------------------------


def create_agent(app: Assignment, data: dict) -> dict:
    app.teams.require(data["teams"], "teams")
    at = now()
    agent = app.agents.insert({**data, "created_at": at, "updated_at": at})
    _drain_teams(app, agent["teams"])
    return app.agents.get(agent["id"])


def update_agent(app: Assignment, agent_id: str, changes: dict) -> dict:
    if "teams" in changes:
        app.teams.require(changes["teams"], "teams")
    for attempt in range(ATTEMPTS):
        agent = app.agents.get(agent_id)
        try:
            updated = app.agents.update(agent, changes, now())
            break
        except Stale:
            _back_off(attempt)
    else:
        raise Conflict("The agent is changing too fast; try again.")
    _drain_teams(app, updated["teams"])  # more capacity, available again, or a new team
    return app.agents.get(agent_id)


def get_agent(app: Assignment, agent_id: str) -> dict:
    return app.agents.get(agent_id)


def list_agents(app: Assignment, team: str | None = None) -> list[dict]:
    return app.agents.all(team)


def create_team(app: Assignment, data: dict) -> dict:
    at = now()
    return app.teams.insert({"topics": [], **data, "created_at": at, "updated_at": at})


def update_team(app: Assignment, team_id: str, changes: dict) -> dict:
    return app.teams.update(team_id, changes, now())


def list_teams(app: Assignment) -> list[dict]:
    return app.teams.all()


# --- the assignment protocol ----------------------------------------------------------------------

Pick = Callable[[Ticket], tuple[dict | None, str, dict | None]]  # -> (agent or None, team, decision)


def _assign(
    app: Assignment,
    ticket_id: str,
    pick: Pick,
    reason: str,
    by: str,
    cid: str | None,
    prepare: Callable[[Ticket], bool] | None = None,
) -> Ticket:
    """Give a ticket to the agent `pick` chooses (None: the team's queue). `prepare` may veto or change it first."""
    for attempt in range(ATTEMPTS):
        ticket = app.tickets.get(ticket_id)
        if prepare is not None and not prepare(ticket):
            return ticket
        agent, team, decision = pick(ticket)
        if _already(ticket, agent, team):
            return ticket  # a repeated request or event, or a queued ticket still waiting
        reserved = False
        if agent is not None and ticket.id not in agent["open"]:
            try:
                app.agents.reserve(agent, ticket.id, now())
                reserved = True
            except Stale:
                _back_off(attempt)
                continue  # the agent changed since it was chosen: choose again
        previous = ticket.agent_id
        ticket.assign(agent, team, reason, by, now(), app.agents.lead_email(team), decision)
        try:
            _save(app, ticket, cid)
        except Stale:
            if reserved and app.tickets.get(ticket_id).agent_id != agent["id"]:
                app.agents.release(agent["id"], ticket_id)
            _back_off(attempt)
            continue
        if previous and previous != ticket.agent_id:
            app.agents.release(previous, ticket_id)
        return ticket
    raise Conflict("The ticket is changing too fast; try again.")


def _already(ticket: Ticket, agent: dict | None, team: str) -> bool:
    if ticket.team != team or not ticket.is_open or not ticket.history:
        return False
    if agent is None:
        return ticket.agent_id is None
    return ticket.agent_id == agent["id"] and ticket.id in agent["open"]


def _auto(app: Assignment, team: str | None = None) -> Pick:
    """Pick by the rule: the least loaded available agent of the team under capacity."""

    def pick(ticket: Ticket):
        target = team or ticket.team
        agents = app.agents.all(target)
        decision = choose_agent(target, [_candidate(a) for a in agents])
        return next((a for a in agents if a["id"] == decision.agent_id), None), target, decision.record()

    return pick


def _given(app: Assignment, agent_id: str) -> Pick:
    """A chosen agent (claim, manual reassignment), in the ticket's team."""

    def pick(ticket: Ticket):
        return app.agents.get(agent_id), ticket.team, None

    return pick


def _candidate(agent: dict) -> Candidate:
    return Candidate(
        agent["id"],
        tuple(agent["teams"]),
        agent["capacity"],
        agent["open_tickets"],
        agent["available"],
        agent.get("last_assigned_at"),
    )


def _drain_teams(app: Assignment, teams: list[str]) -> None:
    for team in teams:
        drain(app, team)


def drain(app: Assignment, team: str, cid: str | None = None) -> int:
    """Assign the team's waiting tickets while someone is free: emergency first, oldest first within a priority."""
    assigned = 0
    for ticket_id in app.tickets.waiting(team):

        def still_waiting(ticket: Ticket) -> bool:
            return ticket.agent_id is None and ticket.is_open and ticket.team == team

        ticket = _assign(app, ticket_id, _auto(app, team), "auto", SYSTEM, cid, prepare=still_waiting)
        if ticket.agent_id is None:
            break  # nobody free: the rest waits too
        assigned += 1
    return assigned


# --- the agents' commands -------------------------------------------------------------------------


def _actor(app: Assignment, principal: Principal) -> dict | None:
    """The agent record behind an agent token (None for admins without one); 403 for an unknown agent."""
    if principal.agent_id is None:
        return None
    agent = app.agents.find(principal.agent_id)
    if agent is None and principal.role == "agent":
        raise Forbidden(f"No agent {principal.agent_id} is registered.")
    return agent


def _require(allowed: bool, detail: str) -> None:
    if not allowed:
        raise Forbidden(detail)


def _change(app: Assignment, ticket_id: str, change: Callable[[Ticket], object], cid: str | None):
    """Load, check and change, save with events; on a concurrent save read again and retry."""
    for attempt in range(ATTEMPTS):
        ticket = app.tickets.get(ticket_id)
        try:
            result = change(ticket)
        except RuleViolation as exc:
            raise Conflict(str(exc)) from None
        if result is False and not ticket.recorded:
            return ticket, result
        try:
            _save(app, ticket, cid)
        except Stale:
            _back_off(attempt)
            continue
        return ticket, result
    raise Conflict("The ticket is changing too fast; try again.")


def get_ticket(app: Assignment, ticket_id: str, principal: Principal) -> Ticket:
    ticket, agent = app.tickets.get(ticket_id), _actor(app, principal)
    _require(
        principal.role == "admin"
        or (agent is not None and (ticket.agent_id == agent["id"] or ticket.team in agent["teams"])),
        "Agents see the tickets of their teams and those assigned to them.",
    )
    return ticket


def queue(app: Assignment, filters: dict, limit: int, cursor: str | None, principal: Principal):
    """Open tickets; an agent sees its teams' tickets and its own, as on GET /tickets/{id}."""
    agent = _actor(app, principal)
    if principal.role == "agent":
        _require(filters.get("team") in (None, *agent["teams"]), "Agents read the queues of their own teams.")
        filters = {**filters, "$or": [{"team": {"$in": agent["teams"]}}, {"agent_id": agent["id"]}]}
    return app.tickets.page(filters, limit, cursor)


def claim(app: Assignment, ticket_id: str, principal: Principal, cid: str | None) -> Ticket:
    agent = _actor(app, principal)
    _require(agent is not None, "Only an agent can claim a ticket.")

    def claimable(ticket: Ticket) -> bool:
        _require(  # rights first: an agent of another team learns nothing about the ticket
            ticket.team in agent["teams"] or ticket.agent_id == agent["id"],
            f"The ticket is in team {ticket.team}, not one of yours.",
        )
        if not ticket.is_open:
            raise Conflict(f"The ticket is {ticket.status}.")
        if ticket.agent_id not in (None, agent["id"]):
            raise Conflict(f"Agent {ticket.agent_id} has this ticket.")
        return True

    return _assign(app, ticket_id, _given(app, agent["id"]), "claim", agent["id"], cid, prepare=claimable)


def assign(
    app: Assignment, ticket_id: str, agent_id: str | None, team: str | None, principal: Principal, cid: str | None
) -> Ticket:
    actor = _actor(app, principal)
    ticket = app.tickets.get(ticket_id)
    _require(may_manage(principal.role, actor, ticket), "Only admins and the team's leads assign its tickets.")
    if not ticket.is_open:
        raise Conflict(f"The ticket is {ticket.status}.")
    if team is not None:
        app.teams.require([team], "team")
        return _assign(app, ticket_id, _auto(app, team), "transfer", principal.actor, cid)
    target = app.agents.find(agent_id)
    if target is None:
        raise Invalid("Unknown agent.", {"agent_id": [f"No agent {agent_id}."]})
    if ticket.team not in target["teams"]:
        raise Invalid(
            "The agent is not in the ticket's team.",
            {"agent_id": [f"{agent_id} is not in team {ticket.team}; transfer the ticket first."]},
        )
    return _assign(app, ticket_id, _given(app, agent_id), "manual", principal.actor, cid)


def reply(
    app: Assignment, ticket_id: str, body: str, status: str | None, principal: Principal, cid: str | None
) -> dict:
    actor, reply_id = _actor(app, principal), uuid.uuid4().hex

    def write(ticket: Ticket):
        _require(may_work_on(principal.role, actor, ticket), "Agents reply on their own tickets and their teams'.")
        author_id = actor["id"] if actor else principal.actor
        name = actor["name"] if actor else principal.sub
        at = now()
        first = ticket.reply(reply_id, author_id, name, body, status, at)
        return {"id": reply_id, "body": body, "by": author_id, "at": at, "first_response": first}

    return _change(app, ticket_id, write, cid)[1]


def add_note(app: Assignment, ticket_id: str, body: str, principal: Principal) -> dict:
    actor, note_id = _actor(app, principal), uuid.uuid4().hex

    def write(ticket: Ticket):
        _require(may_work_on(principal.role, actor, ticket), "Agents note on their own tickets and their teams'.")
        return ticket.add_note(note_id, body, actor["id"] if actor else principal.actor, now())

    return _change(app, ticket_id, write, None)[1]


def change_status(app: Assignment, ticket_id: str, status: str, principal: Principal, cid: str | None) -> Ticket:
    actor = _actor(app, principal)

    def write(ticket: Ticket):
        _require(may_work_on(principal.role, actor, ticket), "Agents change their own tickets and their teams'.")
        ticket.set_status(status, principal.actor, now())

    return _change(app, ticket_id, write, cid)[0]


def change_priority(app: Assignment, ticket_id: str, priority: str, principal: Principal, cid: str | None) -> Ticket:
    actor = _actor(app, principal)

    def write(ticket: Ticket):
        _require(may_manage(principal.role, actor, ticket), "Only admins and the team's leads change priority.")
        ticket.set_priority(priority, principal.actor, now())

    return _change(app, ticket_id, write, cid)[0]


def resolve(app: Assignment, ticket_id: str, resolution: str, principal: Principal, cid: str | None) -> Ticket:
    actor = _actor(app, principal)

    def write(ticket: Ticket):
        _require(
            principal.role == "admin" or (actor is not None and ticket.agent_id == actor["id"]),
            "Only the assigned agent or an admin resolves a ticket.",
        )
        ticket.resolve(resolution, principal.actor, now())

    ticket, _ = _change(app, ticket_id, write, cid)
    _free(app, ticket, cid)
    return ticket


def _free(app: Assignment, ticket: Ticket, cid: str | None) -> None:
    """The ticket no longer counts for its agent: give the slot to whoever waits in the agent's teams."""
    if ticket.agent_id:
        app.agents.release(ticket.agent_id, ticket.id)
        agent = app.agents.find(ticket.agent_id)
        for team in agent["teams"] if agent else [ticket.team]:
            drain(app, team, cid)


# --- other services' events -----------------------------------------------------------------------


def on_created(app: Assignment, envelope: dict) -> None:
    data, at, cid = events.load_data(envelope), events.parse_time(envelope["occurred_at"]), envelope["correlation_id"]
    team = route(data["topic"], app.teams.all())
    ticket = Ticket(
        id=envelope["ticket_id"],
        number=data["number"],
        subject=data["subject"],
        topic=data["topic"],
        priority=data["priority"],
        team=team,
        created_at=at,
        waiting_since=at,
    )
    _save(app, ticket, cid, insert=True)  # a redelivery finds it stored: the assignment below is idempotent
    _assign(
        app,
        ticket.id,
        _auto(app),
        "auto",
        SYSTEM,
        cid,
        prepare=lambda t: t.is_open and t.agent_id is None and not t.history,
    )


def on_reopened(app: Assignment, envelope: dict) -> None:
    """Back to the previous agent if available and under capacity; else the team's rule, else its queue."""
    at, cid = events.parse_time(envelope["occurred_at"]), envelope["correlation_id"]
    _change(app, envelope["ticket_id"], lambda t: t.reopen(at), cid)

    def previous_or_team(ticket: Ticket):
        previous = app.agents.find(ticket.agent_id)
        candidate = _candidate(previous) if previous else None
        if takes_back(candidate, ticket.team, bool(previous) and ticket.id in previous["open"]):
            return previous, ticket.team, None
        return _auto(app)(ticket)

    _assign(app, envelope["ticket_id"], previous_or_team, "reopen", SYSTEM, cid, prepare=lambda t: t.is_open)


def on_closed(app: Assignment, envelope: dict) -> None:
    at, by = events.parse_time(envelope["occurred_at"]), events.load_data(envelope)["by"]
    ticket, _ = _change(app, envelope["ticket_id"], lambda t: t.close(by, at), envelope["correlation_id"])
    _free(app, ticket, envelope["correlation_id"])  # also on a redelivery: the slot may not be free yet


def on_message_added(app: Assignment, envelope: dict) -> None:
    at = events.parse_time(envelope["occurred_at"])
    _change(app, envelope["ticket_id"], lambda t: t.requester_wrote(at) or False, envelope["correlation_id"])


def on_sla(kind: str) -> Callable[[Assignment, dict], None]:
    def handle(app: Assignment, envelope: dict) -> None:
        data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
        _change(app, envelope["ticket_id"], lambda t: t.sla_alert(kind, data, at) or False, None)

    return handle


EVENT_HANDLERS = {
    "ticket.created": on_created,
    "ticket.reopened": on_reopened,
    "ticket.closed": on_closed,
    "ticket.message_added": on_message_added,
    "sla.warning": on_sla("warning"),
    "sla.breached": on_sla("breached"),
}


def handlers(app: Assignment) -> dict:
    return {kind: (lambda envelope, handle=handle: handle(app, envelope)) for kind, handle in EVENT_HANDLERS.items()}


# --- keeping the counts exact ---------------------------------------------------------------------


class Reconciler:
    """Compares each agent's open tickets with the tickets; fixes a difference seen twice in a row.

    A difference seen once may be an assignment in flight (the slot is reserved before the ticket
    is saved); one that lasts across two runs is what a process that died in between left.
    """

    def __init__(self, app: Assignment) -> None:
        self.app, self.suspects = app, {}

    def run(self) -> int:
        fixed, seen = 0, {}
        owned = self.app.tickets.open_by_agent()
        for agent in self.app.agents.all():
            truth = owned.get(agent["id"], [])
            if sorted(agent["open"]) == truth:
                continue
            key = (tuple(sorted(agent["open"])), tuple(truth))
            if self.suspects.get(agent["id"]) == key and self.app.agents.set_open(agent, truth):
                fixed += 1
            else:
                seen[agent["id"]] = key
        self.suspects = seen
        return fixed
