"""The agents' console: queues, the ticket as every service sees it, and the actions an agent takes.

Every call carries a token for the signed-in agent or admin, so each service applies its own rules;
the console only hides the controls a person has no right to, and shows a refusal's reason as it is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from services.portal import attachments, domain
from services.portal.client import Actor, Refused, Unreachable, path_id
from services.portal.handlers import Portal, UserError
from shared.clock import now
from shared.events import PRIORITIES
from shared.schemas import files_sent

log = logging.getLogger(__name__)

QUEUE_LIMIT = 200  # one page per queue: the count shows "200+" past it
CLOCKS_AT_ONCE = 50  # ticket ids in one call for sla's clocks (with_deadlines)
# what a queue's row shows (templates/console/_queue.html): assignment leaves each ticket's notes and history unread
QUEUE_FIELDS = "ticket_id,number,subject,priority,status,team,agent_id,sla,first_response_at"
QUERY_NAMES = {"agent": "agent_id", "in_team": "team"}  # a queue filter -> assignment's `GET /queue` (`team` in the
# page's address names the team a ticket was handed on to)
FILTER_NAMES = {asked: name for name, asked in QUERY_NAMES.items()}  # assignment's name of a filter -> the page's
VIEWS = {  # queue -> (title, query); "led" is for team leads, "all" for admins
    "mine": ("My tickets", lambda me: {"agent_id": me}),
    "team": ("My teams' unassigned", lambda me: {"unassigned": "true"}),
    # assignment gives an agent every open ticket of its teams and its own, whoever has them
    "led": ("My teams' open tickets", lambda me: {}),
    "all": ("Every open ticket", lambda me: {}),
}
KEPT_MAIL = ("kept", "ignored")  # outcomes of mail about a ticket that is not in its thread
ACTIONS = {  # action -> (path under /tickets/{id}, fields of the form it takes)
    "claim": ("claim", ()),
    "reply": ("replies", ("body", "status")),
    "note": ("notes", ("body",)),
    "status": ("status", ("status",)),
    "resolve": ("resolve", ("resolution",)),
    "assign": ("assign", ("agent_id",)),
    "transfer": ("assign", ("team",)),
    "priority": ("priority", ("priority",)),
    "reopen": ("reopen", ("reason",)),  # intake's: a resolved ticket reopens there (its ticket.reopened)
    "merge": ("resolve", ("into",)),  # a note on the request kept, then a resolve of this one (`merge`)
}
LEAD_ACTIONS = {"assign", "transfer", "priority"}
INTAKE_ACTIONS = {"reopen"}


class ChangedMeanwhile(Exception):
    """The ticket changed since the agent opened it: ask before sending onto it."""

    def __init__(self, changes: list[str]) -> None:
        super().__init__("; ".join(changes))
        self.changes = changes


NAMES_KEPT = 60.0  # seconds an api process keeps agents', teams' and topics' names (a new name shows after)


def agent_names(svc: Portal, session: dict, fresh: bool = False) -> dict[str, str]:
    """Agent id -> name, for pages that would show ids (the queue's Agent column, who has a ticket, what others did,
    notes from before assignment kept `by_name`). One `GET /agents` a minute per process (`fresh`: now); ids when
    it fails."""
    return _kept_names(svc, actor(session), "agents", fresh=fresh)


def team_names(svc: Portal, session: dict, fresh: bool = False) -> dict[str, str]:
    """Team id -> name, for pages that would show ids (a ticket's team, the queue's Team column, search results,
    an agent's teams). One `GET /teams` a minute per process (`fresh`: now); ids when it fails."""
    return _kept_names(svc, actor(session), "teams", fresh=fresh)


def topic_names(svc: Portal, session: dict, fresh: bool = False) -> dict[str, str]:
    """Help topic id -> name (retired ones too), for a ticket's page. One `GET /topics` of intake a minute per
    process (`fresh`: now); ids when it fails."""
    return _kept_names(svc, actor(session), "topics", "intake", fresh=fresh, include_retired="true")


def forget_names(svc: Portal, what: str) -> None:
    """After a team or topic (`what`: "teams", "topics") is added or renamed here: the next page asks again
    (other processes within NAMES_KEPT)."""
    svc.kept.pop(f"{what}_names", None)


def names_asked_at(svc: Portal, what: str) -> float:
    """When this process last asked for the names of `what` (time.monotonic(); answered or not)."""
    return svc.kept.get(f"{what}_asked", float("-inf"))


def fresh_team_names(svc: Portal, who: Actor) -> dict[str, str]:
    """team_names asked now, for a reader known by its token's actor: the reports, whose tables (and CSV files, kept
    and passed on) must not carry a team's old name for a minute after a rename in another process."""
    return _kept_names(svc, who, "teams", fresh=True)


def _kept_names(
    svc: Portal, who: Actor, what: str, service: str = "assignment", fresh: bool = False, **query
) -> dict[str, str]:
    at, names = svc.kept.get(f"{what}_names", (-NAMES_KEPT, {}))
    if time.monotonic() - at < NAMES_KEPT and not fresh:
        return names
    svc.kept[f"{what}_asked"] = time.monotonic()
    try:
        items = svc.services.get(service, f"/{what}", who, **query)["items"]
    except (Refused, Unreachable) as exc:
        log.warning("%s' names not known (ids shown): %s", what, exc)
        return names
    return _keep_names(svc, what, items)


def _keep_names(svc: Portal, what: str, items: list[dict]) -> dict[str, str]:
    names = {item["id"]: item.get("name") or item["id"] for item in items}
    at = time.monotonic()
    svc.kept[f"{what}_names"], svc.kept[f"{what}_asked"] = (at, names), at
    return names


def actor(session: dict) -> Actor:
    return Actor(role=session["role"], sub=session["email"], agent_id=session.get("agent_id"))


def profile(svc: Portal, session: dict) -> dict:
    """The person at the console: name, teams and the teams led (from assignment, for agents)."""
    if not session.get("agent_id"):
        return {"id": None, "name": session["email"], "teams": [], "lead_of": []}
    try:
        return svc.services.get("assignment", f"/agents/{path_id(session['agent_id'])}", actor(session))
    except Refused as refused:  # an account whose agent is not (or no longer) in assignment: 404
        unknown = refused.status == 404
        return {"id": session["agent_id"], "name": session["agent_id"], "teams": [], "lead_of": [], "unknown": unknown}


def set_available(svc: Portal, session: dict, available: bool) -> None:
    """The agent goes away (no new tickets assigned to it) or comes back: its own choice, on its own record."""
    if not session.get("agent_id"):
        raise UserError("Only an agent has an availability.", status=400)
    path = f"/agents/{path_id(session['agent_id'])}"
    try:
        svc.services.call("assignment", "PATCH", path, actor(session), json={"available": available})
    except Refused as refused:
        raise UserError(refused.detail or refused.title, status=refused.status) from None


def queues(
    svc: Portal,
    session: dict,
    view: str,
    filters: dict,
    leads: bool = False,
    cursor: str | None = None,
    start: int | None = 1,
) -> dict:
    """Every queue the person has, each with its count; the tickets of the one asked for, a page of QUEUE_LIMIT
    from `cursor` (assignment's, None: the first page) whose first row is number `start` (None: not known).
    `leads`: an agent who leads one of its teams, who also has every open ticket of its teams (an admin has every
    open ticket)."""
    me = actor(session)
    names = ["mine", "team"] + (["all"] if me.role == "admin" else ["led"] if leads else [])
    if me.role == "admin" and not me.agent_id:
        names.remove("mine")
    view = view if view in names else names[0]
    another = filters.get("agent") not in (None, me.agent_id)  # another agent's tickets asked for
    wide = next((name for name in ("led", "all") if name in names), None)
    if another and view in ("mine", "team") and wide:  # another agent's tickets: in the tab that has them all
        view = wide  # ("My tickets" filtered to Omar said "Nothing here" of a lead handing on Omar's tickets)
    found = {}
    for name in names:  # the other tabs are only counted: their rows' ids alone
        fields = QUEUE_FIELDS if name == view else "ticket_id"
        asked = {QUERY_NAMES.get(key, key): value for key, value in filters.items()}
        query = {**asked, **VIEWS[name][1](me.agent_id), "limit": QUEUE_LIMIT, "fields": fields}  # "mine" stays mine
        if name == view and cursor:
            query["cursor"] = cursor
        mine_not = name == "mine" and another  # another's in "My tickets"
        if mine_not or (query.get("unassigned") and query.get("agent_id")):  # one agent's unassigned: none
            found[name] = {"items": [], "next_cursor": None}  # (assignment refuses the question)
            continue
        found[name] = svc.services.get("assignment", "/queue", me, **query)
    return {
        "view": view,
        "tabs": [
            {
                "name": n,
                "title": _title(n, me),
                "count": _count(found[n], start if n == view and cursor else 1),
                "current": n == view,
            }
            for n in names
        ],  # fmt: skip
        "tickets": with_deadlines(svc, me, found[view]["items"]),
        "next_cursor": found[view].get("next_cursor"),  # past the page's QUEUE_LIMIT rows: a link to the next
    }


def _title(view: str, who: Actor) -> str:
    if view == "team" and not who.agent_id:  # an admin in no team: every team's
        return "Unassigned"
    return VIEWS[view][0]


def with_deadlines(svc: Portal, who: Actor, rows: list[dict]) -> list[dict]:
    """Each row with `deadline` (its soonest running clock's due time) and `breached`, from sla's clocks, and
    the rows soonest deadline first (the rest after, in assignment's order: its own copy of the due times, then
    priority, then age).

    assignment keeps a copy of the due times (sla.deadlines_changed), which orders its queue, a moment behind
    sla's; sla's clocks say besides which target is nearest and whether it has passed, for the page's rows 50 a
    call. Without sla, the rows keep assignment's copy and order."""
    if not rows:
        return rows
    ids = [row["ticket_id"] for row in rows]
    try:  # a query string of 50 ids is some 2 KB: under the request line a server takes (gunicorn's 4 KB)
        found = [
            item
            for start in range(0, len(ids), CLOCKS_AT_ONCE)
            for item in svc.services.get("sla", "/tickets", who, ticket_id=ids[start : start + CLOCKS_AT_ONCE])["items"]
        ]
    except (Refused, Unreachable) as exc:
        log.warning("the queue's deadlines from assignment's copy alone: sla did not answer (%s)", exc)
        return [{**row, **domain.copied_deadline(row)} for row in rows]
    clocks = {item["ticket_id"]: item["clocks"] for item in found}
    at = now()
    due = lambda row: domain.deadline(clocks[row["ticket_id"]], at) if row["ticket_id"] in clocks else None  # noqa: E731
    shown = [{**row, **(due(row) or domain.copied_deadline(row))} for row in rows]
    return sorted(shown, key=lambda row: (row["deadline"] is None, row["deadline"] or ""))  # stable: ties keep order


def _count(page: dict, start: int | None = 1) -> str:
    """A queue's count as its tab shows it, from the page read: "200+" past a page; on a later page (`start`, its
    first row's number; None: not known) the rows before it counted in, "more than 200" when that is not known."""
    if start is None:
        return f"{QUEUE_LIMIT}+"
    shown = start - 1 + len(page["items"])
    return f"{shown}+" if page.get("next_cursor") else str(shown)


def queue_start(text: str) -> int | None:
    """The row number a later page of a queue starts at (for "tickets 201 to 400"): only a count shown, never
    trusted further; None for anything but a later page's start (201, 401...)."""
    if not (text.isascii() and text.isdigit() and len(text) < 7):
        return None
    start = int(text)
    return start if start > QUEUE_LIMIT and (start - 1) % QUEUE_LIMIT == 0 else None


@dataclass
class TicketPage:
    view: domain.TicketView
    timeline: list[dict]
    clocks: list[dict] | None  # None: sla did not answer
    rights: set[str]
    agents: list[dict]
    teams: list[dict]
    mail: list[dict]  # mail about the ticket that did not go into the thread (from others, automatic), and why
    others: list[dict] = field(default_factory=list)  # the requester's other tickets this person may read, newest
    open_others: list[dict] = field(default_factory=list)  # those still open, older ones too: what it may merge into
    mails: list[dict] = field(default_factory=list)  # every mail about the ticket, each to download whole


def ticket_page(svc: Portal, session: dict, ticket_id: str, me: dict) -> TicketPage:
    """Everything the ticket page shows; Refused (404) when the person may not read the ticket."""
    who = actor(session)
    view = ticket_view(svc, session, ticket_id)
    timeline = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}/timeline", who, limit=200)["items"]
    rights = rights_on(view.work, who, me)
    agents = teams = []
    if rights & LEAD_ACTIONS:
        everyone = svc.services.get("assignment", "/agents", who)["items"]
        team = (view.work or {}).get("team")  # assignment takes an agent of the ticket's team only
        gone = svc.store.disabled_agent_ids()  # not offered (nobody would work on the ticket): its holder, said
        holder = (view.work or {}).get("agent_id")
        agents = [
            {**agent, "account_gone": gone.get(agent["id"])}  # "disabled" or "deleted"
            for agent in everyone
            if team and team in agent.get("teams", []) and (agent["id"] not in gone or agent["id"] == holder)
        ]
        teams = domain.staffed(every_team(svc, session), everyone)
    mail = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}/mail", who)["items"]
    kept = [m for m in mail if m["outcome"] in KEPT_MAIL]
    notes = (view.work or {}).get("notes") or []
    names = agent_names(svc, session) if any(not note.get("by_name") for note in notes) else None
    timeline = domain.timeline_with_files_and_mail(timeline, view.attachments, kept, notes, names)
    others = requesters_other_tickets(svc, who, view.ticket)
    open_others = [  # the requests a merge may keep: one whose address is not confirmed is marked (merge_problem)
        other | {"unproved": not address_proven(svc, who, other)}
        for other in others
        if other.get("status") not in ("resolved", "closed")
    ]
    # each mail's whole text for whoever reads the ticket (links hidden); its bytes, which hold the requester's
    # links as they came, for admins only (intake's rule): the template offers those to admins
    whole = [m for m in mail if m.get("whole")]
    clocks = sla_clocks(svc, who, ticket_id)
    shown = others[:OTHERS_SHOWN]
    return TicketPage(view, timeline, clocks, rights, agents, teams, kept, shown, open_others, whole)


