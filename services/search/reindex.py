"""`ticketflow search reindex`: a new index from the stored documents, switched to while the service answers.

When search's database holds no document learnt from a creation (a new deployment of search beside a desk that
has tickets; a live event meanwhile begins one, which the import fills in), the
documents are first taken from intake's API (GET /tickets, then each ticket for its thread), as an admin.
intake shows a resolved (or closed) ticket's resolution, which comes along; the events that arrive later are
learnt into them as usual (each part newer than the ticket's updated_at).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import requests

from services.search.domain import TicketDoc, earlier_resolution_id
from services.search.handlers import Search
from services.search.index import rebuild
from shared.auth import issue_token
from shared.clock import now
from shared.events import parse_time
from shared.saving import NO_CHANGE, update

log = logging.getLogger(__name__)
PAGE = 200
TIMEOUT = 30.0


def reindex(svc: Search, intake_url: str | None) -> dict:
    """Rebuild and switch; what was done, for the command to print."""
    imported = named = 0
    if intake_url and not svc.tickets.any_whole():  # none learnt from a ticket.created: search is new beside them
        imported = sum(1 for ticket in intake_tickets(svc, intake_url) if _imported(svc, from_intake(ticket)))
    elif intake_url and svc.tickets.nameless():
        try:
            for page in requester_names(svc, intake_url):
                named += svc.tickets.learn_names(page)
        except requests.RequestException as error:  # the words are what a reindex is for: names another time
            log.warning("requesters' names not taken from intake (%s): they are found by name after a reindex", error)
    path, count = rebuild(svc.home, svc.tickets)
    return {"generation": path, "indexed": count, "imported_from_intake": imported, "names_from_intake": named}


def _imported(svc: Search, whole: TicketDoc) -> bool:
    """The ticket from intake stored: new, or into the document a live event began before its ticket.created (its
    insert found that one, and skipped it: the ticket was never findable). Whether it took anything."""
    if svc.tickets.insert(whole, {}):
        return True

    def load() -> TicketDoc:
        return svc.tickets.get(whole.id)

    def learn(doc: TicketDoc):
        if not doc.learn_whole(whole):
            return NO_CHANGE
        doc.updated_at = now()
        return None

    _, result = update(load, learn, lambda doc, _: svc.tickets.save(doc, {}), f"The document {whole.id} is busy.")
    return result is not NO_CHANGE


def intake_tickets(svc: Search, intake_url: str) -> Iterator[dict]:
    """Every ticket intake has, each whole (with its thread)."""
    session = _session(svc)
    for page in _pages(session, intake_url):
        for item in page:
            whole = session.get(f"{intake_url.rstrip('/')}/tickets/{item['id']}", timeout=TIMEOUT)
            if whole.status_code == 200:
                yield whole.json()


def requester_names(svc: Search, intake_url: str) -> Iterator[dict[str, str]]:
    """Each page of intake's tickets as {ticket id: its requester's name}: for the documents learnt before search
    kept names (a search finds a ticket by its requester's name since)."""
    for page in _pages(_session(svc), intake_url):
        yield {item["id"]: name for item in page if (name := (item.get("requester") or {}).get("name"))}


def _session(svc: Search) -> requests.Session:
    token = issue_token(svc.settings.require_secret(), "admin", ttl=3600, sub="search-reindex")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _pages(session: requests.Session, intake_url: str) -> Iterator[list[dict]]:
    """intake's tickets, a page (its items) at a time, newest first."""
    cursor = None
    while True:
        params = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
        page = session.get(f"{intake_url.rstrip('/')}/tickets", params=params, timeout=TIMEOUT)
        page.raise_for_status()
        body = page.json()
        yield body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return


def from_intake(ticket: dict) -> TicketDoc:
    """A document from intake's view of a ticket; its parts as of the ticket's updated_at."""
    updated = parse_time(ticket["updated_at"])
    return TicketDoc(
        id=ticket["id"],
        number=ticket["number"],
        subject=ticket["subject"],
        description=ticket["description"],
        requester_email=ticket["requester"]["email"].strip().lower(),
        requester_name=ticket["requester"].get("name") or None,
        messages=sorted(
            [
                {"id": entry["id"], "body": entry["body"], "at": parse_time(entry["created_at"])}
                for entry in ticket.get("thread", [])
            ]
            + [
                {"id": earlier_resolution_id(at), "body": earlier["resolution"], "at": at}
                for earlier in ticket.get("earlier_resolutions") or []
                if (at := parse_time(earlier["resolved_at"])) and earlier.get("resolution")
            ],
            key=lambda message: message["at"],
        ),
        status=ticket["status"],
        resolution=ticket.get("resolution"),
        resolved_at=parse_time(ticket["resolved_at"]) if ticket.get("resolved_at") else None,
        team=ticket.get("team"),
        agent_id=(ticket.get("assignee") or {}).get("agent_id"),
        created_at=parse_time(ticket["created_at"]),
        watermarks={"status": updated, "assignee": updated, "resolution": updated},
        updated_at=now(),
    )
