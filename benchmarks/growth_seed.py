"""The growth benchmark's data (benchmarks/growth.py): a help desk set up through the APIs, tickets driven
through the running system with the whole mix of what happens to tickets, and copies of what they left.

Copies, not more tickets through the pipeline: 20,000 tickets take 30-40 minutes through it on a 2-core
machine. A copy is every document one driven ticket left in every collection of every service (intake's
ticket and timeline, assignment's ticket, sla's clocks and breaches, notify's projection and
notifications, each consumer's processed_events -- only for copies of the last 7 days: a worker deletes
older ones), rewritten with: a new ticket id everywhere it appears
(also inside strings, such as Message-IDs), every other id of the ticket new (events, notifications,
thread entries, replies, notes, correlation ids; same form: uuid4 or hex), a new unique number (below the
driven ones, in the order of the copies' creation dates), a requester from the pool, and every date moved
back by the same amount. So every document has exactly the shape the services write, and the unique
indexes hold. sla's compact history copy (clock_histories) is made again from the moved clocks by sla's own
HistoryStore.copy_of; the agents' open counts include the open copies, as assignment's reconciler would count them.

How far back a copy goes depends on its state, so that no timer of the running system picks the copies
up: a closed ticket anywhere in the last --months months; a resolved one less than 48 h (intake closes it
at 72 h); an open one no further than keeps its next SLA deadline 10 minutes ahead (sla's timer would
otherwise announce warnings and breaches for thousands of them while the reads are measured).
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo import MongoClient

from benchmarks.e2e import call, ok
from services.assignment.store import AgentStore
from services.sla.store import HistoryStore
from shared.auth import issue_token
from shared.events import OPEN_STATUSES
from shared.idempotency import KEEP as PROCESSED_KEEP

SERVICES = ("intake", "assignment", "sla", "notify")
TEAMS = ("network", "hardware", "software", "access", "email", "printing")  # topic = team id; `general` has no agents
AGENTS_PER_TEAM = 3
ID = re.compile(
    r"(?<![0-9a-f-])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})(?![0-9a-f-])"
)
# What happens to a driven ticket, and how often (out of 100): most end closed, as in a desk that has run a while.
SCENARIOS = (
    ("closed", 62),
    ("reopened-closed", 8),
    ("resolved", 8),
    ("waiting", 7),
    ("in-progress", 8),
    ("assigned", 4),
    ("unassigned", 3),
)
PRIORITIES = (("normal", 60), ("high", 15), ("low", 20), ("emergency", 5))
LOW_POLICY = {  # low tickets breach within seconds: the breaches list and the breach emails have something in them
    "first_response_minutes": 0.05,
    "next_response_minutes": 0.1,
    "resolution_minutes": 0.2,
    "warn_at_percent": [80],
    "calendar": "24x7",
}


@dataclass
class Desk:
    """The running system as the benchmark uses it: urls, the secret, and who works where."""

    urls: dict[str, str]
    secret: str
    agents: dict[str, list[str]] = field(default_factory=dict)  # team -> agent ids

    @property
    def admin(self) -> str:
        return issue_token(self.secret, "admin", ttl=24 * 3600)

    @property
    def portal(self) -> str:
        return issue_token(self.secret, "portal", ttl=24 * 3600)

    def agent(self, agent_id: str) -> str:
        return issue_token(self.secret, "agent", agent_id=agent_id, ttl=24 * 3600)

    def requester(self, email: str) -> str:
        return issue_token(self.secret, "portal", requester_email=email, ttl=24 * 3600)


def set_up(desk: Desk) -> None:
    """Teams (each routing its own topic), three agents of capacity 1000 each and an unavailable lead; `low` short."""
    admin = desk.admin
    ok(desk.urls["intake"], "PUT", "/topics/printing", admin, {"name": "Printing"})
    for team in TEAMS:
        ok(desk.urls["assignment"], "POST", "/teams", admin, {"id": team, "name": team.title(), "topics": [team]})
        lead = {"id": f"{team}-lead", "name": f"Lead of {team}", "email": f"{team}-lead@example.com",
                "teams": [team], "capacity": 1, "available": False, "lead": True}  # fmt: skip
        ok(desk.urls["assignment"], "POST", "/agents", admin, lead)
        desk.agents[team] = []
        for k in range(AGENTS_PER_TEAM):
            agent = {"id": f"{team}-agent{k}", "name": f"Agent {k} of {team}", "email": f"{team}-agent{k}@example.com",
                     "teams": [team], "capacity": 1000}  # fmt: skip
            ok(desk.urls["assignment"], "POST", "/agents", admin, agent)
            desk.agents[team].append(agent["id"])
    ok(desk.urls["sla"], "PUT", "/policies/low", admin, LOW_POLICY)


# --- driving tickets through the running system -----------------------------------------------------


@dataclass
class Driven:
    id: str
    number: int
    requester: str
    scenario: str


def pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in weighted], [weight for _, weight in weighted])[0]


def drive(desk: Desk, plans: list[tuple[str, str, str, str]], threads: int = 6) -> list[Driven]:
    """Each plan (scenario, requester email, topic, priority) as one ticket through its whole story, from a few
    threads; the tickets in the plans' order."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda plan: story(desk, *plan), plans))