def address_proven(svc: Portal, who: Actor, ticket: dict) -> bool:
    """Whether the request's address is its owner's (domain.unproved): not from the web form, a link emailed to it
    used, or a reply by mail from it in its thread. A list's item has no thread: the ticket is read whole then
    (those from the form not confirmed yet only), and a reply found is recorded as the requester's pages record it
    (a tester's console said "not confirmed", and refused the merge, for an address that had answered twice)."""
    if not domain.unproved(ticket, svc.store.confirmed(ticket["id"]) is not None):
        return True
    if "thread" in ticket:  # read whole already: its thread said
        return False
    try:
        whole = svc.services.get("intake", f"/tickets/{path_id(ticket['id'])}", who)
    except (Refused, Unreachable):  # not read: not proven, as before
        return False
    if domain.unproved(whole, confirmed=False):
        return False
    svc.store.confirm_address(ticket["id"], (ticket.get("requester") or {}).get("email") or "", now())
    return True


OTHERS_SHOWN = 5  # the newest, beside the ticket
OTHERS_READ = 25  # the newest read, so that an open one older than those shown can still be merged into


def requesters_other_tickets(svc: Portal, who: Actor, ticket: dict) -> list[dict]:
    """The requester's newest other tickets (OTHERS_READ), as intake lists them for this person (its rights: an agent
    reads its teams' and its own), for the ticket page's side and its merge; none when intake does not answer."""
    email = (ticket.get("requester") or {}).get("email")
    if not email:
        return []
    try:
        found = svc.services.get("intake", "/tickets", who, requester_email=email, limit=OTHERS_READ + 1)["items"]
    except (Refused, Unreachable):
        return []
    return [item for item in found if item.get("id") != ticket.get("id")][:OTHERS_READ]


