"""assignment's commands and event handlers: load, decide with the domain, save with the events it recorded.

Capacity is counted on the agent (its open count, and which tickets it counts: AgentStore). Assigning
reserves a slot on the agent with a version-checked write (so the capacity seen when choosing still
holds), then saves the ticket with its event; a ticket save that loses a race gives the slot back
unless the ticket went to that agent anyway. The worker's reconciliation fixes what a crash between
the writes leaves.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from services.assignment.domain import (
    GENERAL,
    Candidate,
    RuleViolation,
    Ticket,
    choose_agent,
    first_lead,
    holder_of_email,
    lead_of,
    may_change_agent,
    may_manage,
    may_note,
    may_read,
    may_resolve,
    may_work_on,
    route,
    takes_back,
    why_team_stays,
)
from services.assignment.store import AgentStore, TeamStore, TicketStore
from shared import events, outbox
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes, outbox_for
from shared.saving import NO_CHANGE, update

SERVICE = "assignment"
SYSTEM = "assignment"  # the actor of automatic moves

log = logging.getLogger(__name__)


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
    pending, flusher = outbox_for(settings, SERVICE, db)
    return Assignment(
        settings,
        AgentStore(db, flusher),
        TeamStore(db),
        TicketStore(db, flusher),
        ProcessedEvents(db),
        pending,
        flusher,
    )


def _save(svc: Assignment, ticket: Ticket, correlation_id: str | None, insert: bool = False) -> bool:
    """Store the ticket with the events it recorded (insert: False if it exists); the store publishes them."""
    recorded, ticket.recorded = ticket.recorded, []
    staged = outbox.stage(SERVICE, ticket.id, recorded, correlation_id)
    if insert:
        return svc.tickets.insert(ticket, staged)
    svc.tickets.save(ticket, staged)
    return True


# --- agents and teams -----------------------------------------------------------------------------


def _lead_of(teams: list[str], given: dict, current: list[str] | tuple[str, ...] = ()) -> list[str]:
    try:
        return lead_of(teams, given, current)
    except ValueError as exc:
        raise Invalid("The teams the agent leads do not fit.", {"lead_of": [str(exc)]}) from None


def _agent_updated(agent: dict, correlation_id: str | None = None) -> dict:
    """The agent's `agent.updated` event, as outbox entries (the other services learn its teams from it)."""
    data = {
        "agent_id": agent["id"],
        "name": agent["name"],
        "email": agent["email"],
        "teams": list(agent["teams"]),
        "lead_of": list(agent["lead_of"]),
        "available": agent["available"],
    }
    return outbox.stage(SERVICE, agent["id"], [("agent.updated", data)], correlation_id)


def _email_of_nobody_else(svc: Assignment, agent_id: str, email: str) -> None:
    """409 when another agent has the address (domain.holder_of_email). Agents that share one from before may
    still change the rest."""
    if (taken := holder_of_email(svc.agents.all(), agent_id, email)) is not None:
        said = f"{taken['name']} ({taken['id']}) has this email address: each agent needs its own."
        raise Conflict(f"Another agent has the email address {email}.", errors={"email": [said]})


def create_agent(svc: Assignment, data: dict, correlation_id: str | None = None) -> dict:
    """A new agent; the tickets waiting in its teams' queues that it can take are assigned to it (the request's
    `correlation_id` on its `agent.updated` and on those `ticket.assigned`)."""
    teams = svc.teams.require(data["teams"], "teams")
    _email_of_nobody_else(svc, data["id"], data["email"])
    at = now()
    fields = {key: value for key, value in data.items() if key != "lead"}
    fields["lead_of"] = _lead_of(data["teams"], data)
    agent = svc.agents.insert({**fields, "created_at": at, "updated_at": at}, _agent_updated(fields, correlation_id))
    _teams_kept_for(svc, teams)
    _drain_teams(svc, agent["teams"], correlation_id)
    return svc.agents.get(agent["id"])


