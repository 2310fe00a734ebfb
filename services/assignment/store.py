"""The only module that touches assignment's collections: agents, teams and tickets."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.assignment.domain import GENERAL, Ticket, first_lead
from shared import outbox
from shared.cursors import Key, Paginator
from shared.documents import VersionedStore
from shared.errors import Conflict, Invalid, NotFound
from shared.events import OPEN_STATUSES
from shared.mongo import Stale, ensure_document, retire_indexes
from shared.relay import OutboxFlusher

_TICKET_FIELDS = (
    "number",
    "subject",
    "topic",
    "priority",
    "team",
    "created_at",
    "agent_id",
    "status",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "sla",
    "notes",
    "history",
    "replies",
    "watermarks",
)

# a team's unassigned tickets, for the next free agent: emergency first, then high, normal, low; oldest first
# a team's queue: emergency first, then the oldest ticket (one transferred, handed back or reopened keeps its place)
WAITING_ORDER = [("priority_rank", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
QUEUE_ORDER = Paginator(
    (
        Key("s", "sla_sort", datetime),
        Key("p", "priority_rank", int),
        Key("c", "created_at", datetime),
        Key("i", "_id", str),
    )
)


class AgentStore:
    """Agents; a create or change carries its `agent.updated` event in the agent's outbox (shared.outbox).

    An agent's load is `open_count` on its document, with one small document per ticket it counts in
    `reservations` (`<ticket id>/<agent id>`): a redelivery or a racing request finds the ticket counted
    and does not count it twice. The count is a number, not a list of the tickets, so that reading or
    writing an agent costs the same whatever its load (the store decodes and rewrites a whole document).
    """

    def __init__(self, db: Database, flusher: OutboxFlusher | None = None) -> None:
        self.collection, self.flusher = db["agents"], flusher
        self.reservations = db["reservations"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("teams", ASCENDING)])
        for doc in self.collection.find({"open": {"$exists": True}}):  # stored with the list of tickets before
            for ticket_id in doc["open"]:
                self._hold(doc["_id"], ticket_id, doc.get("last_assigned_at"))
            self.collection.update_one(
                {"_id": doc["_id"], "_v": doc.get("_v")},
                {"$set": {"open_count": len(doc["open"])}, "$unset": {"open": ""}, "$inc": {"_v": 1}},
            )  # changed meanwhile: converted at the next start; until then the reconciler repairs its count

    def insert(self, agent: dict, staged: dict | None = None) -> dict:
        doc = {**agent, "_id": agent["id"], "open_count": 0, "last_assigned_at": None}
        try:
            if not outbox.insert_with_events(self.collection, doc, staged or {}):
                raise DuplicateKeyError("agent exists")
        except DuplicateKeyError:
            raise Conflict(f"An agent {agent['id']} exists already.") from None
        self._publish(agent["id"], staged, 1)
        return self.get(agent["id"])

    def get(self, agent_id: str) -> dict:
        doc = self.collection.find_one({"_id": agent_id})
        if doc is None:
            raise NotFound(f"No agent {agent_id}.")
        return _agent(doc)

    def find(self, agent_id: str | None) -> dict | None:
        doc = self.collection.find_one({"_id": agent_id}) if agent_id else None
        return _agent(doc) if doc else None

    def all(self, team: str | None = None) -> list[dict]:
        query = {"teams": team} if team else {}
        return [_agent(doc) for doc in self.collection.find(query).sort("_id", ASCENDING)]

    def lead(self, team: str) -> dict | None:
        """The team's lead (domain.first_lead: the first available by id, else the first): its name and email,
        read without the agents' open lists."""
        query = {
            "teams": team,
            "$or": [{"lead_of": team}, {"lead": True, "lead_of": {"$exists": False}}],  # or the older boolean
        }
        docs = self.collection.find(query, {"email": 1, "name": 1, "available": 1}).sort("_id", ASCENDING)
        lead = first_lead(list(docs))
        return None if lead is None else {"name": lead.get("name"), "email": lead["email"]}

    def update(self, agent: dict, changes: dict, now: datetime, staged: dict | None = None) -> dict:
        version = outbox.save_with_events(
            self.collection, agent["id"], agent["_v"], {**changes, "updated_at": now}, staged or {}
        )
        self._publish(agent["id"], staged, version)
        return self.get(agent["id"])

    def announce(self, agent: dict, staged: dict) -> None:
        """Store events for the agent as it is (no change to its fields), if it is still as read (else Stale)."""
        self._publish(
            agent["id"], staged, outbox.save_with_events(self.collection, agent["id"], agent["_v"], {}, staged)
        )

    def _publish(self, agent_id: str, staged: dict | None, version: int) -> None:
        if staged and self.flusher is not None:
            self.flusher.submit(self.collection, agent_id, staged, version)

    def reserve(self, agent: dict, ticket_id: str, now: datetime) -> None:
        """Count the ticket as the agent's, if the agent is still as it was read (its capacity was checked)."""
        done = self.collection.update_one(
            {"_id": agent["id"], "_v": agent["_v"]},
            {"$inc": {"open_count": 1, "_v": 1}, "$set": {"last_assigned_at": now}},
        )
        if not done.matched_count:
            raise Stale(agent["id"])
        if not self._hold(agent["id"], ticket_id, now):  # counted already (a redelivery, a racing request)
            self.collection.update_one({"_id": agent["id"]}, {"$inc": {"open_count": -1, "_v": 1}})

    def release(self, agent_id: str, ticket_id: str) -> bool:
        """The ticket no longer counts in the agent's load; whether it did (a slot is free now)."""
        if not self.reservations.delete_one({"_id": _reservation(ticket_id, agent_id)}).deleted_count:
            return False
        self.collection.update_one({"_id": agent_id}, {"$inc": {"open_count": -1, "_v": 1}})
        return True

    def counts(self, agent_id: str, ticket_id: str) -> bool:
        """Whether the ticket is counted in the agent's load."""
        return self.reservations.find_one({"_id": _reservation(ticket_id, agent_id)}, {"_id": 1}) is not None

    def held(self) -> dict[str, list[str]]:
        """Every agent's counted tickets, sorted (the reconciler's view of the counts)."""
        held: dict[str, list[str]] = {}
        for doc in self.reservations.find({}, {"agent_id": 1, "ticket_id": 1}):
            held.setdefault(doc["agent_id"], []).append(doc["ticket_id"])
        return {agent_id: sorted(ids) for agent_id, ids in held.items()}

    def set_open(self, agent: dict, held: list[str], truth: list[str]) -> bool:
        """Count exactly `truth` (the tickets say so) where `held` was counted, if the agent is still as read."""
        done = self.collection.update_one(
            {"_id": agent["id"], "_v": agent["_v"]}, {"$set": {"open_count": len(truth)}, "$inc": {"_v": 1}}
        )
        if not done.matched_count:
            return False
        for ticket_id in set(truth) - set(held):
            self._hold(agent["id"], ticket_id, None)
        for ticket_id in set(held) - set(truth):
            self.reservations.delete_one({"_id": _reservation(ticket_id, agent["id"])})
        return True

    def _hold(self, agent_id: str, ticket_id: str, at: datetime | None) -> bool:
        """Record the ticket as counted for the agent; False if it was already."""
        doc = {"_id": _reservation(ticket_id, agent_id), "ticket_id": ticket_id, "agent_id": agent_id, "at": at}
        try:
            self.reservations.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True