def ticket_view(svc: Portal, session: dict, ticket_id: str) -> domain.TicketView:
    who = actor(session)
    ticket = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", who)
    try:
        work = svc.services.get("assignment", f"/tickets/{path_id(ticket_id)}", who)
    except Refused as refused:
        # a 404 for a ticket assignment routed (intake has its team) is one out of this agent's sight since (a
        # transfer intake learns a moment later); for one it has not routed, assignment has not seen it yet
        if refused.status != 404 or ticket.get("team"):
            raise
        work = {}
    return domain.TicketView(ticket, work, attachments.listed(svc.services, who, ticket_id))


def may_read(svc: Portal, session: dict, ticket_id: str) -> bool:
    """Whether the person still reads the ticket in assignment (where a transfer shows at once; intake learns
    it from the event a moment later)."""
    try:
        svc.services.get("assignment", f"/tickets/{path_id(ticket_id)}", actor(session))
    except Refused as refused:
        if refused.status in (403, 404):
            return False
        raise
    return True


def sla_clocks(svc: Portal, who: Actor, ticket_id: str) -> list[dict] | None:
    """The ticket's clocks in words; none until sla has started them (it knows no such ticket yet); None when sla
    does not answer, or refuses otherwise: the page says so, and an open page keeps the clocks it shows."""
    try:
        clocks = svc.services.get("sla", f"/tickets/{path_id(ticket_id)}", who).get("clocks") or {}
    except Refused as refused:
        return [] if refused.status == 404 else None
    except Unreachable:
        return None
    return [
        {
            "name": domain.CLOCK_NAMES.get(name, name),
            "state": clock.get("state"),
            "look": domain.clock_look(clock),
            "state_words": domain.clock_state_words(clock),
            "due_at": clock.get("due_at"),
            "met_at": clock.get("met_at") if clock.get("state") == "met" else None,
            # a clock still counting says its due time, which is its breach's; one met, stopped or paused, when
            "breached_at": clock.get("breached_at") if not domain.counting(clock) else None,
            "remaining": domain.remaining_words(clock.get("remaining_seconds"))
            if clock.get("state") in ("running", "paused")
            else "",
            "business": domain.counts_business_time(clock, now()),
        }
        for name, clock in clocks.items()
        if clock
    ]


