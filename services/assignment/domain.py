"""assignment's rules: routing, the choice of agent, a ticket's workflow and who may do what. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.events import BY_URGENCY, OPEN_STATUSES
from shared.ordering import newer

PRIORITY_RANK = {priority: rank for rank, priority in enumerate(BY_URGENCY)}  # emergency 0 ... low 3
WORK_STATUSES = ("in_progress", "waiting_on_requester")
GENERAL = "general"
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)  # sorts after every real deadline
DEADLINES = ("first_response_due_at", "next_response_due_at", "resolution_due_at")  # a ticket's sla, by clock
RULE = (
    "the available agent of the team under capacity with the fewest open tickets; ties to the least recently assigned"
)


class RuleViolation(Exception):
    """A move the ticket's state does not allow (409)."""


# --- routing and choice ---------------------------------------------------------------------------


def _by(by_name: str | None) -> dict:
    """An event's `by_name`, when a person acted (an automatic change names nobody)."""
    return {"by_name": by_name} if by_name else {}


def route(topic: str, teams: list[dict]) -> str:
    """The team whose topics name the topic (the first by id when several do); `general` otherwise."""
    for team in sorted(teams, key=lambda t: t["id"]):
        if topic in team.get("topics", ()):
            return team["id"]
    return GENERAL


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    teams: tuple[str, ...]
    capacity: int
    open_tickets: int
    available: bool
    last_assigned_at: datetime | None = None

    def eligible(self, team: str) -> bool:
        return team in self.teams and self.available and self.open_tickets < self.capacity

    def describe(self) -> dict:
        return {
            "agent_id": self.agent_id,
            "open_tickets": self.open_tickets,
            "capacity": self.capacity,
            "available": self.available,
        }


@dataclass(frozen=True)
class Decision:
    team: str
    agent_id: str | None
    candidates: tuple[Candidate, ...]

    def record(self) -> dict:
        """What the event and the history carry: the rule and every candidate considered."""
        return {
            "rule": RULE,
            "team": self.team,
            "chosen": self.agent_id,
            "candidates": [c.describe() for c in self.candidates],
        }


def choose_agent(team: str, agents: list[Candidate]) -> Decision:
    """The least loaded available agent of the team under capacity; ties to the least recently assigned."""
    members = tuple(sorted((a for a in agents if team in a.teams), key=lambda a: a.agent_id))
    eligible = [a for a in members if a.eligible(team)]
    if not eligible:
        return Decision(team, None, members)
    oldest = datetime.min.replace(tzinfo=UTC)
    best = min(eligible, key=lambda a: (a.open_tickets, a.last_assigned_at or oldest, a.agent_id))
    return Decision(team, best.agent_id, members)


def takes_back(previous: Candidate | None, team: str, still_counted: bool, reopened_it: bool = False) -> bool:
    """On reopen: the previous agent takes the ticket back if still in the team and available (contract section 5),
    even at capacity: the ticket is its own work going on, which it knows, and its requester is answered by the
    person they wrote with (capacity limits what new work the rule gives). `still_counted`: its slot is counted
    for the ticket already (a first attempt was interrupted). `reopened_it`: the agent reopened it, away or not: it
    is at work on it (the ticket went to another agent, who resolved it again unasked: a tester's find)."""
    return previous is not None and team in previous.teams and (still_counted or previous.available or reopened_it)


# --- a ticket's workflow --------------------------------------------------------------------------