def _reservation(ticket_id: str, agent_id: str) -> str:
    return f"{ticket_id}/{agent_id}"


def _agent(doc: dict) -> dict:
    hidden = ("_id", "open", "open_count")
    agent = {key: value for key, value in doc.items() if key not in hidden and not key.startswith("_outbox")}
    agent["id"] = doc["_id"]
    agent["open_tickets"] = doc["open_count"] if "open_count" in doc else len(doc.get("open", ()))
    if "lead_of" not in doc:  # stored before lead was per team: the boolean meant every one of its teams
        agent["lead_of"] = list(doc.get("teams", ())) if doc.get("lead") else []
    agent["lead"] = bool(agent["lead_of"])
    return agent


class TeamStore:
    def __init__(self, db: Database) -> None:
        self.collection = db["teams"]

    def seed_general(self, now: datetime) -> None:
        ensure_document(
            self.collection, {"_id": GENERAL, "name": "General", "topics": [], "created_at": now, "updated_at": now}
        )

    def insert(self, team: dict) -> dict:
        try:
            self.collection.insert_one({**team, "_id": team["id"]})
        except DuplicateKeyError:
            raise Conflict(f"A team {team['id']} exists already.") from None
        return self.get(team["id"])

    def get(self, team_id: str) -> dict:
        team = self.find(team_id)
        if team is None:
            raise NotFound(f"No team {team_id}.")
        return team

    def all(self) -> list[dict]:
        return [_team(doc) for doc in self.collection.find().sort("_id", ASCENDING)]

    def find(self, team_id: str) -> dict | None:
        doc = self.collection.find_one({"_id": team_id})
        return _team(doc) if doc else None

    def name(self, team_id: str) -> str | None:
        """The team's name; None for a team not stored."""
        doc = self.collection.find_one({"_id": team_id}, {"name": 1})
        return doc["name"] if doc else None

    def update(self, team_id: str, changes: dict, now: datetime) -> dict:
        if not self.collection.update_one({"_id": team_id}, {"$set": {**changes, "updated_at": now}}).matched_count:
            raise NotFound(f"No team {team_id}.")
        return self.get(team_id)

    def delete(self, team_id: str) -> None:
        if not self.collection.delete_one({"_id": team_id}).deleted_count:
            raise NotFound(f"No team {team_id}.")

    def restore(self, team: dict) -> None:
        """A team's document put back as it was (a delete that found it used meanwhile)."""
        self.collection.replace_one({"_id": team["_id"]}, team, upsert=True)

    def put_back(self, team: dict) -> bool:
        """A team as a list read it (`all`, `get`) stored again if it is gone; whether it was."""
        try:
            self.collection.insert_one({**team, "_id": team["id"]})
        except DuplicateKeyError:
            return False
        return True

    def document(self, team_id: str) -> dict:
        doc = self.collection.find_one({"_id": team_id})
        if doc is None:
            raise NotFound(f"No team {team_id}.")
        return doc

    def require(self, team_ids: list[str], field: str) -> list[dict]:
        """The teams (as `get` gives them), each of which must exist (422 next to `field` naming those that do not)."""
        found = [_team(doc) for doc in self.collection.find({"_id": {"$in": list(team_ids)}})]
        unknown = sorted(set(team_ids) - {team["id"] for team in found})
        if unknown:
            raise Invalid("Unknown team.", {field: [f"Unknown team {t!r}." for t in unknown]})
        return found