def rights_on(work: dict, who: Actor, me: dict) -> set[str]:
    """The actions to offer (the services decide; this only spares people buttons that cannot work)."""
    if work.get("status") in (None, "resolved", "closed"):  # a resolved one: whoever reads it reopens it (intake)
        return {"note", "reopen"} if work.get("status") == "resolved" else set()
    mine = who.agent_id is not None and work.get("agent_id") == who.agent_id
    rights = {"note"}  # whoever reads it: the holder, its team's agents, admins
    if who.role == "agent" and work.get("agent_id") is None:  # another agent's ticket: a claim is refused (409)
        rights.add("claim")
    if mine or who.role == "admin":
        rights |= {"reply", "status", "resolve"}
    if who.role == "admin" or work.get("team") in (me.get("lead_of") or []):
        rights |= LEAD_ACTIONS
    return rights


def act(
    svc: Portal,
    session: dict,
    ticket_id: str,
    action: str,
    form: dict,
    request_id: str | None,
    files: list = (),
    merged_into: int | None = None,
) -> dict:
    """Take an action on the ticket: assignment's answer (the ticket as it is now); UserError with the service's
    reason when it refuses. `files`: a reply's chosen files (attachments.Chosen), named in its event; the caller
    attaches them once the reply is sent (`attach_to_reply`). `merged_into`: a merge's resolve (`merge`).

    A reply or a resolve onto a ticket that others changed since the agent saw it (`seen`, what the page showed)
    is held back, and the page shows the changes with the same form: sent from there ("anyway"), it goes unless
    the ticket changed again since (a requester's message the agent has not read is never answered unawares).
    """
    if action not in ACTIONS:
        raise UserError(f"There is no action {action!r}.", status=404)
    if action == "merge":
        return merge(svc, session, ticket_id, form, request_id)
    path, names = ACTIONS[action]
    body = {name: form[name].strip() for name in names if (form.get(name) or "").strip()}
    if action == "reply" and files:  # files without words (the guide asked for): a reply that names them
        body["files"] = attachments.named(files)
        body.setdefault("body", files_sent(body["files"], len(files)))
    if problems := domain.written_problems(action, body):
        raise UserError(next(iter(problems.values()))[0], problems)
    if action == "resolve" and merged_into is not None:
        body["merged_into"] = merged_into
    if action == "status":
        _status_is_theirs(svc, session, ticket_id)
    if action == "assign" and (why := svc.store.disabled_agent_ids().get(body.get("agent_id"))):
        said = f"Their account is {why} (they left, or may not sign in): choose another agent."
        raise UserError(said, {"agent_id": [said]}, 409)
    if action == "transfer" and body.get("team"):  # the form has its own team chosen: sent as is, nothing to do
        _not_there_yet(svc, session, ticket_id, body["team"])
    if action == "transfer" and (note := (form.get("note") or "").strip()):  # why, for the team it goes to
        if problems := domain.written_problems("note", {"body": note}):
            raise UserError(next(iter(problems.values()))[0], {"note": problems["body"]})
        act(svc, session, ticket_id, "note", {"body": note}, request_id)  # first: after it, it may be out of sight
    if action in ("reply", "resolve"):
        _check_unchanged(svc, session, ticket_id, form.get("seen"))
    try:
        service = "intake" if action in INTAKE_ACTIONS else "assignment"
        answer = svc.services.post(
            service, f"/tickets/{path_id(ticket_id)}/{path}", actor(session), body, request_id=request_id
        )
    except Refused as refused:
        errors = {name.split(".")[-1]: messages for name, messages in refused.errors.items()}
        said = refused.detail or refused.title
        if service == "assignment" and refused.status == 404:  # its words name the ticket by its internal id
            said = OUT_OF_SIGHT
        if action == "claim" and refused.status == 409:  # a claim race lost: the winner by name, not by id
            said = _claimed_by(svc, session, ticket_id) or said
        if action in ("status", "priority") and refused.status == 409:  # "already in_progress": the words shown
            said = _status_words(said)
        raise UserError(said, errors, refused.status) from None
    return answer if isinstance(answer, dict) else {}