@dataclass
class Ticket:
    id: str
    number: int
    subject: str
    topic: str
    priority: str
    team: str
    created_at: datetime
    agent_id: str | None = None
    status: str = "new"
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    sla: dict = field(
        default_factory=lambda: {
            "first_response_due_at": None,
            "next_response_due_at": None,
            "resolution_due_at": None,
            "breached": False,
            "alerts": [],
        }
    )
    notes: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    replies: int = 0
    watermarks: dict = field(default_factory=dict)
    version: int = 0
    recorded: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def priority_rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    @property
    def sla_sort(self) -> datetime:
        """The soonest deadline of a clock still running (sla.deadlines_changed), for the queue's order."""
        running = ["next_response_due_at", "resolution_due_at"]
        if self.first_response_at is None:  # a reply met the first response: its deadline no longer counts
            running.append("first_response_due_at")
        return min((self.sla[k] for k in running if self.sla.get(k) is not None), default=NO_DEADLINE)

    # -- assignment --

    def assign(
        self,
        agent: dict | None,
        team: str,
        reason: str,
        by: str,
        at: datetime,
        team_lead_email: str | None = None,
        decision: dict | None = None,
        team_name: str | None = None,
        by_name: str | None = None,
        team_lead_name: str | None = None,
    ) -> None:
        """Give the ticket to an agent, or (agent None) put it in the team's queue. `team_name` goes in the
        event, so that its readers (intake's timeline, notify's emails) name the team as people know it."""
        previous, previous_team = self.agent_id, self.team
        self.agent_id, self.team = (agent["id"] if agent else None), team
        if agent is None and self.is_open:  # nobody has it: it waits in the team's queue, whatever it was
            self.status = "new"
        elif agent is not None and self.status == "new":
            self.status = "assigned"
        action = {"claim": "claimed", "transfer": "transferred"}.get(reason, "assigned" if agent else "queued")
        self._history(
            at,
            action,
            by,
            previous if reason != "transfer" else previous_team,
            self.agent_id if reason != "transfer" else team,
            decision,
            previous if reason == "transfer" else None,  # who had it: into its own team, a hand-back
        )
        self._record(
            "ticket.assigned",
            {
                "agent_id": self.agent_id,
                "agent_name": agent["name"] if agent else None,
                "agent_email": agent["email"] if agent else None,
                "team": team,
                "team_name": team_name,
                "team_lead_email": team_lead_email,
                "team_lead_name": team_lead_name if team_lead_email else None,
                "previous_agent_id": previous,
                **({"previous_team": previous_team} if reason == "transfer" and previous_team else {}),
                "reason": reason,
                "decision": decision,
                **_by(by_name),
            },
        )

    def reply(
        self,
        reply_id: str,
        agent_id: str,
        agent_name: str,
        body: str,
        status: str | None,
        at: datetime,
        files: list[str] | None = None,
    ) -> bool:
        """A public reply; returns whether it is the first response. `files`: the names of the files that go with it
        (attached on intake after; its emails name them)."""
        self._require_open()
        first = self.first_response_at is None
        if first:
            self.first_response_at = at
        self.sla["next_response_due_at"] = None  # a reply meets the running next-response clock
        self.replies += 1
        self._history(at, "replied", agent_id, None, None)
        self._record(
            "ticket.replied",
            {
                "reply_id": reply_id,
                "agent_id": agent_id,
                "agent_name": agent_name,
                "body": body,
                "first_response": first,
                **({"files": list(files)} if files else {}),
            },
        )
        self.set_status(status or "in_progress", agent_id, at, quiet_if_same=True, by_name=agent_name)
        return first

    def add_note(self, note_id: str, body: str, by: str, at: datetime, by_name: str | None = None) -> dict:
        """An internal note: stored here only, never in an event. `by_name`: the agent's name as it was then (none
        for an admin who is no agent)."""
        note = {"id": note_id, "body": body, "by": by, "by_name": by_name, "at": at}
        self.notes.append(note)
        self._history(at, "noted", by, None, None)
        return note

    def set_status(
        self, status: str, by: str, at: datetime, quiet_if_same: bool = False, by_name: str | None = None
    ) -> None:
        """`by_name`: the person who changed it, as the timeline names them (none when the system did)."""
        self._require_open()
        if status == self.status:
            if quiet_if_same:
                return
            raise RuleViolation(f"The ticket is already {status}.")
        previous, self.status = self.status, status
        self.watermarks["status"] = max(at, self.watermarks.get("status", at))
        self._history(at, "status_changed", by, previous, status)
        self._record("ticket.status_changed", {"status": status, "previous_status": previous, **_by(by_name)})

    def set_priority(self, priority: str, by: str, at: datetime, by_name: str | None = None) -> None:
        self._require_open()
        if priority == self.priority:
            raise RuleViolation(f"The ticket's priority is already {priority}.")
        previous, self.priority = self.priority, priority
        self._history(at, "priority_changed", by, previous, priority)
        self._record("ticket.priority_changed", {"priority": priority, "previous_priority": previous, **_by(by_name)})

    def resolve(
        self, resolution: str, by: str, at: datetime, by_name: str | None = None, merged_into: int | None = None
    ) -> None:
        """`agent_id` in the event is the ticket's agent (whose work it was); `by_name` who resolved it;
        `merged_into`: a duplicate's, the number of the request it went into."""
        if not self.is_open:
            raise RuleViolation(f"The ticket is already {self.status}.")
        if merged_into is not None and merged_into == self.number:
            raise RuleViolation("A ticket is not merged into itself.")
        self.status, self.resolved_at = "resolved", at
        self._history(at, "resolved", by, self.agent_id, None)
        merged = {"merged_into": merged_into} if merged_into is not None else {}
        self._record("ticket.resolved", {"agent_id": self.agent_id, "resolution": resolution, **_by(by_name), **merged})

    # -- other services' events --

    def reopen(self, at: datetime, by: str | None = None) -> bool:
        """Back to work (`by`: the agent or admin who reopened it; None: the requester's message)."""
        if self.status != "resolved" or not self._newer("reopened", at):
            return False
        self.status, self.resolved_at = ("assigned" if self.agent_id else "new"), None
        self._history(at, "reopened", by or "requester", "resolved", self.status)
        return True

    def close(self, by: str, at: datetime) -> bool:
        if self.status == "closed":
            return False
        previous, self.status, self.closed_at = self.status, "closed", at
        self._history(at, "closed", by, previous, "closed")
        return True

    def requester_wrote(self, at: datetime) -> None:
        """The requester answered: work goes on (unless the message predates the wait)."""
        waiting_since = self.watermarks.get("status")
        if self.status == "waiting_on_requester" and (waiting_since is None or at > waiting_since):
            self.set_status("in_progress", "requester", at)

    def sla_deadlines(self, data: dict) -> bool:
        """sla.deadlines_changed: the running clocks' deadlines, unless a later revision came first."""
        if data["revision"] <= self.sla.get("deadlines_revision", 0):
            return False
        self.sla.update({key: data[key] for key in DEADLINES}, deadlines_revision=data["revision"])
        return True

    def sla_alert(self, kind: str, data: dict, at: datetime) -> bool:
        clock, key = data["clock"], f"sla_{data['clock']}_{data.get('instance', 0)}"
        changed = False
        # its deadline, until sla.deadlines_changed tells them all (a warning read late must not bring back a
        # deadline paused since)
        if not self.sla.get("deadlines_revision") and self._newer(key, at):
            self.sla[f"{clock}_due_at"] = data["due_at"]
            changed = True
        alert = {
            "kind": kind,
            "clock": clock,
            "instance": data.get("instance", 0),
            "at": at,
            "percent": data.get("percent"),
            "due_at": data["due_at"],
        }
        if alert not in self.sla["alerts"]:
            self.sla["alerts"].append(alert)
            changed = True
        if kind == "breached" and not self.sla["breached"]:
            self.sla["breached"] = True
        return changed

    # -- helpers --

    def _require_open(self) -> None:
        if not self.is_open:
            raise RuleViolation(f"The ticket is {self.status}.")

    def _newer(self, name: str, at: datetime) -> bool:
        return newer(self.watermarks, name, at)

    def _history(self, at, action, by, before, after, decision: dict | None = None, agent_before=None) -> None:
        entry = {"at": at, "action": action, "by": by, "from": before, "to": after}
        if decision:
            entry["decision"] = decision
        if agent_before:
            entry["agent_before"] = agent_before
        self.history.append(entry)

    def _record(self, event_type: str, data: dict) -> None:
        self.recorded.append((event_type, data))


