"""The reports' use cases: SLA compliance and breaches from sla, the backlog and capacity from assignment.

Admins read every team. A team lead reads its teams' part where the services allow it: the backlog, the
agents and the breaches of the teams it leads. sla counts compliance over the whole help desk (it has no
per-team figures), so a lead sees those as an admin does, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from services.portal import figures
from services.portal.client import Actor, Refused, Unreachable
from services.portal.console import actor, fresh_team_names, profile
from services.portal.handlers import Portal
from services.portal.period import Period
from shared.clock import now

PAGE = 200  # the longest page the APIs give
MAX_PAGES = 10  # of breaches, of open tickets: at most 2000 of each are read
MAX_LOOKUPS = 300  # breached tickets whose team is looked up one by one in assignment
# what the backlog and the oldest waiting ticket show (figures.py): assignment leaves notes and history unread
BACKLOG_FIELDS = "ticket_id,number,subject,priority,status,team,agent_id,created_at"
TABLES = ("summary", "compliance", "first-response", "resolution", "breaches", "satisfaction", "backlog", "capacity")
MAX_RATINGS = 10_000  # ratings of a period read from the portal's database


@dataclass(frozen=True)
class Reader:
    actor: Actor
    teams: tuple[str, ...] | None  # the teams it leads; None: every team (an admin)


def reader(svc: Portal, session: dict) -> Reader | None:
    """Who reads the reports; None for an agent who leads no team."""
    if session.get("role") == "admin":
        return Reader(actor(session), None)
    try:
        led = tuple(profile(svc, session).get("lead_of") or ())
    except Unreachable:
        led = ()
    return Reader(actor(session), led) if led else None


class Source:
    """What the services answer for one report, each asked once, when first needed."""

    def __init__(self, svc: Portal, who: Reader, period: Period, clock: str) -> None:
        self.svc, self.who, self.period, self.clock = svc, who, period, clock
        self.notes: dict[str, list[str]] = {}

    def _get(self, service: str, path: str, **query) -> dict:
        return self.svc.services.get(service, path, self.who.actor, **query)

    def _pages(self, service: str, path: str, name: str, of: str = "", **query) -> list[dict]:
        """Up to MAX_PAGES pages; past them a note says so (`of`: whose, as the note names them)."""
        items, cursor = [], None
        for _ in range(MAX_PAGES):
            answer = self._get(service, path, limit=PAGE, cursor=cursor, **query)
            items += answer["items"]
            cursor = answer.get("next_cursor")
            if not cursor:
                return items
        self.notes.setdefault(name, []).append(f"Only the first {len(items)}{of} were read.")
        return items

    @cached_property
    def stats(self) -> list[dict]:
        return self._get("sla", "/stats", **self.period.query())["items"]

    def weeks(self) -> list[tuple]:
        """(week start, /stats of that week) for each week of the period: one call each."""
        weeks = [Period(start, stop, "") for start, stop in self.period.weeks(now())]
        return [(week.since, self._get("sla", "/stats", **week.query())["items"]) for week in weeks]

    @cached_property
    def breaches(self) -> list[dict]:
        return self._pages("sla", "/breaches", "breaches", **self.period.query())

    @cached_property
    def team_names(self) -> dict[str, str]:
        """Team id -> name, for the tables' Team column, as they are now (ids when assignment does not say)."""
        return fresh_team_names(self.svc, self.who.actor)

    def team_of(self, ticket_ids: list[str]) -> dict[str, str]:
        """Each breached ticket's team now (assignment's); unknown past MAX_LOOKUPS or when it refuses."""
        teams = {}
        for ticket_id in sorted(set(ticket_ids))[:MAX_LOOKUPS]:
            try:
                teams[ticket_id] = self._get("assignment", f"/tickets/{ticket_id}").get("team")
            except Refused:
                continue
        if len(set(ticket_ids)) > MAX_LOOKUPS:
            self.notes.setdefault("breaches", []).append(f"Teams were looked up for {MAX_LOOKUPS} tickets only.")
        return teams

    @cached_property
    def ratings(self) -> list[dict]:
        """The requesters' ratings given in the period (a lead: of its teams' tickets), from the portal's own store."""
        found = self.svc.store.ratings_between(self.period.since, self.period.until, MAX_RATINGS)
        if len(found) == MAX_RATINGS:
            self.notes.setdefault("satisfaction", []).append(f"Only the first {MAX_RATINGS} ratings were read.")
        if self.who.teams is not None:
            found = [r for r in found if r.get("team") in self.who.teams]
        return found

    @cached_property
    def open_tickets(self) -> list[dict]:
        """Each team's open tickets read apart (MAX_PAGES each), so that a large team read first never leaves
        another out of the backlog; every team's at once only when assignment does not list its teams."""
        teams = self.who.teams if self.who.teams is not None else tuple(self.team_names)
        if not teams:
            return self._pages("assignment", "/queue", "backlog", fields=BACKLOG_FIELDS)
        names = self.team_names
        pages = (
            self._pages(
                "assignment", "/queue", "backlog", f" of {names.get(team, team)}", team=team, fields=BACKLOG_FIELDS
            )
            for team in teams
        )
        return [ticket for page in pages for ticket in page]

    @cached_property
    def agents(self) -> list[dict]:
        if self.who.teams is None:
            return self._get("assignment", "/agents")["items"]
        found = {a["id"]: a for team in self.who.teams for a in self._get("assignment", "/agents", team=team)["items"]}
        return sorted(found.values(), key=lambda a: a["id"])


def table(source: Source, name: str) -> figures.Table:
    """One of TABLES, with its chart and what the reader should know about its figures."""
    if name == "summary":
        made = figures.summary_table(source.stats)
    elif name == "compliance":
        made = figures.weekly_table(source.weeks(), source.clock)
    elif name in ("first-response", "resolution"):
        made = figures.histogram_table(source.stats, name.replace("-", "_"))
    elif name == "breaches":
        made = _breaches(source)
    elif name == "satisfaction":
        made = figures.satisfaction_table(source.ratings, source.team_names)
        made.notes.append("Requesters rate a request once it is resolved; a rating counts in the period it was given.")
    elif name == "backlog":
        teams = source.who.teams if source.who.teams is not None else source.team_names  # a lead: its own
        made = figures.backlog_table(source.open_tickets, source.team_names, teams)
    else:
        made = figures.capacity_table(source.agents, source.team_names)
    made.notes += source.notes.get(name, [])
    return made


def _breaches(source: Source) -> figures.Table:
    breaches = source.breaches
    team_of = source.team_of([b["ticket_id"] for b in breaches])
    if source.who.teams is not None:  # a lead: its teams' breaches (sla lists those of every team it is in)
        breaches = [b for b in breaches if team_of.get(b["ticket_id"]) in source.who.teams]
    return figures.breaches_table(breaches, team_of, source.team_names)