def story(desk: Desk, scenario: str, requester: str, topic: str, priority: str) -> Driven:
    intake, assignment = desk.urls["intake"], desk.urls["assignment"]
    body = {"subject": f"{topic.title()}: something is wrong ({scenario})", "description": "It stopped working. " * 5,
            "requester": {"name": requester.split("@")[0].title(), "email": requester}, "topic": topic,
            "priority": priority, "source": "web"}  # fmt: skip
    ticket = ok(intake, "POST", "/tickets", desk.portal, body)
    tid = ticket["id"]
    driven = Driven(tid, ticket["number"], requester, scenario)
    if scenario == "unassigned":
        return driven
    agent = until(lambda: read(assignment, f"/tickets/{tid}", desk.admin).get("agent_id"), f"{tid} assigned")
    token = desk.agent(agent)

    def reply(status: str = "in_progress") -> None:
        ok(assignment, "POST", f"/tickets/{tid}/replies", token, {"body": "Could you try again now?", "status": status})

    def resolve() -> None:
        ok(assignment, "POST", f"/tickets/{tid}/resolve", token, {"resolution": "Replaced the cable."})
        until(lambda: read(intake, f"/tickets/{tid}", desk.admin).get("status") == "resolved", f"{tid} resolved")

    def message(text: str) -> None:
        ok(intake, "POST", f"/tickets/{tid}/messages", desk.portal, {"body": text})

    if scenario in ("assigned", "in-progress"):
        ok(assignment, "POST", f"/tickets/{tid}/notes", token, {"body": "Looks like the switch on floor 2."})
    if scenario == "in-progress":
        reply()
    if scenario == "waiting":
        reply("waiting_on_requester")
    if scenario in ("resolved", "closed"):
        reply()
        message("It still fails after lunch.")
        reply()
        resolve()
    if scenario == "reopened-closed":
        reply()
        resolve()
        message("It is broken again.")
        until(lambda: read(assignment, f"/tickets/{tid}", desk.admin).get("status") != "resolved", f"{tid} reopened")
        reply()
        resolve()
    if scenario in ("closed", "reopened-closed"):
        ok(intake, "POST", f"/tickets/{tid}/close", desk.portal, {})
    return driven


def read(url: str, path: str, token: str) -> dict:
    """The answer, or {} while the service has not heard of it yet (404)."""
    status, answer = call(url, "GET", path, token)
    if status not in (200, 404):
        raise RuntimeError(f"GET {url}{path}: {status} {answer}")
    return answer if status == 200 else {}


def until(probe: Callable[[], object], what: str, timeout: float = 300.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"not seen in {timeout:.0f} s: {what}")