def update_agent(
    svc: Assignment,
    agent_id: str,
    changes: dict,
    principal: Principal | None = None,
    correlation_id: str | None = None,
) -> dict:
    if principal is not None:
        allowed = may_change_agent(principal.role, principal.agent_id, agent_id, changes)
        _require(allowed, "An agent may change only its own availability (available); admins change the rest.")
    teams = svc.teams.require(changes["teams"], "teams") if "teams" in changes else []
    if "email" in changes and changes["email"].strip().lower() != svc.agents.get(agent_id)["email"].strip().lower():
        _email_of_nobody_else(svc, agent_id, changes["email"])

    def change(agent: dict) -> dict:
        teams = changes.get("teams", agent["teams"])
        fields = {key: value for key, value in changes.items() if key != "lead"}
        fields["lead_of"] = _lead_of(teams, changes, agent["lead_of"])
        return fields

    load = lambda: svc.agents.get(agent_id)  # noqa: E731
    event = lambda agent, fields: _agent_updated({**agent, **fields}, correlation_id)  # noqa: E731
    save = lambda agent, fields: svc.agents.update(agent, fields, now(), event(agent, fields))  # noqa: E731
    before, fields = update(load, change, save, "The agent is changing too fast; try again.")
    _teams_kept_for(svc, teams)
    if set(before["teams"]) - set(fields.get("teams", before["teams"])):
        hand_back(svc, agent_id, HAND_BACK_PER_REQUEST, correlation_id)  # the rest: the reconciler's next run
    _drain_teams(svc, svc.agents.get(agent_id)["teams"], correlation_id)  # more capacity, available again, a new team
    return svc.agents.get(agent_id)


HAND_BACK_PER_REQUEST = 100  # tickets an agent's change hands back itself (about a second); the reconciler the rest


def hand_back(svc: Assignment, agent_id: str, limit: int, correlation_id: str | None = None) -> int:
    """The open tickets an agent holds in teams it is not in (it left them): each to another agent of its team by
    the rule, or to the team's queue when nobody is free; at most `limit` tried, the most urgent first. They stay
    their teams'; the agent no longer works for those (it would keep reading them, as its own, and no one of the
    team would see them as anybody's to take). Read from what is stored, not from a change: what a change left (a
    ticket changing too fast, the database failing on one, a process that died, more than the bound) is found
    again by the next call. The places freed go to the queues of the agent's teams once, at the end. How many
    left the agent."""
    agent = svc.agents.find(agent_id)
    if agent is None:
        return 0
    outside = [(ticket_id, team) for ticket_id, team in svc.tickets.held_by(agent_id) if team not in agent["teams"]]
    moved = 0
    for ticket_id, team in outside[:limit]:

        def still_held(ticket: Ticket, team: str = team) -> bool:  # asked on each state the retries read
            now_in = (svc.agents.find(agent_id) or {"teams": [team]})["teams"]
            return ticket.agent_id == agent_id and ticket.team == team and ticket.is_open and team not in now_in

        try:
            ticket = _assign(
                svc, ticket_id, _auto(svc, team), "auto", SYSTEM, correlation_id, prepare=still_held, drain=False
            )
        except (Conflict, PyMongoError) as exc:  # it stays for now: the next call tries it again; the others go on
            log.warning("ticket %s stayed with agent %s, who left team %s: %s", ticket_id, agent_id, team, exc)
            continue
        moved += ticket.agent_id != agent_id
    if moved:
        _drain_teams(svc, _teams_of(svc, agent_id), correlation_id)
    return moved


def announce_agents(svc: Assignment) -> int:
    """Publish every agent's `agent.updated` as it is now (at the worker's start): the other services' agents
    projections catch up with agents created before the event existed, or whose event they lost."""
    announced = 0
    for agent in svc.agents.all():
        try:
            svc.agents.announce(agent, _agent_updated(agent))
            announced += 1
        except Stale:
            pass  # changed meanwhile: that change published its own agent.updated
    return announced


def get_agent(svc: Assignment, agent_id: str) -> dict:
    return svc.agents.get(agent_id)


def list_agents(svc: Assignment, team: str | None = None) -> list[dict]:
    return svc.agents.all(team)


