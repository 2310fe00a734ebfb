"""Finding past tickets through search: the console's search and similar tickets, and a requester's own search.

search answers with intake's rights, so each call carries the person's own token and search decides what they
see. A requester's search goes once per ticket this browser was granted, each time with that ticket's token
(which names the ticket): a session that opened a ticket under someone else's address must never search that
address's other tickets. When search does not answer, the pages say so and show the rest (never an error page).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from services.portal import domain, handlers
from services.portal.client import Refused, Unreachable, path_id
from services.portal.console import actor, every_team
from services.portal.domain import AGENT_STATUS, email_ok
from services.portal.handlers import Portal, UserError

QUERY_MAX = domain.QUERY_MAX
PAGE = 20
SIMILAR = 5
GRANTS_LISTED = 50  # a requester's requests listed and searched: the session's newest grants
MARK = re.compile(r"(</?mark>)")
FIELDS = ("q", "status", "team")  # search's query fields that are the form's fields too


@dataclass
class Found:
    items: list[dict] = field(default_factory=list)  # each hit's snippet as Markup: only text and <mark>
    total: int = 0
    next_cursor: str | None = None
    unavailable: bool = False  # search did not answer


def marked(snippet: str | None) -> Markup:
    """search's snippet as markup that holds nothing but text and <mark>: each piece between the marks is read
    as search's escaped text and escaped again here, so whatever else it held shows as text, never as markup."""
    out, open_ = [], False
    for piece in MARK.split(snippet or ""):
        if piece in ("<mark>", "</mark>"):
            if (piece == "<mark>") != open_:
                out.append(Markup(piece))
                open_ = not open_
            continue
        out.append(escape(html.unescape(piece)))
    if open_:
        out.append(Markup("</mark>"))
    return Markup("").join(out)


def query_problems(form: dict) -> dict[str, list[str]]:
    """What the person can fix before search is asked, in the page's words (a status by its name, not its id)."""
    q, status = form.get("q") or "", (form.get("status") or "").strip()
    errors = {}
    if len(q) > QUERY_MAX:
        errors["q"] = [f"Use at most {QUERY_MAX:,} characters (this has {len(q):,})."]
    if status and status not in AGENT_STATUS:
        errors["status"] = [f"Choose a status from the list: {', '.join(AGENT_STATUS.values())}; or any."]
    return errors


def search(svc: Portal, session: dict, form: dict) -> Found:
    """A page of the tickets matching the form (q, status, team, cursor) that the person may see, best first.

    UserError (field errors) for what the person can fix; an empty Found marked unavailable when search is down.
    """
    errors = query_problems(form)
    if errors:
        raise UserError("Check what you typed.", errors, 422)
    query = {name: (form.get(name) or "").strip() for name in (*FIELDS, "cursor")}
    try:
        page = svc.services.get("search", "/search", actor(session), **query, limit=PAGE)
    except Refused as refused:
        raise _user_error(refused) from None
    except Unreachable:
        return Found(unavailable=True)
    items = [{**item, "snippet": marked(item.get("snippet"))} for item in page.get("items") or []]
    return Found(items, int(page.get("total") or 0), page.get("next_cursor"))


FROM_SHOWN = 20  # a requester's tickets listed when their address is searched for


def from_requester(svc: Portal, session: dict, form: dict) -> dict | None:
    """A requester's address searched for: their tickets the person may read (intake's list, newest first, with the
    form's status and team), shown beside what its words find; None for anything else, and when intake does not
    answer (the words' results still show)."""
    email = searched_address(form.get("q") or "")
    if form.get("cursor") or email is None:
        return None
    query = {"requester_email": email, "limit": FROM_SHOWN + 1}
    if form.get("status"):
        query["status"] = form["status"]
    try:
        items = svc.services.get("intake", "/tickets", actor(session), **query)["items"]
    except (Refused, Unreachable):
        return None
    read = len(items)  # intake lists by requester, not by team: the team's are those among the newest read
    if team := form.get("team"):
        items = [item for item in items if item.get("team") == team]
    among = read if team and read > FROM_SHOWN else None
    return {"email": email, "items": items[:FROM_SHOWN], "more": len(items) > FROM_SHOWN, "among": among}