def merge(svc: Portal, session: dict, ticket_id: str, form: dict, request_id: str | None) -> dict:
    """Merge the ticket into another open request of its requester (`into`, its id), the one kept: that one gets
    this one's words as an internal note (`domain.merged_note`), then this one is resolved with words that send its
    requester there (`domain.merged_resolution`, and `merged_into`: its email says so). Whoever may resolve this
    ticket and read that one; held back, as a resolve is, when the ticket changed since the page showed it.

    Everything is checked before anything is written: this ticket's state and the person's right to resolve it, and
    the kept request as it is now (resolved or closed by either service: intake learns a resolve a moment later,
    and assignment a close). The two tickets are held for this merge meanwhile (`start_merge`), so that two merges
    of the same two, into each other (which would leave neither open) or a double click, go one after the other:
    the second finds the first done. A note already there from an earlier try, the same words, is not added again,
    and a resolve that fails after the note says that the note is there. UserError next to the choice when the
    request to keep will not do."""
    into = (form.get("into") or "").strip()
    if not into:
        said = "Choose the request to keep."
        raise UserError(said, {"into": [said]})
    key = svc.store.start_merge((ticket_id, into), now(), MERGE_HELD_FOR)
    if key is None:
        said = "These two requests are being merged just now, by you or someone else: reload the page to see how."
        raise UserError(said, {"into": [said]}, 409)
    try:
        return _merge(svc, session, ticket_id, into, form, request_id)
    finally:
        svc.store.end_merge(key)


MERGE_HELD_FOR = timedelta(minutes=1)  # a merge's hold on its two tickets, once its process may have died


def _merge(svc: Portal, session: dict, ticket_id: str, into: str, form: dict, request_id: str | None) -> dict:
    who = actor(session)
    view = ticket_view(svc, session, ticket_id)
    if "resolve" not in rights_on(view.work, who, profile(svc, session)):
        status = view.work.get("status")
        if status in ("resolved", "closed"):
            raise UserError(f"It is {status} already: there is nothing to merge.", status=409)
        raise UserError("Only its agent or an admin merges it, as only they resolve it.", status=403)
    try:
        other = svc.services.get("intake", f"/tickets/{path_id(into)}", who)
        kept = svc.services.get("assignment", f"/tickets/{path_id(into)}", who)  # the status as it is now
    except Refused as refused:
        if refused.status not in (400, 403, 404):
            raise
        said = "That request is not one you can add to: choose another."
        raise UserError(said, {"into": [said]}, 422) from None
    other = domain.kept_now(other, kept.get("status"))
    other_unproved = not address_proven(svc, who, other)
    if problem := domain.merge_problem(view.ticket, other, other_unproved):
        raise UserError(problem, {"into": [problem]}, 409)
    _check_unchanged(svc, session, ticket_id, form.get("seen"))
    note = domain.merged_note(view.ticket, view.attachments)
    if not any((earlier.get("body") or "").strip() == note.strip() for earlier in kept.get("notes") or []):
        act(svc, session, other["id"], "note", {"body": note}, request_id)  # words since an earlier merge: added
    # its writer reads the resolution: the kept request's subject only for one whose address is the requester's
    proved = address_proven(svc, who, view.ticket)
    resolution = {"resolution": domain.merged_resolution(other, proved)}
    try:
        return act(svc, session, ticket_id, "resolve", resolution, request_id, merged_into=other["number"])
    except UserError as exc:
        said = f"#{other['number']} has this one's words as a note, but this one was not merged: {exc.message}"
        raise UserError(said, {}, exc.status) from None