def create_team(svc: Assignment, data: dict) -> dict:
    at = now()
    return svc.teams.insert({"topics": [], **data, "created_at": at, "updated_at": at})


def update_team(svc: Assignment, team_id: str, changes: dict) -> dict:
    return svc.teams.update(team_id, changes, now())


def delete_team(svc: Assignment, team_id: str) -> None:
    """Remove a team added by mistake (domain.why_team_stays); its topics go back to general. 409 otherwise.

    Checked again once it is gone: an agent given the team, or a ticket routed or moved there, in the meantime (each
    read the team before it went) puts it back, refused as if it had come first. A ticket stored after that check
    puts it back itself (_team_kept)."""
    if reason := why_team_stays(team_id, team_id, ()):  # general: no read
        raise Conflict(reason)
    document = svc.teams.document(team_id)
    _deletable(svc, team_id, document["name"])
    svc.teams.delete(team_id)
    try:
        _deletable(svc, team_id, document["name"])
    except Conflict:
        svc.teams.restore(document)
        raise


def _deletable(svc: Assignment, team_id: str, name: str) -> None:
    """Conflict when the team stays: its agents and leads first, then (a scan, only then) a ticket it ever had."""
    reason = why_team_stays(team_id, name, svc.agents.all())
    if reason is None:
        reason = why_team_stays(team_id, name, (), svc.tickets.one_of_team(team_id))
    if reason is not None:
        raise Conflict(reason)


def list_teams(svc: Assignment) -> list[dict]:
    return svc.teams.all()


# --- the assignment protocol ----------------------------------------------------------------------

# -> (agent or None, team, decision, the team's agents when the pick read them all: its lead is among them)
Pick = Callable[[Ticket], tuple[dict | None, str, dict | None, list[dict] | None]]


@dataclass
class _Move:
    """An assignment decided on a loaded ticket: the agent (None: the queue) and the agent it leaves."""

    agent: dict | None
    previous: str | None
    reserve: bool  # the agent's slot is taken before the ticket is saved


def _assign(
    svc: Assignment,
    ticket_id: str,
    pick: Pick,
    reason: str,
    by: str,
    correlation_id: str | None,
    prepare: Callable[[Ticket], bool] | None = None,
    stored: Ticket | None = None,
    teams: list[dict] | None = None,
    by_name: str | None = None,
    drain: bool = True,
    look_again: bool = True,
) -> Ticket:
    """Give a ticket to the agent `pick` chooses (None: the team's queue). `prepare` may veto or change it first.
    `drain`: the place it frees goes to the previous agent's teams' queues now (False: the caller drains them).
    `look_again`: a ticket put in a queue has the queue looked at once more (the draining itself does not).

    `stored`: the ticket as this handler has just stored it, so the first attempt reads nothing (a save that
    finds it changed since reads it again, as always). `teams`: every team, when the handler has read them
    (the event names the ticket's team from them instead of reading it).
    """

    def load() -> Ticket:
        nonlocal stored
        ticket, stored = stored or svc.tickets.get(ticket_id), None
        return ticket

    def decide(ticket: Ticket):
        if prepare is not None and not prepare(ticket):
            return NO_CHANGE
        agent, team, decision, team_agents = pick(ticket)
        counted = agent is not None and ticket.agent_id == agent["id"] and svc.agents.counts(agent["id"], ticket.id)
        if _already(ticket, agent, team, counted):
            return NO_CHANGE  # a repeated request or event, or a queued ticket still waiting
        if agent is not None and team not in agent["teams"]:  # as read now (a claim's or an assign's agent, read
            raise Conflict(f"{agent['id']} is not in team {team} now.")  # before, left the team since)
        move = _Move(agent, ticket.agent_id, agent is not None and not counted)
        lead, team_name = _lead(svc, team, team_agents) or {}, _team_name(svc, team, teams)
        ticket.assign(agent, team, reason, by, now(), lead.get("email"), decision, team_name, by_name, lead.get("name"))
        return move

    def save(ticket: Ticket, move: _Move) -> None:
        if move.reserve:  # Stale: the agent changed since it was chosen, so choose again
            svc.agents.reserve(move.agent, ticket.id, now())
        try:
            _save(svc, ticket, correlation_id)
        except Stale:
            if move.reserve and svc.tickets.get(ticket_id).agent_id != move.agent["id"]:
                svc.agents.release(move.agent["id"], ticket_id)
            raise

    busy = "The ticket is changing too fast; try again."
    ticket, move = update(load, decide, save, busy)
    if move is not NO_CHANGE and move.previous and move.previous != ticket.agent_id:
        if svc.agents.release(move.previous, ticket_id) and drain:  # a slot is free: who waits in its teams gets it
            _drain_teams(svc, _teams_of(svc, move.previous), correlation_id)
    if move is not NO_CHANGE and move.agent is None and ticket.is_open and look_again:
        # queued on the agents as read before it was saved: a slot freed meanwhile in the team (a resolve, whose
        # drain read the queue before this ticket was in it) would leave it waiting with an agent free (a race
        # hunter's find); one more look, after the save, sees either the slot or nobody free
        _drain_teams(svc, [ticket.team], correlation_id)
    chosen = move is not NO_CHANGE and move.agent is not None and reason in ("claim", "manual")
    if chosen and _left_meanwhile(svc, move.agent["id"], ticket.team):
        # the agent left the team between its read and the ticket's save, and the change's hand-back read the
        # agent's tickets before this one was saved (a race hunter's find): handed back now, as the change would,
        # and the claim or assign refused. The rule's own picks (a new ticket's, a drain's) are not read again: a
        # store call each, for a window of milliseconds that the reconciler's next run closes (hand_back)
        hand_back(svc, move.agent["id"], HAND_BACK_PER_REQUEST, correlation_id)
        raise Conflict(f"{move.agent['id']} left team {ticket.team} meanwhile: the ticket went back to the team.")
    return ticket


