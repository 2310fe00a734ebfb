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

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.auth import Principal
from shared.mongo import upserted


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


def may_work_on(principal: Principal, ticket: TicketFacts, agent: dict | None) -> bool:
    """Whether an agent may work on `ticket` (reply on it, add files to it), as assignment's rule: its agent, or an
    agent of its team while it waits unassigned. Admins may; every other role may not."""
    if principal.role == "admin":
        return True
    if principal.role != "agent" or agent is None:
        return False
    if ticket.agent_id is not None:
        return ticket.agent_id == principal.agent_id
    return ticket.team is not None and ticket.team in agent.get("teams", ())


def sees_everything(principal: Principal) -> bool:
    """Admins and the portal server's own token: no filter on lists."""
    return principal.role == "admin" or (principal.role == "portal" and not principal.requester_scoped)


# --- projections from events ----------------------------------------------------------------------


class AgentDirectory:
    """agent_id -> {name, teams, lead_of, available}, from `agent.updated`; the newest event wins."""

    def __init__(self, db: Database) -> None:
        self.collection = db["agents_seen"]

    def learn(self, data: dict, at: datetime) -> None:
        fields = {
            "name": data.get("name"),  # what intake's timeline calls the agent (a reopen)
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


@dataclass(frozen=True)
class Stamp:
    """A ticket's team and agent as of its assignment at `at` (None: never assigned), copied onto its records."""

    team: str | None = None
    agent_id: str | None = None
    at: datetime | None = None

    def fields(self) -> dict:
        return {"team": self.team, "agent_id": self.agent_id, STAMPED_AT: self.at}


STAMPED_AT = "access_at"


class StampedRecords:
    """Records of a ticket (sla's breaches, notify's notifications) that carry the ticket's team and agent.

    An agent reads the records of its teams' tickets and of its own. Asking which tickets those are first
    and then for their records reads every such ticket, a number that grows with the desk (802 ms for
    notify's list after 20,000 tickets). A copy of the ticket's team and agent on each record makes the
    list one index walk per team and one for the agent, merged in the list's order, which stops at the page's
    end as an unfiltered list does.

    The copy is kept in step with the ticket's assignments, newest wins (`Stamp.at`): an assignment stamps
    every record of the ticket (`restamp`), a new record is stamped with what its service knows when it is
    written, and that is checked again once it is stored (`check`). Whatever the order of the two, the
    record ends with the newest: either the check sees the assignment, or the assignment came later and
    stamped the record too.
    """

    def __init__(
        self, collection: Collection, migrations: Collection, order: list[tuple[str, int]], by_ticket: bool = True
    ) -> None:
        """`order`: the list's sort; `by_ticket`: whether to index `ticket_id` (False when an index the
        collection has starts with it)."""
        self.collection, self.migrations, self.order, self.by_ticket = collection, migrations, order, by_ticket
        self._backfilled = False

    def ensure_indexes(self) -> None:
        if self.by_ticket:
            self.collection.create_index([("ticket_id", ASCENDING)])
        for first in ("team", "agent_id"):
            self.collection.create_index([(first, ASCENDING), *self.order])

    def restamp(self, match: dict, stamp: Stamp) -> None:
        """Stamp the records matched with `stamp`, unless they carry a newer one."""
        if stamp.at is None:
            return
        older = {"$or": [{STAMPED_AT: {"$lt": stamp.at}}, {STAMPED_AT: None}]}
        self.collection.update_many({**match, **older}, {"$set": stamp.fields()})

    def check(self, match: dict, stamped: Stamp | None, current: Stamp | None) -> None:
        """After writing records stamped with `stamped`: restamp them if the ticket's assignment changed.

        `stamped` None: some of them were there already (a redelivery), with whatever stamp the first delivery
        wrote; a worker that died before its check left it, so they are restamped unless they hold `current`
        or a newer one."""
        if current is not None and current.at is not None and current != stamped:
            self.restamp(match, current)

    @staticmethod
    def visible_to(agent_id: str, teams: Iterable[str]) -> dict:
        """The filter of the records an agent reads (the rule of `may_read`)."""
        return {"$or": [{"team": {"$in": list(teams)}}, {"agent_id": agent_id}]}

    def agent_scope(self, agent: dict | None, tickets_of: Callable[[str, list[str]], list[str]]) -> dict:
        """How a page of the records an agent reads is asked for (the store's `page` keyword): none for an agent
        the service has not heard of (`agent` None); through the stamps (`visible`) once every record has them;
        until the worker's backfill, `among` the tickets `tickets_of(agent_id, teams)` names."""
        if agent is None:
            return {"among": []}
        teams = list(agent.get("teams", []))
        if self.backfilled():
            return {"visible": self.visible_to(agent["id"], teams)}
        return {"among": tickets_of(agent["id"], teams)}

    def backfilled(self) -> bool:
        """Whether every record written before there were stamps has been stamped (then the lists use them)."""
        if not self._backfilled:
            name = self.collection.name
            self._backfilled = self.migrations.find_one({"_id": f"{name}_stamps"}) is not None
        return self._backfilled

    def backfill(self, stamps: Iterable[tuple[str, Stamp]], stop: threading.Event | None = None) -> int:
        """Once per database: stamp the records of each (ticket_id, stamp) given; how many tickets. A `stop`
        set meanwhile ends it unmarked (the next start does it again: a restamp is idempotent)."""
        if self.backfilled():
            return 0
        count = 0
        for ticket_id, stamp in stamps:
            if stop is not None and stop.is_set():
                return count
            self.restamp({"ticket_id": ticket_id}, stamp)
            count += 1
        try:
            self.migrations.insert_one({"_id": f"{self.collection.name}_stamps", "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # another worker finished first
        self._backfilled = True
        return count


RECORDS = "records"  # TicketAccess: False while no record stamped with the ticket's access exists (sla's breaches)


class TicketAccess:
    """ticket_id -> (requester email, team, agent), from `ticket.created` and `ticket.assigned`."""

    def __init__(self, db: Database) -> None:
        self.collection = db["ticket_access"]

    def ensure_indexes(self) -> None:
        self.collection.create_index("team")
        self.collection.create_index("agent_id")

    def learn_created(self, ticket_id: str, data: dict) -> None:
        """The requester; and, when this is the ticket's first event here, that no record of it is stamped yet
        (RECORDS: a ticket's records are written after its creation; a redelivered creation changes nothing)."""
        email = data["requester"]["email"].strip().lower()
        self.collection.update_one(
            {"_id": ticket_id}, {"$set": {"requester_email": email}, "$setOnInsert": {RECORDS: False}}, upsert=True
        )

    def note_records(self, ticket_id: str) -> None:
        """Before a record of the ticket is stamped (and its stamp read): its assignments must restamp them now."""
        self.collection.update_one({"_id": ticket_id}, {"$set": {RECORDS: True}}, upsert=True)

    def learn_assigned(self, ticket_id: str, data: dict, at: datetime) -> tuple[Stamp, bool]:
        """Learn the assignment unless a newer one is known: (the ticket's stamp now, whether records of it may
        carry another stamp and need restamping). One write that reads the result; a read more only when a
        newer assignment held (the write then matched nothing)."""
        fields = {"team": data["team"], "agent_id": data.get("agent_id"), "assigned_at": at}
        older = {"_id": ticket_id, "$or": [{"assigned_at": {"$lt": at}}, {"assigned_at": None}]}
        doc = upserted(
            lambda: self.collection.find_one_and_update(
                older, {"$set": fields}, upsert=True, return_document=ReturnDocument.AFTER
            )
        )
        if doc is None:
            doc = self.collection.find_one({"_id": ticket_id}) or {}
        stamp = Stamp(doc.get("team"), doc.get("agent_id"), doc.get("assigned_at"))
        return stamp, doc.get(RECORDS) is not False  # unknown (before the flag, or no creation seen): restamp

    def ids_visible_to(self, agent_id: str, teams: list[str]) -> list[str]:
        """The tickets of the teams, and those assigned to the agent."""
        query = {"$or": [{"team": {"$in": list(teams)}}, {"agent_id": agent_id}]}
        return [doc["_id"] for doc in self.collection.find(query, {"_id": 1})]

    def stamp_of(self, ticket_id: str) -> Stamp:
        doc = self.collection.find_one({"_id": ticket_id}, {"team": 1, "agent_id": 1, "assigned_at": 1}) or {}
        return Stamp(doc.get("team"), doc.get("agent_id"), doc.get("assigned_at"))

    def stamps(self) -> Iterable[tuple[str, Stamp]]:
        """(ticket_id, stamp) of every ticket assigned (a backfill's source)."""
        fields = {"team": 1, "agent_id": 1, "assigned_at": 1}
        for doc in self.collection.find({"assigned_at": {"$ne": None}}, fields, batch_size=1000):
            yield doc["_id"], Stamp(doc.get("team"), doc.get("agent_id"), doc["assigned_at"])

    def find(self, ticket_id: str) -> TicketFacts | None:
        doc = self.collection.find_one({"_id": ticket_id})
        if doc is None:
            return None
        return TicketFacts(ticket_id, doc.get("requester_email"), doc.get("team"), doc.get("agent_id"))


def _newest_wins(collection, doc_id: str, mark: str, at: datetime, fields: dict) -> None:
    """Set `fields` unless a newer event (a later `mark`) set them already: events arrive out of order."""
    older = {"_id": doc_id, "$or": [{mark: {"$lt": at}}, {mark: None}]}
    upserted(lambda: collection.update_one(older, {"$set": fields}, upsert=True))
