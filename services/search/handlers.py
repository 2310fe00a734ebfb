"""search's event handlers and queries: events become each ticket's document, and the document the index's.

The worker stores a ticket's document (search's database, with the time of the newest event behind each part)
and then writes it to the engine; a timer commits the engine's writes in rounds (COMMIT_INTERVAL), which is
what makes a change findable. The api asks the engine with the asker's rights inside the query.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from services.search.domain import INDEXED_EVENTS, TicketDoc
from services.search.engine import Scope
from services.search.index import IndexHome, Reader, Writer
from services.search.store import TicketDocs
from shared import events
from shared.access import AgentDirectory, may_read, sees_everything
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Invalid, NotFound
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.saving import NO_CHANGE, read_after_first, update

SERVICE = "search"
COMMIT_INTERVAL = 0.5  # seconds between the worker's commits: a change is findable within about this long


@dataclass
class Search:
    """Everything search's handlers need, wired once per process (see `bootstrap`)."""

    settings: Settings
    tickets: TicketDocs
    agents: AgentDirectory
    processed: ProcessedEvents
    home: IndexHome
    reader: Reader
    writer: Writer | None = None  # the worker's only (`open_writer`): the api processes read

    def ensure_storage(self) -> None:
        self.tickets.ensure_indexes()
        self.processed.ensure_indexes()

    def open_writer(self) -> Writer:
        self.writer = Writer(self.home, self.tickets)
        self.writer.start()
        return self.writer


def bootstrap(settings: Settings) -> Search:
    db = database(settings, SERVICE)
    home = index_home(settings)
    return Search(settings, TicketDocs(db), AgentDirectory(db), ProcessedEvents(db), home, Reader(home))


def index_home(settings: Settings) -> IndexHome:
    """Where the index lives: a directory of generations (embedded), or indices of an OpenSearch cluster."""
    if settings.search_engine == "opensearch":
        from services.search.opensearch import OpenSearchHome, connect

        return OpenSearchHome(connect(settings.opensearch_url, settings.opensearch_ca), settings.namespace)
    return IndexHome(os.path.join(settings.search_index_dir, settings.namespace))


# --- events -> documents -> index --------------------------------------------------------------------


def on_ticket_event(svc: Search, envelope: dict) -> None:
    """Learn the event into the ticket's document, then hand the document to the engine.

    A ticket.created is nearly always the first news of its ticket: its first attempt inserts without a read
    (an insert that finds the document there, a late or repeated event, reads it and learns into that).
    """
    ticket_id, event_type = envelope["ticket_id"], envelope["type"]
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    find = read_after_first(svc.tickets.find, event_type == "ticket.created")

    def load() -> tuple[TicketDoc, bool]:
        found = find(ticket_id)
        return (TicketDoc(ticket_id), True) if found is None else (found, False)

    def learn(loaded: tuple[TicketDoc, bool]):
        doc, _ = loaded
        if not doc.apply(event_type, data, at):
            return NO_CHANGE
        doc.updated_at = now()
        return None

    def save(loaded: tuple[TicketDoc, bool], _) -> None:
        doc, fresh = loaded
        if not fresh:
            svc.tickets.save(doc, {})
        elif not svc.tickets.insert(doc, {}):
            raise Stale(ticket_id)  # created meanwhile: learn into that one

    (doc, _), _ = update(load, learn, save, f"The document of ticket {ticket_id} is changing too fast.")
    if doc.indexable:  # a repeated event writes it again too: the first delivery's write may not have been committed
        svc.writer.upsert(doc.document())


def on_agent_updated(svc: Search, envelope: dict) -> None:
    """An agent's teams: which tickets it may find."""
    svc.agents.learn(events.load_data(envelope), events.parse_time(envelope["occurred_at"]))


# --- queries -----------------------------------------------------------------------------------------


def scope_of(svc: Search, principal: Principal) -> Scope:
    """What `principal` may find: the rule of shared.access, as the engine's Scope."""
    if sees_everything(principal):
        return Scope(everything=True)
    if principal.requester_scoped:
        return Scope(requester_email=principal.requester_email, ticket_id=principal.ticket_id)
    agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
    if agent is None:
        return Scope()  # an agent search has not heard of finds nothing
    return Scope(teams=frozenset(agent.get("teams", ())), agent_id=principal.agent_id)


def search(svc: Search, query: dict, principal: Principal) -> dict:
    """A page of the tickets matching `q`, best first; the cursor is the next page's offset."""
    offset = _offset(query.get("cursor"))
    limit = query["limit"]
    engine = svc.reader.engine()
    if engine is None:
        return {"items": [], "next_cursor": None, "total": 0}
    items, total = engine.search(
        query.get("q") or "",
        scope=scope_of(svc, principal),
        status=query.get("status"),
        team=query.get("team"),
        limit=limit,
        offset=offset,
    )
    more = offset + len(items) < total and len(items) == limit
    return {"items": items, "next_cursor": _cursor(offset + limit) if more else None, "total": total}


def similar(svc: Search, ticket_id: str, limit: int, principal: Principal) -> list[dict]:
    """Resolved and closed tickets like this one; 404 for a ticket the asker may not see (or search never saw)."""
    facts = svc.tickets.facts(ticket_id)
    agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
    if not may_read(principal, facts, agent):
        raise NotFound(f"No ticket {ticket_id}.")
    engine = svc.reader.engine()
    return [] if engine is None else engine.similar(ticket_id, scope=scope_of(svc, principal), limit=limit)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 10_000:
        raise Invalid("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]})
    return value


HANDLERS = dict.fromkeys(INDEXED_EVENTS, on_ticket_event) | {"agent.updated": on_agent_updated}