def _left_meanwhile(svc: Assignment, agent_id: str, team: str) -> bool:
    """Whether the agent a ticket of `team` was just saved with is out of that team now (read after the save: a
    change of its teams either came before, and is seen here, or comes after, and its hand-back sees the ticket)."""
    agent = svc.agents.find(agent_id)
    return agent is not None and team not in agent["teams"]


def _already(ticket: Ticket, agent: dict | None, team: str, counted: bool) -> bool:
    """`counted`: the ticket is counted in the agent's load (it names the agent, which holds it)."""
    if ticket.team != team or not ticket.is_open or not ticket.history:
        return False
    if agent is None:
        return ticket.agent_id is None
    return counted


def _lead(svc: Assignment, team: str, team_agents: list[dict] | None) -> dict | None:
    """The team's lead (domain.first_lead), its name and email, from the team's agents when a pick read them all."""
    if team_agents is None:
        return svc.agents.lead(team)
    return first_lead([agent for agent in team_agents if team in agent["lead_of"]])  # sorted by id


def _team_name(svc: Assignment, team: str, teams: list[dict] | None) -> str | None:
    """The team's name, from the teams the handler has read when they hold it."""
    known = next((each["name"] for each in teams or () if each["id"] == team), None)
    return known or svc.teams.name(team)


def _auto(svc: Assignment, team: str | None = None) -> Pick:
    """Pick by the rule: the least loaded available agent of the team under capacity."""

    def pick(ticket: Ticket):
        target = team or ticket.team
        agents = svc.agents.all(target)
        decision = choose_agent(target, [_candidate(a) for a in agents])
        chosen = next((a for a in agents if a["id"] == decision.agent_id), None)
        return chosen, target, decision.record(), agents

    return pick


def _given(svc: Assignment, agent_id: str) -> Pick:
    """A chosen agent (claim, manual reassignment), in the ticket's team."""

    def pick(ticket: Ticket):
        return svc.agents.get(agent_id), ticket.team, None, None

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


def _drain_teams(svc: Assignment, teams: list[str], correlation_id: str | None) -> None:
    for team in teams:
        drain(svc, team, correlation_id)