def settle(mongo_url: str, ns: str, quiet: float = 5.0, timeout: float = 300.0) -> None:
    """Wait until nothing is pending to send and no service's data has changed for `quiet` seconds (every
    event handled, every timer of the low policy fired)."""
    client = MongoClient(mongo_url)
    try:

        def state() -> tuple:
            counts = tuple(client[f"{ns}_{s}"]["processed_events"].estimated_document_count() for s in SERVICES)
            pending = client[f"{ns}_notify"]["notifications"].count_documents({"next_attempt_at": {"$ne": None}})
            return counts + (client[f"{ns}_intake"]["timeline"].estimated_document_count(), pending)

        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            now = state()
            if now != last:
                last, since = now, time.monotonic()
            elif now[-1] == 0 and time.monotonic() - since >= quiet:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the system did not settle in {timeout:.0f} s (last counts {last})")
    finally:
        client.close()


def stats_gathered(mongo_url: str, ns: str, timeout: float = 300.0) -> None:
    """Wait until sla's worker has gathered /stats's figures per day (services/sla/store.py StatsDays) past the
    last copy: a pass begun at least its margin (5 s) after it. A desk that grew over months has them gathered
    as it went; the copies, all written in a few minutes, would otherwise be read one by one as written since
    the last pass."""
    client = MongoClient(mongo_url, tz_aware=True)
    try:
        db = client[f"{ns}_sla"]
        newest = db["clock_histories"].find_one({"u": {"$ne": None}}, {"u": 1}, sort=[("u", -1)])
        deadline = time.monotonic() + timeout
        while newest is not None and time.monotonic() < deadline:
            mark = db["stats_days"].find_one({"_id": "watermark"}) or {}
            if mark.get("upto") is not None and mark["upto"] > newest["u"]:
                return
            time.sleep(0.5)
        if newest is not None:
            raise RuntimeError(f"sla did not gather the figures per day in {timeout:.0f} s")
    finally:
        client.close()


# --- copies -----------------------------------------------------------------------------------------


@dataclass
class Source:
    """One driven ticket and everything it left: (service, collection) -> its documents."""

    id: str
    number: int
    email: str
    name: str
    created_at: datetime
    status: str
    team: str | None
    furthest_back: timedelta
    docs: dict[tuple[str, str], list[dict]] = field(default_factory=dict)


def sources_of(client: MongoClient, ns: str, ticket_ids: list[str], months: float) -> tuple[list[Source], list[str]]:
    """The driven tickets' documents in every collection (a document is a ticket's by its `_id`, its `ticket_id`,
    or, for processed_events, the event's ticket on intake's timeline); the collections that had none."""
    wanted = set(ticket_ids)
    intake = client[f"{ns}_intake"]
    events = {doc["_id"]: doc["ticket_id"] for doc in intake["timeline"].find({}, {"ticket_id": 1})}
    found: dict[str, dict[tuple[str, str], list[dict]]] = {tid: {} for tid in ticket_ids}
    untouched = []
    for service in SERVICES:
        db = client[f"{ns}_{service}"]
        for name in sorted(db.list_collection_names()):
            if name == "clock_histories":  # made again from the copied clocks
                continue
            hits = 0
            for doc in db[name].find():
                key = doc["_id"] if isinstance(doc["_id"], str) else None
                owner = key if key in wanted else doc.get("ticket_id") if doc.get("ticket_id") in wanted else None
                owner = owner or (events.get(key) if name == "processed_events" else None)
                if owner in wanted:
                    found[owner].setdefault((service, name), []).append(doc)
                    hits += 1
            if not hits:
                untouched.append(f"{service}.{name}")
    now = datetime.now(UTC)
    clocks = {doc["_id"]: doc for doc in client[f"{ns}_sla"]["clocks"].find({"_id": {"$in": ticket_ids}})}
    sources = []
    for tid in ticket_ids:
        ticket = found[tid][("intake", "tickets")][0]
        if ticket["status"] == "closed":
            back = timedelta(days=30.4 * months)
        else:  # recent enough that no timer of the running system acts on it
            back = timedelta(hours=48)
            due = (clocks.get(tid) or {}).get("next_due")
            if due is not None:
                back = min(back, max(due - now - timedelta(minutes=10), timedelta(0)))
        requester = ticket["requester"]
        sources.append(
            Source(tid, ticket["number"], requester["email"], requester["name"], ticket["created_at"],
                   ticket["status"], ticket.get("team"), back, found[tid])
        )  # fmt: skip
    return sources, untouched


