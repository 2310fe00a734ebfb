"""Who may read which ticket, the same rule in every service, and the projections it is decided from.

The rule (assignment's, for every service): admins read every ticket; the portal server's own
token (role portal without requester_email) too; a requester-scoped portal token only its requester's
tickets (only its ticket_id when it names one), emails compared case-insensitively; an agent the tickets
of its teams and those assigned to it. An agent id the service has not heard of (no `agent.updated`
yet) reads nothing. Services answer 404 for a ticket the reader may not see (its id is not confirmed),
and leave such tickets out of lists.

Each service learns what the rule needs from events only: a ticket's requester from `ticket.created`,
its team and agent from `ticket.assigned`, an agent's teams from `agent.updated` (assignment publishes
one whenever an agent is created or changed). `AgentDirectory` and `TicketAccess` keep those
projections for services that have no ticket view of their own holding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.auth import Principal


@dataclass(frozen=True)
class TicketFacts:
    """What the rule needs of a ticket: whose it is, its team and its agent (None while unknown)."""

    ticket_id: str
    requester_email: str | None = None
    team: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class ListScope:
    """Which tickets one reader's lists may hold, as data (each store turns it into its own query).

    A requester's (requester_email, and only ticket_id when set), or an agent's (its teams' and its own);
    with neither, none at all.
    """

    requester_email: str | None = None
    ticket_id: str | None = None
    teams: tuple[str, ...] = ()
    agent_id: str | None = None


def list_scope(principal: Principal, agent: dict | None) -> ListScope | None:
    """What `principal` may list (None: everything); `agent`: its projection, None when unknown."""
    if sees_everything(principal):
        return None
    if principal.requester_scoped:
        return ListScope(requester_email=principal.requester_email, ticket_id=principal.ticket_id)
    if principal.role == "agent" and agent is not None:
        return ListScope(teams=tuple(agent.get("teams", ())), agent_id=principal.agent_id)
    return ListScope()


def same_email(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


def may_read(principal: Principal, ticket: TicketFacts | None, agent: dict | None) -> bool:
    """Whether `principal` may see `ticket` (None: a ticket the service does not know); `agent`: its projection."""
    if ticket is None:
        return False
    if principal.role == "admin":
        return True
    if principal.role == "portal":
        if not principal.requester_scoped:
            return True  # the portal server's own token
        if principal.ticket_id is not None and principal.ticket_id != ticket.ticket_id:
            return False
        return same_email(principal.requester_email, ticket.requester_email)
    if principal.role == "agent":
        if agent is None:
            return False
        return (ticket.agent_id is not None and ticket.agent_id == principal.agent_id) or (
            ticket.team is not None and ticket.team in agent.get("teams", ())
        )
    return False


def sees_everything(principal: Principal) -> bool:
    """Admins and the portal server's own token: no filter on lists."""
    return principal.role == "admin" or (principal.role == "portal" and not principal.requester_scoped)


# --- projections from events ----------------------------------------------------------------------


class AgentDirectory:
    """agent_id -> {teams, lead_of, available}, from `agent.updated`; the newest event wins."""

    def __init__(self, db: Database) -> None:
        self.collection = db["agents_seen"]

    def learn(self, data: dict, at: datetime) -> None:
        fields = {
            "teams": list(data["teams"]),
            "lead_of": list(data["lead_of"]),
            "available": data["available"],
            "at": at,
        }
        _newest_wins(self.collection, data["agent_id"], "at", at, fields)

    def find(self, agent_id: str | None) -> dict | None:
        if not agent_id:
            return None
        doc = self.collection.find_one({"_id": agent_id})
        return None if doc is None else {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


class TicketAccess:
    """ticket_id -> (requester email, team, agent), from `ticket.created` and `ticket.assigned`."""

    def __init__(self, db: Database) -> None:
        self.collection = db["ticket_access"]

    def ensure_indexes(self) -> None:
        self.collection.create_index("team")
        self.collection.create_index("agent_id")

    def learn_created(self, ticket_id: str, data: dict) -> None:
        email = data["requester"]["email"].strip().lower()
        self.collection.update_one({"_id": ticket_id}, {"$set": {"requester_email": email}}, upsert=True)

    def learn_assigned(self, ticket_id: str, data: dict, at: datetime) -> None:
        fields = {"team": data["team"], "agent_id": data.get("agent_id"), "assigned_at": at}
        _newest_wins(self.collection, ticket_id, "assigned_at", at, fields)

    def ids_visible_to(self, agent_id: str, teams: list[str]) -> list[str]:
        """The tickets of the teams, and those assigned to the agent."""
        query = {"$or": [{"team": {"$in": list(teams)}}, {"agent_id": agent_id}]}
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1})]

    def find(self, ticket_id: str) -> TicketFacts | None:
        doc = self.collection.find_one({"_id": ticket_id})
        if doc is None:
            return None
        return TicketFacts(ticket_id, doc.get("requester_email"), doc.get("team"), doc.get("agent_id"))


def _newest_wins(collection, doc_id: str, mark: str, at: datetime, fields: dict) -> None:
    """Set `fields` unless a newer event (a later `mark`) set them already: events arrive out of order."""
    try:
        collection.update_one(
            {"_id": doc_id, "$or": [{mark: {"$lt": at}}, {mark: None}]}, {"$set": fields}, upsert=True
        )
    except DuplicateKeyError:
        pass  # the document holds a newer (or the same) event's fields: this one is older