def _teams_of(svc: Assignment, agent_id: str, fallback: str | None = None) -> list[str]:
    agent = svc.agents.find(agent_id)
    return agent["teams"] if agent else [fallback] if fallback else []


def drain(svc: Assignment, team: str, correlation_id: str | None = None) -> int:
    """Assign the team's waiting tickets while someone is free: emergency first, oldest first within a priority.

    The queue is read a page at a time, as often as needed: a capacity raised by fifty empties fifty places.
    A ticket that stopped waiting meanwhile (closed, moved, taken) is passed over; one still waiting that
    nobody took means nobody is free, and the rest waits too.
    """
    assigned, tried = 0, set()

    def still_waiting(ticket: Ticket) -> bool:
        return ticket.agent_id is None and ticket.is_open and ticket.team == team

    while page := [ticket_id for ticket_id in svc.tickets.waiting(team) if ticket_id not in tried]:
        for ticket_id in page:
            tried.add(ticket_id)
            ticket = _assign(
                svc,
                ticket_id,
                _auto(svc, team),
                "auto",
                SYSTEM,
                correlation_id,
                prepare=still_waiting,
                look_again=False,
            )
            if still_waiting(ticket):
                return assigned  # nobody free
            assigned += ticket.agent_id is not None
    return assigned


# --- the agents' commands -------------------------------------------------------------------------


def _actor(svc: Assignment, principal: Principal) -> dict | None:
    """The agent record behind an agent token (None for admins without one); 403 for an unknown agent."""
    if principal.agent_id is None:
        return None
    agent = svc.agents.find(principal.agent_id)
    if agent is None and principal.role == "agent":
        raise Forbidden(f"No agent {principal.agent_id} is registered.")
    return agent


def _require(allowed: bool, detail: str) -> None:
    if not allowed:
        raise Forbidden(detail)


def _change(svc: Assignment, ticket_id: str, change: Callable[[Ticket], object], correlation_id: str | None):
    """(ticket, what `change` returned): load, check and change, save with events; NO_CHANGE saves nothing."""

    def checked(ticket: Ticket):
        try:
            return change(ticket)
        except RuleViolation as exc:
            raise Conflict(str(exc)) from None

    save = lambda ticket, _: _save(svc, ticket, correlation_id)  # noqa: E731
    return update(lambda: svc.tickets.get(ticket_id), checked, save, "The ticket is changing too fast; try again.")


def get_ticket(svc: Assignment, ticket_id: str, principal: Principal) -> Ticket:
    ticket = svc.tickets.get(ticket_id)
    _readable(ticket, principal.role, _actor(svc, principal))
    return ticket


def _readable(ticket: Ticket, role: str, agent: dict | None) -> None:
    """404, as for a ticket that does not exist, when the agent may not read it (domain.may_read): an agent of
    another team learns nothing of it, not even that it exists. Checked before what the agent may do (403)."""
    if not may_read(role, agent, ticket):
        raise NotFound(f"No ticket {ticket.id}.")


def queue(svc: Assignment, filters: dict, limit: int, cursor: str | None, principal: Principal, unread: list[str] = ()):
    """Open tickets; an agent sees its teams' tickets and its own, as on GET /tickets/{id}. `unread`: fields
    left unread (their defaults: nothing)."""
    agent = _actor(svc, principal)
    if principal.role == "agent":
        _require(filters.get("team") in (None, *agent["teams"]), "Agents read the queues of their own teams.")
        return svc.tickets.page(filters, limit, cursor, visible_to=agent, unread=unread)
    return svc.tickets.page(filters, limit, cursor, unread=unread)