@dataclass
class Copy:
    source: Source
    back: timedelta
    email: str
    number: int = 0


def plan_copies(sources: list[Source], count: int, requesters: list[str], first_number: int, rng) -> list[Copy]:
    """`count` copies, the sources in turn, each moved back at random within its bound and given a requester;
    numbered in the order of their new creation dates."""
    copies = [
        Copy(sources[i % len(sources)], sources[i % len(sources)].furthest_back * rng.random(), requesters[i])
        for i in range(count)
    ]
    copies.sort(key=lambda c: c.source.created_at - c.back)
    for k, copy in enumerate(copies):
        copy.number = first_number + k
    return copies


class Rewrite:
    """One copy's rewriting of a document: ids mapped to new ones (the same id always to the same new one),
    the requester and the number replaced, dates moved back."""

    def __init__(self, copy: Copy) -> None:
        source = copy.source
        self.back, self.ids = copy.back, {source.id: uuid.uuid4().hex}
        self.numbers = {source.number: copy.number}
        self.texts = {source.email: copy.email, f"#{source.number}": f"#{copy.number}"}
        self.names = {source.name: copy.email.split("@")[0].title()}

    def new_id(self, old: str) -> str:
        if old not in self.ids:
            self.ids[old] = str(uuid.uuid4()) if "-" in old else uuid.uuid4().hex
        return self.ids[old]

    def __call__(self, value, key: str | None = None):
        if isinstance(value, dict):
            return {self.text(k): self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, datetime):
            return value - self.back
        if isinstance(value, str):
            return self.names.get(value) or self.text(value)
        if key == "number" and isinstance(value, int) and value in self.numbers:
            return self.numbers[value]
        return value

    def text(self, value: str) -> str:
        value = ID.sub(lambda match: self.new_id(match.group()), value)
        for old, new in self.texts.items():
            if old in value:
                value = value.replace(old, new)
        return value


def summary(copies: list[Copy]) -> dict:
    """What the copies hold: tickets per status and team, requesters, the oldest creation date."""
    requesters = Counter(copy.email for copy in copies)
    return {
        "status": dict(Counter(copy.source.status for copy in copies).most_common()),
        "team": dict(Counter(copy.source.team or "-" for copy in copies).most_common()),
        "requesters": len(requesters),
        "most tickets of one requester": max(requesters.values(), default=0),
        "oldest": min((copy.source.created_at - copy.back for copy in copies), default=None),
    }