def _team(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "topics": doc.get("topics", []),
        "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"),
    }


class TicketStore(VersionedStore):
    kind, model, fields = "ticket", Ticket, _TICKET_FIELDS

    def __init__(self, db: Database, flusher: OutboxFlusher | None = None) -> None:
        super().__init__(db["tickets"], flusher)

    def derived(self, ticket: Ticket) -> dict:
        # `open`: one value for the open statuses, so that the queue's lists are an equality on an index's key
        # followed by the queue's order (a `status` $in is no equality: its tickets would be sorted in memory)
        return {"priority_rank": ticket.priority_rank, "sla_sort": ticket.sla_sort, "open": ticket.is_open}

    def ensure_indexes(self) -> None:
        """Every list walks one of these in its order (resolved and closed tickets are never read): the open
        tickets, a team's, an agent's (or the unassigned ones), of one status; a team's unassigned ones by
        priority and wait (`waiting`)."""
        for first in ([], [("team", ASCENDING)], [("agent_id", ASCENDING)]):
            self.collection.create_index([*first, ("open", ASCENDING), *QUEUE_ORDER.order])
        self.collection.create_index([("status", ASCENDING), *QUEUE_ORDER.order])
        self.collection.create_index(
            [("team", ASCENDING), ("agent_id", ASCENDING), ("open", ASCENDING), *WAITING_ORDER]
        )
        retire_indexes(
            self.collection,
            "team_1_agent_id_1_status_1",
            "agent_id_1_status_1",
            "team_1_agent_id_1_open_1_priority_rank_1_waiting_since_1__id_1",  # the queue by wait, before its age
        )
        # tickets saved before `open` was derived get theirs (once: afterwards none has none, as the index says)
        for is_open, statuses in ((True, {"$in": list(OPEN_STATUSES)}), (False, {"$nin": list(OPEN_STATUSES)})):
            self.collection.update_many({"open": None, "status": statuses}, {"$set": {"open": is_open}})

    def one_of_team(self, team: str) -> dict | None:
        """A ticket the team has or had (`number`), whatever its status; None when no ticket ever went to it.

        One it has is an index's look-up. One transferred out of it names it in its history only, as the `from` of
        a transfer (a status's or an agent's change has a `from` too): those are read one by one, a scan of the
        tickets with a transfer (a rare admin's read; FerretDB takes no `$elemMatch` of several fields)."""
        if (found := self.collection.find_one({"team": team}, {"number": 1})) is not None:
            return found
        moved = {"history.action": "transferred", "history.from": team}
        for doc in self.collection.find(moved, {"number": 1, "history": 1}, batch_size=500):
            if any(e.get("action") == "transferred" and e.get("from") == team for e in doc.get("history", [])):
                return doc
        return None

    def waiting(self, team: str, limit: int = 20) -> list[str]:
        """The team's queue: unassigned open tickets, emergency first, then high, normal, low; the oldest first."""
        query = {"team": team, "agent_id": None, "open": True}
        docs = self.collection.find(query, {"_id": 1}).sort(WAITING_ORDER)
        return [doc["_id"] for doc in docs.limit(limit)]

    def held_by(self, agent_id: str) -> list[tuple[str, str]]:
        """The agent's open tickets as (id, team), in the queue's order (the agent's list's index)."""
        query = {"agent_id": agent_id, "open": True}
        return [(doc["_id"], doc["team"]) for doc in self.collection.find(query, {"team": 1}).sort(QUEUE_ORDER.order)]

    def open_by_agent(self) -> dict[str, dict[str, str]]:
        """Every agent's open tickets, from the tickets (one query, whatever the number of agents): {agent: {ticket:
        its team}}."""
        query = {"open": True, "agent_id": {"$ne": None}}
        owned: dict[str, dict[str, str]] = {}
        for doc in self.collection.find(query, {"agent_id": 1, "team": 1}):
            owned.setdefault(doc["agent_id"], {})[doc["_id"]] = doc["team"]
        return owned

    def page(
        self, filters: dict, limit: int, cursor: str | None, visible_to: dict | None = None, unread=()
    ) -> tuple[list[Ticket], str | None]:
        """Open tickets: soonest SLA deadline, then priority, then age (cursor: the last one's sort key).

        `filters` (None: any): fields equal to the value, and `unassigned` true (no agent) or false (an agent).
        `visible_to` (an agent) keeps the tickets of the agent's teams and those assigned to it.
        `unread`: fields not read (a ticket then holds its model's default there: for answering, never saving).
        """
        query: dict = {"open": True}
        query |= {k: v for k, v in filters.items() if v is not None and k != "unassigned"}
        if "status" in query:  # one of the open ones (the schema's): its own index, in the queue's order
            del query["open"]
        if filters.get("unassigned") is True:
            query["agent_id"] = {"$eq": None}  # not a bare None, which the paginator drops; the schema refuses agent_id
        elif filters.get("unassigned") is False:
            query.setdefault("agent_id", {"$ne": None})
        if visible_to is not None:
            query["$or"] = [{"team": {"$in": visible_to["teams"]}}, {"agent_id": visible_to["id"]}]
        fields = {**outbox.NO_OUTBOX, **dict.fromkeys(unread, 0)}  # (unread fields: the model's defaults)
        docs, next_cursor = QUEUE_ORDER.page(self.collection, query, limit, cursor, fields)
        return [self.from_doc(doc) for doc in docs], next_cursor