def claim(svc: Assignment, ticket_id: str, principal: Principal, correlation_id: str | None) -> Ticket:
    agent = _actor(svc, principal)
    if agent is None and principal.agent_id is None:  # an admin's token that names no agent (a contract prober's)
        raise Forbidden("This token names no agent to take the ticket: an admin gives it to one with assign.")
    _require(agent is not None, f"No agent {principal.agent_id} is registered.")

    def claimable(ticket: Ticket) -> bool:
        _readable(ticket, "agent", agent)  # rights first (and all of them: an agent claims what it may read)
        if not ticket.is_open:
            raise Conflict(f"The ticket is {ticket.status}.")
        if ticket.agent_id not in (None, agent["id"]):
            raise Conflict(f"Agent {ticket.agent_id} has this ticket.")
        return True

    return _assign(svc, ticket_id, _given(svc, agent["id"]), "claim", agent["id"], correlation_id, prepare=claimable)


def assign(
    svc: Assignment,
    ticket_id: str,
    agent_id: str | None,
    team: str | None,
    principal: Principal,
    correlation_id: str | None,
) -> Ticket:
    actor = _actor(svc, principal)

    def may_assign(ticket: Ticket) -> None:
        _readable(ticket, principal.role, actor)
        _require(may_manage(principal.role, actor, ticket), "Only admins and the team's leads assign its tickets.")
        if not ticket.is_open:
            raise Conflict(f"The ticket is {ticket.status}.")

    def allowed(ticket: Ticket) -> bool:
        """Checked on each state the retry loop reads, so the one saved is the one checked (a transfer
        in between leaves the old team's lead without rights)."""
        may_assign(ticket)
        if team is None and ticket.team not in target["teams"]:
            raise Invalid(
                "The agent is not in the ticket's team.",
                {"agent_id": [f"{agent_id} is not in team {ticket.team}; transfer the ticket first."]},
            )
        return True

    if team is not None:
        read = svc.teams.find(team)  # as it is now: put back if deleted before the ticket is stored (_team_kept)
        if read is None:
            raise Invalid("Unknown team.", {"team": [f"Unknown team {team!r}."]})
        transfer = _auto(svc, team)
        moved = _assign(
            svc, ticket_id, transfer, "transfer", principal.actor, correlation_id, prepare=allowed, by_name=_name(actor)
        )
        _team_kept(svc, read, moved)
        return moved
    target = svc.agents.find(agent_id)
    if target is None:
        may_assign(svc.tickets.get(ticket_id))  # 404, 403 and 409 come before an unknown agent's 422
        raise Invalid("Unknown agent.", {"agent_id": [f"No agent {agent_id}."]})
    pick = _given(svc, agent_id)
    return _assign(
        svc, ticket_id, pick, "manual", principal.actor, correlation_id, prepare=allowed, by_name=_name(actor)
    )


def _work(
    svc: Assignment,
    ticket_id: str,
    principal: Principal,
    correlation_id: str | None,
    allowed: Callable[[dict | None, Ticket], bool],
    refusal: str,
    act: Callable[[Ticket, dict | None], object],
):
    """(ticket, what `act` returned): an agent's or admin's command, once `allowed` for the acting agent."""
    actor = _actor(svc, principal)

    def write(ticket: Ticket):
        _readable(ticket, principal.role, actor)
        _require(allowed(actor, ticket), refusal)
        return act(ticket, actor)

    return _change(svc, ticket_id, write, correlation_id)


DESK_NAME = events.DESK_NAME  # who a reply is from when no agent wrote it (an admin's, a script's)


def _name(actor: dict | None) -> str:
    """Who acted, as events name them: the agent, or the help desk for an admin who is no agent (never an
    address: requesters read the timeline too)."""
    return actor["name"] if actor else DESK_NAME


def reply(
    svc: Assignment,
    ticket_id: str,
    body: str,
    status: str | None,
    principal: Principal,
    correlation_id: str | None,
    files: list[str] | None = None,
) -> dict:
    """A public reply; `files`: the names of the files the client attaches to it next (its event names them)."""
    reply_id = uuid.uuid4().hex

    def write(ticket: Ticket, actor: dict | None) -> dict:
        author_id = actor["id"] if actor else principal.actor
        name = _name(actor)  # an admin who is no agent: never their address (section 3)
        at = now()
        first = ticket.reply(reply_id, author_id, name, body, status, at, files)
        return {"id": reply_id, "body": body, "by": author_id, "at": at, "first_response": first}

    refusal = "Agents reply on the tickets assigned to them and on their teams' unassigned ones."
    return _work(svc, ticket_id, principal, correlation_id, _may_work_on(principal), refusal, write)[1]