def check(desk: Desk, copies: list[Copy], client: MongoClient, ns: str, samples: int = 2) -> None:
    """`samples` copies read through every service's API as their sources are: as many timeline entries and
    notifications, the same status everywhere (a copy that a service could not read, or read otherwise, fails).
    Few: on FerretDB each list read scans, tens of seconds at 20,000 tickets."""
    admin = desk.admin
    chosen = copies[:: max(len(copies) // samples, 1)][:samples]
    found = client[f"{ns}_intake"]["tickets"].find({"number": {"$in": [c.number for c in chosen]}}, {"number": 1})
    by_number = {doc["number"]: doc["_id"] for doc in found}
    for copy in chosen:
        pair = (copy.source.id, by_number[copy.number])
        views = [
            (
                ok(desk.urls["intake"], "GET", f"/tickets/{tid}", admin)["status"],
                ok(desk.urls["assignment"], "GET", f"/tickets/{tid}", admin)["status"],
                len(ok(desk.urls["intake"], "GET", f"/tickets/{tid}/timeline?limit=200", admin, timeout=600)["items"]),
                len(
                    ok(desk.urls["notify"], "GET", f"/notifications?ticket_id={tid}&limit=200", admin, timeout=600)[
                        "items"
                    ]
                ),
                sorted(ok(desk.urls["sla"], "GET", f"/tickets/{tid}", admin)["clocks"]),
            )
            for tid in pair
        ]
        if views[0] != views[1]:
            raise RuntimeError(f"copy {pair[1]} of {pair[0]} reads otherwise: {views[1]} against {views[0]}")


def copies_of(copy: Copy) -> Iterator[tuple[str, str, dict]]:
    """(service, collection, document) of one copy."""
    rewrite = Rewrite(copy)
    for (service, name), docs in copy.source.docs.items():
        if name == "processed_events" and copy.back > PROCESSED_KEEP:  # the workers' timers deleted these long ago
            continue
        for doc in docs:
            new = rewrite(doc)
            yield service, name, new
            if (service, name) == ("sla", "clocks"):
                yield service, "clock_histories", HistoryStore.copy_of(new, new.get("_v", 1))


def insert_copies(client: MongoClient, ns: str, copies: list[Copy], batch: int = 1000, progress=print) -> dict:
    """Every document of every copy, with insert_many in batches (one thread per service's database); then the
    open copies counted in their agents' loads. The documents written per collection."""
    written: dict[str, int] = {}
    pending: dict[tuple[str, str], list[dict]] = {}
    open_by_agent: dict[str, list[str]] = {}
    started = time.monotonic()

    def flush(keys: list[tuple[str, str]]) -> None:
        def one(key: tuple[str, str]) -> None:
            docs = pending.pop(key)
            if key == ("sla", "clock_histories"):  # when each was written, as HistoryStore.write has the database set
                written_at = datetime.now(UTC)
                docs = [{**doc, "u": written_at} for doc in docs]
            client[f"{ns}_{key[0]}"][key[1]].insert_many(docs, ordered=False)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, keys))

    for k, copy in enumerate(copies, 1):
        for service, name, doc in copies_of(copy):
            pending.setdefault((service, name), []).append(doc)
            written[f"{service}.{name}"] = written.get(f"{service}.{name}", 0) + 1
            if (service, name) == ("assignment", "tickets") and doc.get("agent_id") and doc["status"] in OPEN_STATUSES:
                open_by_agent.setdefault(doc["agent_id"], []).append(doc["_id"])
        full = [key for key, docs in pending.items() if len(docs) >= batch]
        if full:
            flush(full)
        if k % 2000 == 0:
            progress(f"  {k} copies ({sum(written.values())} documents, {time.monotonic() - started:.0f} s)")
    flush(list(pending))
    count_open(AgentStore(client[f"{ns}_assignment"]), open_by_agent)
    return written


def count_open(agents: AgentStore, open_by_agent: dict[str, list[str]]) -> None:
    """The open copies counted in their agents' loads, beside what they counted already (the reconciler's repair)."""
    held = agents.held()
    for agent_id, ids in open_by_agent.items():
        agent = agents.get(agent_id)
        counted = held.get(agent_id, [])
        agents.set_open(agent, counted, counted + ids)


def requester_pool(rng: random.Random, count: int, people: int = 1200) -> tuple[list[str], str]:
    """`count` requester emails from `people` addresses, skewed (a few have many tickets, most one or two), and
    one frequent requester with a fiftieth of them; (the emails in copy order, the frequent one's)."""
    frequent = "frequent.requester@example.com"
    pool = [f"person{k:04d}@example.org" for k in range(people)]
    weights = [1 / (1 + k / 40) for k in range(people)]
    emails = rng.choices(pool, weights, k=count)
    for i in rng.sample(range(count), max(count // 50, 1)):
        emails[i] = frequent
    return emails, frequent