# assignment's 404 for a ticket the person saw a moment ago: it answers so for one the agent may not read now
OUT_OF_SIGHT = "It is out of your sight now: handed to a team you are not in, or you are no longer in its team."


def _status_words(said: str) -> str:
    """assignment's "The ticket is already in_progress." in words: "The ticket is already in progress."."""
    for status in ("in_progress", "waiting_on_requester"):
        said = said.replace(status, domain.AGENT_STATUS[status].lower())
    return said


def _claimed_by(svc: Portal, session: dict, ticket_id: str) -> str | None:
    """Who has the ticket another claimed first, in words; None when it cannot be said."""
    try:
        work = _work_of(svc, session, ticket_id)
    except (UserError, Unreachable):
        return None
    holder = work.get("agent_id")
    if not holder or holder == session.get("agent_id") or work.get("status") in ("resolved", "closed"):
        return None  # refused for another reason: assignment's words
    return f"{agent_names(svc, session).get(holder) or holder} has this ticket."


REPLY_REACHES_INTAKE = 8.0  # seconds a reply's files wait for intake to learn the reply (its event): a moment, mostly
REPLY_FIRST_LOOK, REPLY_LOOKS_MOST = 0.1, 1.0  # seconds between two looks: doubled each time, up to the most


def attach_to_reply(
    svc: Portal, session: dict, ticket_id: str, reply_id: str | None, files: list, request_id: str | None
) -> list[dict]:
    """Attach the agent's files to its reply, just sent: intake takes files for a message of the ticket's thread,
    which has the reply once intake has its `ticket.replied` (a moment: it waits for it, REPLY_REACHES_INTAKE at
    most, looking less often as it waits). The reply's id is the key: files sent for it twice are stored once.
    UserError when they are not attached: at once when intake refuses (the ticket closed, no longer the agent's to
    read), after the wait when the reply has not reached it; an intake that does not answer is asked again."""
    again = "Attach them with another reply."
    if not reply_id:  # assignment's answer always has it; a proxy that ate it is said, not guessed around
        raise UserError(f"the reply's id was not known. {again}", {"files": [again]}, 502)
    who, deadline, pause = actor(session), time.monotonic() + REPLY_REACHES_INTAKE, REPLY_FIRST_LOOK
    while True:
        try:
            if _in_thread(svc, who, ticket_id, reply_id):
                return attachments.send(svc.services, who, ticket_id, files, reply_id, reply_id, request_id)
        except Refused as refused:
            said = refused.detail or refused.title
            raise UserError(said, {"files": [said]}, refused.status) from None
        except Unreachable as unreachable:
            log.info("reply %s's files: intake did not answer (%s); asking again", reply_id, unreachable)
        if time.monotonic() + pause > deadline:
            message = f"the reply had not reached the ticket's record yet. {again}"
            raise UserError(message, {"files": [message]}, 503)
        time.sleep(pause)
        pause = min(pause * 2, REPLY_LOOKS_MOST)


def _in_thread(svc: Portal, who: Actor, ticket_id: str, entry_id: str) -> bool:
    thread = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", who).get("thread") or []
    return any(entry.get("id") == entry_id for entry in thread)


BULK_ACTIONS = ("claim", "status", "priority", "transfer", "assign", "resolve")
BULK_MOST = QUEUE_LIMIT  # tickets one bulk action takes: every row a queue page shows
BULK_SECONDS = 20.0  # then the rest are left, said as not tried: a page's request must end (gunicorn's 30 s)


def every_team(svc: Portal, session: dict) -> list[dict]:
    """Every team (a transfer's choices, for admins and leads); their names are kept as `team_names` keeps them."""
    teams = svc.services.get("assignment", "/teams", actor(session))["items"]
    _keep_names(svc, "teams", teams)
    return teams