def add_note(svc: Assignment, ticket_id: str, body: str, principal: Principal) -> dict:
    note_id = uuid.uuid4().hex

    def write(ticket: Ticket, actor: dict | None) -> dict:
        by, name = (actor["id"], actor.get("name")) if actor else (principal.actor, None)
        return ticket.add_note(note_id, body, by, now(), by_name=name)

    refusal = "Agents note on their own tickets and on their teams' tickets."
    allowed = lambda actor, t: may_note(principal.role, actor, t)  # noqa: E731
    return _work(svc, ticket_id, principal, None, allowed, refusal, write)[1]


def change_status(
    svc: Assignment, ticket_id: str, status: str, principal: Principal, correlation_id: str | None
) -> Ticket:
    write = lambda t, actor: t.set_status(status, principal.actor, now(), by_name=_name(actor))  # noqa: E731
    refusal = "Agents change the status of their own tickets and of their teams' unassigned ones."
    return _work(svc, ticket_id, principal, correlation_id, _may_work_on(principal), refusal, write)[0]


def change_priority(
    svc: Assignment, ticket_id: str, priority: str, principal: Principal, correlation_id: str | None
) -> Ticket:
    write = lambda t, actor: t.set_priority(priority, principal.actor, now(), by_name=_name(actor))  # noqa: E731
    allowed = lambda actor, t: may_manage(principal.role, actor, t)  # noqa: E731
    refusal = "Only admins and the team's leads change priority."
    return _work(svc, ticket_id, principal, correlation_id, allowed, refusal, write)[0]


def resolve(
    svc: Assignment,
    ticket_id: str,
    resolution: str,
    principal: Principal,
    correlation_id: str | None,
    merged_into: int | None = None,
) -> Ticket:
    write = lambda t, actor: t.resolve(resolution, principal.actor, now(), _name(actor), merged_into)  # noqa: E731
    allowed = lambda actor, t: may_resolve(principal.role, actor, t)  # noqa: E731
    refusal = "Only the assigned agent or an admin resolves a ticket."
    ticket, _ = _work(svc, ticket_id, principal, correlation_id, allowed, refusal, write)
    _free(svc, ticket, correlation_id)
    return ticket


def _may_work_on(principal: Principal) -> Callable[[dict | None, Ticket], bool]:
    return lambda actor, ticket: may_work_on(principal.role, actor, ticket)


def _free(svc: Assignment, ticket: Ticket, correlation_id: str | None) -> None:
    """The ticket no longer counts for its agent: give the slot to whoever waits in the agent's teams."""
    if ticket.agent_id:
        svc.agents.release(ticket.agent_id, ticket.id)
        _drain_teams(svc, _teams_of(svc, ticket.agent_id, ticket.team), correlation_id)


# --- other services' events -----------------------------------------------------------------------


def on_created(svc: Assignment, envelope: dict) -> None:
    data, at, correlation_id = (
        events.load_data(envelope),
        events.parse_time(envelope["occurred_at"]),
        envelope["correlation_id"],
    )
    teams = svc.teams.all()
    team = route(data["topic"], teams)
    ticket = Ticket(
        id=envelope["ticket_id"],
        number=data["number"],
        subject=data["subject"],
        topic=data["topic"],
        priority=data["priority"],
        team=team,
        created_at=at,
    )
    # a redelivery finds it stored (and reads it): the assignment below is idempotent
    inserted = _save(svc, ticket, correlation_id, insert=True)
    assigned = _assign(
        svc,
        ticket.id,
        _auto(svc),
        "auto",
        SYSTEM,
        correlation_id,
        prepare=lambda t: t.is_open and t.agent_id is None and not t.history,
        stored=ticket if inserted else None,
        teams=teams,
    )
    if team != GENERAL:  # on a redelivery too (a crash between the insert and this), when it read the team again
        _team_kept(svc, next(t for t in teams if t["id"] == team), assigned)