# `Ana Ruiz <ana@example.com>` as a ticket's requester line shows it (or a mail client), `<ana@...>`, `mailto:ana@...`
_NAMED_ADDRESS = re.compile(r"^(?:[^<>]*<\s*)?(?:mailto:)?\s*([^<>\s]+?)\s*>?$", re.IGNORECASE)


def searched_address(q: str) -> str | None:
    """The requester address a search is for, lower-cased: the query itself, or the address in a pasted
    `Name <address>` or `mailto:` link; None when the query is words."""
    found = _NAMED_ADDRESS.match(q.strip())
    email = found.group(1).lower() if found else ""
    return email if email_ok(email) else None


def _user_error(refused: Refused) -> UserError:
    errors = {name: messages for name, messages in refused.errors.items() if name in FIELDS}
    if "cursor" in refused.errors:
        return UserError("That page of results is no longer there. Search again from the first page.", status=400)
    return UserError("Check what you typed." if errors else (refused.detail or refused.title), errors, 422)


def similar(svc: Portal, session: dict, ticket_id: str) -> list[dict] | None:
    """Resolved tickets most like this one (what was done then): none when search has not indexed the ticket
    yet (404), None when search does not answer (the page says so quietly, and shows the rest)."""
    path = f"/tickets/{path_id(ticket_id)}/similar"
    try:
        items = svc.services.get("search", path, actor(session), limit=SIMILAR + 2).get("items") or []
    except Refused:
        return []
    except Unreachable:
        return None
    # a ticket merged into another is no reference: its resolution only says where its request went
    return [item for item in items if not domain.is_merged(item.get("resolution"))][:SIMILAR]


def grants(session: dict | None) -> list[dict]:
    """The requests this browser may open, newest first."""
    return list(reversed((session or {}).get("tickets") or []))[:GRANTS_LISTED]


def requests_of(svc: Portal, session: dict | None) -> list[dict]:
    """The requester's requests as intake has them (one that intake no longer shows is left out)."""
    found = []
    for grant in grants(session):
        try:
            found.append(handlers.requester_ticket(svc, grant))
        except Refused:
            continue
    return found


def requester_search(svc: Portal, session: dict | None, q: str) -> Found:
    """The requester's own requests matching q, best first: one search per granted ticket, with its own token."""
    errors = query_problems({"q": q})
    if errors:
        raise UserError("Check what you typed.", errors, 422)
    hits = []
    for grant in grants(session):
        try:
            page = svc.services.get("search", "/search", handlers.requester(grant), q=q.strip(), limit=1)
        except Refused as refused:
            raise _user_error(refused) from None
        except Unreachable:
            return Found(unavailable=True)
        hits += [{**item, "snippet": marked(item.get("snippet"))} for item in page.get("items") or []]
    hits.sort(key=lambda item: -float(item.get("score") or 0))
    return Found(hits, len(hits))


def teams(svc: Portal, session: dict, me: dict, chosen: str = "") -> list[dict]:
    """The teams to filter by: every team for an admin, the person's own for an agent (of another team it may read
    only a ticket it holds, which "My tickets" lists); by assignment's names, or ids if it will not say. A team
    `chosen` in the address (a shared link, the next page) is offered too, so that the list shows the filter."""
    own = me.get("teams") or []
    try:
        every = every_team(svc, session)
        offered = every if session.get("role") == "admin" else [team for team in every if team.get("id") in own]
    except (Refused, Unreachable):
        every, offered = [], [{"id": team, "name": team} for team in own]
    if chosen and chosen not in {team.get("id") for team in offered}:  # named by assignment, never by the address
        offered.append(next((team for team in every if team.get("id") == chosen), {"id": chosen, "name": UNKNOWN_TEAM}))
    return offered


UNKNOWN_TEAM = "A team not known"  # the address names a team assignment does not list