def bulk(svc: Portal, session: dict, selected: list[str], action: str, form: dict, request_id: str | None) -> dict:
    """One action on each selected ticket of a queue, as if taken on each ticket's page (the same rights, each
    refusal the service's own): {"action", "done": [numbers], "already": [numbers] (a claim of one's own ticket),
    "refused": [{"number", "reason"}], "unanswered": number or None, "not_tried": [numbers]} (no nested arrays:
    the embedded store keeps none). UserError when nothing can be tried (no ticket chosen, no action, the action's
    text empty or too long). A service that does not answer stops it ("unanswered": that ticket may or may not be
    done): the tickets after are "not tried", as are those left after BULK_SECONDS.

    A resolve is not held back by what changed since the queue showed the ticket (the ticket's page asks, the
    queue shows no thread); a requester's message that comes after it reopens the ticket (intake's rule)."""
    rows = domain.ticked_rows(selected)
    errors: dict[str, list[str]] = {}
    if not rows:
        errors["ticket_ids"] = ["Choose the tickets first: tick them in the list."]
    elif len(rows) > BULK_MOST:
        errors["ticket_ids"] = [f"Choose at most {BULK_MOST} tickets at once (you chose {len(rows)})."]
    if action not in BULK_ACTIONS or (action == "claim" and not session.get("agent_id")):
        errors["action"] = ["Choose what to do with them."]
    elif action == "assign" and not (form.get("agent_id") or "").strip():
        errors["action"] = ["Choose the agent to give them to."]
    elif action == "priority" and form.get("priority") not in PRIORITIES:  # a list's value, or a form made by hand
        errors["action"] = ["Choose a priority from the list."]
    elif action == "status" and form.get("status") not in domain.WORKING_STATUSES:
        errors["action"] = ["Choose a status from the list."]
    else:
        path, names = ACTIONS[action]
        errors |= domain.written_problems(action, {name: (form.get(name) or "").strip() for name in names})
    if errors:
        raise UserError("Some answers need another look.", errors)
    fields = {name: form.get(name) or "" for name in ACTIONS[action][1]}  # never a page's `seen`: no hold-back here
    to = {"status": domain.AGENT_STATUS.get(fields.get("status", ""), fields.get("status")),
          "priority": fields.get("priority", "").capitalize(), "transfer": fields.get("team")}.get(action)  # fmt: skip
    if action == "transfer":
        to = _team_name(svc, session, fields.get("team", ""))
    given = _agent_of(svc, session, fields["agent_id"].strip()) if action == "assign" else None
    team_names = _team_names(svc, session) if given else {}  # a refusal names the ticket's team: asked once
    if given:
        to = given["name"]
    outcome: dict = {
        "action": action, "to": to, "done": [], "already": [], "refused": [], "unanswered": None, "not_tried": [],
        "team": fields.get("team") if action == "transfer" else None,  # the queue says if nobody there takes them
        "again": [],  # the boxes of those not done ("<id>:<number>"): the queue shows them ticked, to try again
        "claimed": [],  # a resolve's tickets that waited in the queue: claimed first (resolving is their agent's)
    }  # fmt: skip
    started = time.monotonic()
    for ticket_id, number in rows.items():
        if outcome["unanswered"] or time.monotonic() - started > BULK_SECONDS:
            outcome["not_tried"].append(number)
            outcome["again"].append(f"{ticket_id}:{number}")
            continue
        try:
            if action == "transfer":
                _not_there_yet(svc, session, ticket_id, fields.get("team", ""), to)
            if action == "claim" and _work_of(svc, session, ticket_id).get("agent_id") == session.get("agent_id"):
                outcome["already"].append(number)  # assignment's claim would answer 200: said apart, not as done
                continue
            if action == "assign" and _theirs_already(svc, session, ticket_id, given, team_names):
                outcome["already"].append(number)
                continue
            if action == "resolve" and _unassigned(svc, session, ticket_id):
                # a ticket is resolved by its agent: one waiting in the queue is the resolver's first (as a claim)
                act(svc, session, ticket_id, "claim", {}, request_id)
                outcome["claimed"].append(number)
            act(svc, session, ticket_id, action, fields, request_id)
        except UserError as exc:
            details = [m for messages in exc.errors.values() for m in messages if m != exc.message]
            outcome["refused"].append({"number": number, "reason": " ".join([exc.message, *details])})
            outcome["again"].append(f"{ticket_id}:{number}")
        except Unreachable as exc:  # maybe done, maybe not: the service did not say
            log.warning("bulk %s stopped at ticket %s: %s", action, ticket_id, exc)
            outcome["unanswered"] = number
            outcome["again"].append(f"{ticket_id}:{number}")
        else:
            outcome["done"].append(number)
    if given and outcome["done"]:  # what the page of one would say after it: past capacity, or away
        outcome["load"] = _load_words(svc, session, given["id"], len(outcome["done"]))
    return outcome


def _load_words(svc: Portal, session: dict, agent_id: str, tickets: int) -> str | None:
    """What a bulk assign of `tickets` tickets left the agent with, in words (domain.assigned_words), from
    assignment's list as it is after it; None when nothing is worth saying or assignment does not answer."""
    try:
        agent = _agent_of(svc, session, agent_id)
    except (UserError, Refused, Unreachable):  # the tickets are given: their outcome is said all the same
        return None
    return domain.assigned_words(agent, session.get("agent_id"), tickets)


def _unassigned(svc: Portal, session: dict, ticket_id: str) -> bool:
    """Whether an agent's resolve finds the ticket in its team's queue (nobody has it): the agent claims it first.
    An admin (an agent too or not) resolves any ticket as it is."""
    agent = actor(session).role == "agent" and session.get("agent_id")
    return bool(agent) and _work_of(svc, session, ticket_id).get("agent_id") is None


def _work_of(svc: Portal, session: dict, ticket_id: str) -> dict:
    """The ticket as assignment has it, read with the person's rights; UserError with assignment's refusal."""
    try:
        return svc.services.get("assignment", f"/tickets/{path_id(ticket_id)}", actor(session))
    except Refused as refused:
        said = OUT_OF_SIGHT if refused.status == 404 else refused.detail or refused.title
        raise UserError(said, status=refused.status) from None


