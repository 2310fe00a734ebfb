"""`ticketflow search reindex`: a new index from the stored documents, switched to while the service answers.

When search's database holds no document (a new deployment of search beside a desk that has tickets), the
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

log = logging.getLogger(__name__)
PAGE = 200
TIMEOUT = 30.0


def reindex(svc: Search, intake_url: str | None) -> dict:
    """Rebuild and switch; what was done, for the command to print."""
    imported = 0
    if svc.tickets.count() == 0 and intake_url:
        imported = sum(1 for ticket in intake_tickets(svc, intake_url) if svc.tickets.insert(from_intake(ticket), {}))
    path, count = rebuild(svc.home, svc.tickets)
    return {"generation": path, "indexed": count, "imported_from_intake": imported}


def intake_tickets(svc: Search, intake_url: str) -> Iterator[dict]:
    """Every ticket intake has, each whole (with its thread)."""
    token = issue_token(svc.settings.require_secret(), "admin", ttl=3600, sub="search-reindex")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    cursor = None
    while True:
        params = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
        page = session.get(f"{intake_url.rstrip('/')}/tickets", params=params, timeout=TIMEOUT)
        page.raise_for_status()
        body = page.json()
        for item in body["items"]:
            whole = session.get(f"{intake_url.rstrip('/')}/tickets/{item['id']}", timeout=TIMEOUT)
            if whole.status_code == 200:
                yield whole.json()
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