# --- rights: who may act on a ticket (admins, the team's agents and leads) --------------------------


def may_read(role: str, agent: dict | None, ticket: Ticket) -> bool:
    """Admins read every ticket; an agent those of its teams and those assigned to it (shared/access.py's rule).
    A ticket the agent may not read is answered as one that does not exist: its id is not confirmed."""
    if role == "admin":
        return True
    return agent is not None and (ticket.agent_id == agent["id"] or ticket.team in agent["teams"])


def may_resolve(role: str, agent: dict | None, ticket: Ticket) -> bool:
    """The ticket's agent resolves it, and admins: a teammate or a lead reassigns it first."""
    return role == "admin" or (agent is not None and ticket.agent_id == agent["id"])


def may_work_on(role: str, agent: dict | None, ticket: Ticket) -> bool:
    """An agent acts on tickets assigned to it, or waiting unassigned in one of its teams; admins on all."""
    if role == "admin":
        return True
    if role != "agent" or agent is None:
        return False
    return ticket.agent_id == agent["id"] or (ticket.agent_id is None and ticket.team in agent["teams"])


def may_note(role: str, agent: dict | None, ticket: Ticket) -> bool:
    """An internal note (the requester never sees it, it changes nothing): whoever may work on the ticket, and
    every agent of its team, so that a teammate or a lead can leave a word for the one who has it."""
    if may_work_on(role, agent, ticket):
        return True
    return role == "agent" and agent is not None and ticket.team in agent["teams"]