def _agent_of(svc: Portal, session: dict, agent_id: str) -> dict:
    """The agent a bulk assign gives the tickets to, as assignment lists it; UserError next to the choice when it
    does not (gone since the page showed it, or a form sent by hand)."""
    found = next(
        (a for a in svc.services.get("assignment", "/agents", actor(session))["items"] if a["id"] == agent_id), None
    )
    if found is None:
        raise UserError("Some answers need another look.", {"action": ["That agent is not on the help desk now."]})
    return found


def _theirs_already(svc: Portal, session: dict, ticket_id: str, agent: dict, team_names: dict[str, str]) -> bool:
    """Whether the ticket is the agent's already (a bulk assign says so apart, as assignment would answer 200); a
    UserError in the page's words when the ticket's team is not one of the agent's (assignment takes an agent of
    the ticket's team only, and says so with ids)."""
    work = _work_of(svc, session, ticket_id)
    if work.get("agent_id") == agent["id"]:
        return True
    if work.get("team") not in agent.get("teams", []):
        team = team_names.get(work.get("team") or "") or work.get("team") or "no team"
        raise UserError(
            f"It is in {team}, where {agent['name']} is not: move it to one of their teams first.", status=422
        )
    return False


def _not_there_yet(svc: Portal, session: dict, ticket_id: str, team: str, team_name: str | None = None) -> None:
    """A ticket with an agent, already in the team it is moved to, stays as it is (from its page, or ticked with
    others): assignment's transfer picks an agent of the team again, and would take it from the one working on
    it. One waiting in that team's queue goes (the pick tried again, as a transfer does)."""
    work = _work_of(svc, session, ticket_id)
    if work.get("team") == team and work.get("agent_id"):
        name = team_name or _team_name(svc, session, team)
        raise UserError(f"It is in {name} already: it stays with its agent.", status=409)


def _team_name(svc: Portal, session: dict, team_id: str) -> str:
    """The name a team is shown by (its id when assignment does not list it)."""
    return _team_names(svc, session).get(team_id, team_id)


def _team_names(svc: Portal, session: dict) -> dict[str, str]:
    """Every team's name by its id; none when assignment does not answer (each shown by its id)."""
    try:
        return {team["id"]: team["name"] for team in every_team(svc, session)}
    except (Refused, Unreachable):
        return {}


def _status_is_theirs(svc: Portal, session: dict, ticket_id: str) -> None:
    """A status is set by the ticket's agent or an admin, as its page offers it (assignment would let a team's agent
    set an unassigned ticket's, which then reads as if someone were on it): from the page, a form sent by hand,
    or the queue's bulk form."""
    if session.get("role") == "admin":
        return
    work = _work_of(svc, session, ticket_id)
    if not session.get("agent_id") or work.get("agent_id") != session.get("agent_id"):
        if work.get("agent_id"):  # someone else's: claiming it would be refused too
            name = agent_names(svc, session).get(work["agent_id"]) or work["agent_id"]
            raise UserError(f"Only its agent, {name}, or an admin sets its status.", status=403)
        raise UserError("Only its agent or an admin sets its status: claim it first.", status=403)


def _check_unchanged(svc: Portal, session: dict, ticket_id: str, seen_text: str | None) -> None:
    seen = domain.Snapshot.decode(seen_text)
    if seen is None:
        return
    changes = changes_since(svc, session, ticket_view(svc, session, ticket_id), seen)
    if changes:
        raise ChangedMeanwhile(changes)


def changes_since(svc: Portal, session: dict, view: domain.TicketView, seen: domain.Snapshot) -> list[str]:
    """What changed on the ticket since the page's `seen`, as the page says it: the reader known as the histories
    record them (their own doings said as theirs), agents and teams by name."""
    return view.changes_since(seen, actor(session).recorded_as, agent_names(svc, session), team_names(svc, session))


def presence(svc: Portal, session: dict, ticket_id: str, name: str) -> list[str]:
    """This person is on the ticket's page now; the names of the others who are (seen in PRESENCE_SECONDS), each
    once. An admin who is no agent is "an admin", as its notes and the changes it made are named to agents."""
    name = name if session.get("agent_id") else "an admin"  # as `domain.who_words` names one
    svc.store.seen(ticket_id, session["account_id"], name, now())
    since = now() - timedelta(seconds=domain.PRESENCE_SECONDS)
    present = svc.store.present(ticket_id, since)
    return list(dict.fromkeys(p["name"] for p in present if p["account_id"] != session["account_id"]))


def live(svc: Portal, session: dict, ticket_id: str, seen_text: str | None, name: str) -> dict:
    """What the open ticket page refreshes: the conversation, what others changed, who else is looking, and the SLA
    clocks (which follow a change a moment after it, and turn breached while the page is open)."""
    view = ticket_view(svc, session, ticket_id)
    seen = domain.Snapshot.decode(seen_text)
    others = presence(svc, session, ticket_id, name)
    return {
        "view": view,
        "changes": changes_since(svc, session, view, seen) if seen else [],
        "others": others,
        "clocks": sla_clocks(svc, actor(session), ticket_id),
    }