def _teams_kept_for(svc: Assignment, teams: list[dict]) -> None:
    """The teams an agent was just given, put back if one was deleted since they were read: the delete's own check
    (delete_team) came before the agent was stored, which would be in a team that is no more (a race hunter's
    find). The delete is undone, as if the agent had come first."""
    for team in teams:
        if svc.teams.name(team["id"]) is None and svc.teams.put_back(team):
            log.warning("team %s was deleted as an agent joined it: put back", team["id"])


def _team_kept(svc: Assignment, team: dict, ticket: Ticket) -> None:
    """A team a ticket was just routed or moved to, put back if it was deleted since it was read: its delete's own
    check after the delete (delete_team) came before the ticket was stored, so it is the ticket's to keep. The
    team's delete is undone, as if the ticket had come first. Only a ticket left in the team's queue is looked
    at: a team with an agent to take it cannot have been deleted (a delete refuses a team with agents)."""
    if ticket.team != team["id"] or ticket.agent_id is not None:
        return
    if svc.teams.name(team["id"]) is None and svc.teams.put_back(team):
        log.warning("team %s was deleted as a ticket went to it: put back", team["id"])


def on_reopened(svc: Assignment, envelope: dict) -> None:
    """Back to the previous agent if still in the team and available (at capacity too), or away when it reopened the
    ticket itself; else the team's rule, else its queue."""
    at, correlation_id = events.parse_time(envelope["occurred_at"]), envelope["correlation_id"]
    by = events.load_data(envelope).get("by")
    _change(svc, envelope["ticket_id"], lambda t: None if t.reopen(at, by) else NO_CHANGE, correlation_id)

    def previous_or_team(ticket: Ticket):
        previous = svc.agents.find(ticket.agent_id)
        candidate = _candidate(previous) if previous else None
        counted = bool(previous) and svc.agents.counts(previous["id"], ticket.id)
        if takes_back(candidate, ticket.team, counted, reopened_it=bool(by) and by == ticket.agent_id):
            return previous, ticket.team, None, None
        return _auto(svc)(ticket)

    _assign(svc, envelope["ticket_id"], previous_or_team, "reopen", SYSTEM, correlation_id, prepare=lambda t: t.is_open)


def on_closed(svc: Assignment, envelope: dict) -> None:
    at, by = events.parse_time(envelope["occurred_at"]), events.load_data(envelope)["by"]
    close = lambda t: None if t.close(by, at) else NO_CHANGE  # noqa: E731
    ticket, _ = _change(svc, envelope["ticket_id"], close, envelope["correlation_id"])
    _free(svc, ticket, envelope["correlation_id"])  # also on a redelivery: the slot may not be free yet


def on_message_added(svc: Assignment, envelope: dict) -> None:
    at = events.parse_time(envelope["occurred_at"])

    def wrote(ticket: Ticket):
        ticket.requester_wrote(at)
        return None if ticket.recorded else NO_CHANGE  # saved only when it moved the ticket on

    _change(svc, envelope["ticket_id"], wrote, envelope["correlation_id"])


def on_sla(kind: str) -> Callable[[Assignment, dict], None]:
    def handle(svc: Assignment, envelope: dict) -> None:
        data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
        _change(svc, envelope["ticket_id"], lambda t: None if t.sla_alert(kind, data, at) else NO_CHANGE, None)

    return handle


def on_deadlines(svc: Assignment, envelope: dict) -> None:
    data = events.load_data(envelope)
    _change(svc, envelope["ticket_id"], lambda t: None if t.sla_deadlines(data) else NO_CHANGE, None)


HANDLERS = {
    "ticket.created": on_created,
    "ticket.reopened": on_reopened,
    "ticket.closed": on_closed,
    "ticket.message_added": on_message_added,
    "sla.warning": on_sla("warning"),
    "sla.breached": on_sla("breached"),
    "sla.deadlines_changed": on_deadlines,
}