def leads(agent: dict | None, team: str) -> bool:
    """Lead is per team: the agent leads `team` if it is in its `lead_of` (and still one of its teams)."""
    return bool(agent and team in agent.get("lead_of", ()) and team in agent.get("teams", ()))


def first_lead(candidates: list[dict]) -> dict | None:
    """Of a team's leads (sorted by id), the one its tickets name (`team_lead_email`: whom notify escalates to):
    the first available, so that a lead on leave or gone (an unavailable agent) hands that to a lead at work;
    the first of all when none is available (someone may still read that mailbox)."""
    return next((lead for lead in candidates if lead.get("available", True)), candidates[0] if candidates else None)


def lead_of(teams: list[str], given: dict, current: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The teams an agent leads after a create or change of `given` fields (ValueError if they do not fit).

    `lead_of` names them; the older boolean `lead` still means "lead of all its teams" (true) or of none
    (false); with neither, the agent keeps leading those of its current lead teams it is still in.
    """
    if "lead_of" in given and "lead" in given:
        raise ValueError("Give lead_of or the older lead, not both.")
    if "lead_of" in given:
        outside = [team for team in given["lead_of"] if team not in teams]
        if outside:
            raise ValueError(f"An agent leads only teams it is in; not in {', '.join(outside)}.")
        return list(given["lead_of"])
    if "lead" in given:
        return list(teams) if given["lead"] else []
    return [team for team in current if team in teams]


def holder_of_email(agents: Iterable[dict], agent_id: str, email: str) -> dict | None:
    """The agent other than `agent_id` that has the address (in any case), None when none does: each agent's emails
    go to its own address, and its account signs in with it."""
    wanted = email.strip().lower()
    return next((a for a in agents if a["id"] != agent_id and a["email"].strip().lower() == wanted), None)


def why_team_stays(team_id: str, name: str, agents: Iterable[dict], ticket: dict | None = None) -> str | None:
    """Why a team may not be deleted (None: it may): `general` takes the topics no team names; a team with agents
    or leads is theirs; one a ticket (`ticket`, with its `number`) ever went to stays, since its tickets and the
    reports name it. Only a team added by mistake goes."""
    if team_id == GENERAL:
        return "Team general always exists: it takes the topics no other team names."
    agents = list(agents)
    if members := [agent["name"] for agent in agents if team_id in agent["teams"]]:
        return f"{name} has agents ({', '.join(members)}): take them out of it first."
    if leads := [agent["name"] for agent in agents if team_id in agent.get("lead_of", [])]:
        verb = "leads" if len(leads) == 1 else "lead"
        return f"{', '.join(leads)} {verb} {name}: untick it among the teams they lead first."
    if ticket is not None:
        return (
            f"Tickets went to {name} (#{ticket.get('number')} for one): a team with tickets stays, "
            "since they and the reports name it. Give its topics to another team instead."
        )
    return None


def may_change_agent(role: str, own_agent_id: str | None, agent_id: str, fields: Iterable[str]) -> bool:
    """Admins change any agent; an agent changes only its own availability (going away, coming back)."""
    return role == "admin" or (role == "agent" and own_agent_id == agent_id and set(fields) == {"available"})


def may_manage(role: str, agent: dict | None, ticket: Ticket) -> bool:
    """Reassign, transfer and change priority: admins, and the leads of the ticket's team."""
    return role == "admin" or (role == "agent" and leads(agent, ticket.team))
