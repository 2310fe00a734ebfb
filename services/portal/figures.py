"""The reports' tables, from what sla and assignment answered: one Table per chart, the same figures in its
HTML table, its chart and its CSV. Pure.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from services.portal import charts
from services.portal.domain import AGENT_STATUS, CLOCK_NAMES
from shared.events import BY_URGENCY, CLOCKS
from shared.percent import share

UNITS = {"percent": " (%)", "seconds": " (seconds)"}  # the CSV's headings name the unit the cells are in
OPEN_STATUSES = ("new", "assigned", "in_progress", "waiting_on_requester")
NO_TEAM = "Not known"


@dataclass
class Table:
    name: str  # its CSV is /reports/<name>.csv
    title: str
    columns: list[tuple[str, str]]  # (heading, kind): text, count, percent, seconds or date
    rows: list[list] = field(default_factory=list)
    chart: Markup | None = None
    notes: list[str] = field(default_factory=list)


def csv_text(table: Table) -> str:
    """The table as CSV: one heading row, then the figures as numbers (an empty cell for none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([heading + UNITS.get(kind, "") for heading, kind in table.columns])
    kinds = [kind for _, kind in table.columns]
    for row in table.rows:
        writer.writerow(
            ["" if value is None else _cell(value, kinds[i] if i < len(kinds) else "") for i, value in enumerate(row)]
        )
    return out.getvalue()


def _cell(value, kind: str):
    """A number as precise as its figure is (percentages to a tenth, anything else to a thousandth: 70.303, not
    70.30300000000001); text that a spreadsheet would take for a formula is quoted with an apostrophe first."""
    if isinstance(value, float):
        return round(value, 1) if kind == "percent" else round(value, 3)
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def percent(met: int, breached: int) -> float | None:
    return share(met, met + breached)


def summary_table(stats: list[dict]) -> Table:
    columns = [("Priority", "text"), ("Clock", "text"), ("Met", "count"), ("Breached", "count"), ("Open", "count"),
               ("Stopped", "count"), ("Compliance", "percent"), ("Median time", "seconds"),
               ("90th percentile", "seconds")]  # fmt: skip
    rows = [
        [row["priority"].capitalize(), CLOCK_NAMES[row["clock"]], row["met"], row["breached"], row["open"],
         row["stopped"], row["compliance_percent"], row["median_seconds"], row["p90_seconds"]]
        for row in stats
    ]  # fmt: skip
    table = Table("summary", "Compliance per priority and clock", columns, rows)
    table.notes = [
        "The tickets created in this period, each clock as it stands now. Times are business time, counted in the "
        "calendar of the ticket's policy: a ticket answered while the desk is closed took none of it."
    ]
    return table


def weekly_table(weeks: list[tuple[datetime, list[dict]]], clock: str) -> Table:
    """Compliance per week and priority: met / (met + breached) over the clock chosen, or over all three."""
    clocks = (clock,) if clock else CLOCKS
    rows = []
    for start, stats in weeks:
        counts = {p: [0, 0] for p in BY_URGENCY}
        for row in stats:
            if row["clock"] in clocks and row["priority"] in counts:
                counts[row["priority"]][0] += row["met"]
                counts[row["priority"]][1] += row["breached"]
        rows.append([start.date().isoformat(), *(percent(*counts[p]) for p in BY_URGENCY)])
    which = CLOCK_NAMES[clock].lower() if clock else "all clocks"
    table = Table("compliance", f"Compliance per week ({which})",
                  [("Week from", "date"), *((p.capitalize(), "percent") for p in BY_URGENCY)], rows)  # fmt: skip
    series = {p.capitalize(): [row[i + 1] for row in rows] for i, p in enumerate(BY_URGENCY)}
    labels = [f"{start:%-d %b}" for start, _ in weeks]
    table.chart = charts.line_chart(table.title, labels, series, empty="No clock was met or breached in this period.")
    return table


def histogram_table(stats: list[dict], clock: str) -> Table:
    """How long the clock's measured times took, in sla's buckets, per priority and in all."""
    verb = "Answered" if clock == "first_response" else "Resolved"
    name = "first-response" if clock == "first_response" else "resolution"
    by_priority = {row["priority"]: row.get("histogram") or [] for row in stats if row["clock"] == clock}
    bounds = [bucket["up_to_seconds"] for bucket in next(iter(by_priority.values()), [])]
    counts = [[_count(by_priority.get(p), i) for p in BY_URGENCY] for i in range(len(bounds))]
    filled = [i for i, row in enumerate(counts) if sum(row)]
    rows = [[bucket_words(bounds, i), *counts[i], sum(counts[i])] for i in range(filled[-1] + 1)] if filled else []
    title = f"Time to {CLOCK_NAMES[clock].lower()}"
    columns = [(f"{verb} in", "text"), *((p.capitalize(), "count") for p in BY_URGENCY), ("All", "count")]
    table = Table(name, title, columns, rows)
    table.notes = [
        "Business time, counted in the calendar of the ticket's policy: hours the desk is closed count none."
    ]
    bars = [(row[0], row[-1]) for row in rows]
    table.chart = charts.bar_chart(f"{title}: tickets per time taken", bars, empty="No clock finished in this period.")
    return table


def _count(histogram: list[dict] | None, i: int) -> int:
    return histogram[i]["count"] if histogram and i < len(histogram) else 0


def duration_words(seconds: float) -> str:
    """12.5 s, 42 s, 12 min, 2 h 05 min, 3 d 4 h."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    hours = round(seconds / 3600)
    return f"{hours // 24} d {hours % 24} h"


def bucket_words(bounds: list[float | None], i: int) -> str:
    """'up to 1 min', '1 min to 5 min', ..., 'over 7 days'."""
    if bounds[i] is None:
        return f"over {span_words(bounds[i - 1])}" if i else "any time"
    return f"up to {span_words(bounds[i])}" if i == 0 else f"{span_words(bounds[i - 1])} to {span_words(bounds[i])}"


def span_words(seconds: float) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds:g} s"


def breaches_table(breaches: list[dict], team_of: dict[str, str], names: dict[str, str] | None = None) -> Table:
    """Breaches per team (the ticket's team now) and clock, most first; `names`: the teams' names by id."""
    counted = Counter((team_of.get(b["ticket_id"]) or NO_TEAM, b["clock"]) for b in breaches)
    teams = sorted({team for team, _ in counted}, key=lambda t: (-sum(counted[t, c] for c in CLOCKS), t))
    rows = [
        [_named(team, names), *(counted[team, c] for c in CLOCKS), sum(counted[team, c] for c in CLOCKS)]
        for team in teams
    ]
    columns = [("Team", "text"), *((CLOCK_NAMES[c], "count") for c in CLOCKS), ("All", "count")]
    table = Table("breaches", "SLA breaches per team", columns, rows)
    table.notes = [
        "The breaches that happened in this period, whenever their ticket was created: a ticket created late one "
        "day may breach the next, and count there, while compliance above counts it on the day it was created."
    ]
    table.chart = charts.bar_chart(table.title, [(row[0], row[-1]) for row in rows], empty="No breach in this period.")
    return table


def backlog_table(tickets: list[dict], names: dict[str, str] | None = None, teams: Iterable[str] = ()) -> Table:
    """Open tickets now, per team and status, and how many of them no agent has; `names`: the teams' by id;
    `teams`: those listed even with none open (a new team: it is there, with nothing to do)."""
    counted = Counter((t.get("team") or NO_TEAM, t.get("status")) for t in tickets)
    waiting = Counter(t.get("team") or NO_TEAM for t in tickets if not t.get("agent_id"))
    teams = sorted({team for team, _ in counted} | set(teams))
    rows = [[_named(team, names), *(counted[team, s] for s in OPEN_STATUSES), waiting[team],
             sum(counted[team, s] for s in OPEN_STATUSES)] for team in teams]  # fmt: skip
    columns = [("Team", "text"), *((AGENT_STATUS[s], "count") for s in OPEN_STATUSES),
               ("Of them, no agent yet", "count"), ("All open", "count")]  # fmt: skip
    table = Table("backlog", "Open tickets per team", columns, rows)
    table.chart = charts.bar_chart(table.title, [(row[0], row[-1]) for row in rows], empty="No open ticket.")
    return table


def oldest_waiting(tickets: list[dict]) -> dict | None:
    """The unassigned open ticket that has waited longest."""
    waiting = [t for t in tickets if not t.get("agent_id") and t.get("created_at")]
    return min(waiting, key=lambda t: t["created_at"], default=None)


def capacity_table(agents: list[dict], names: dict[str, str] | None = None) -> Table:
    """Agents whose open tickets reach their capacity: auto-assignment passes them by; `names`: the teams'."""
    full = [a for a in agents if a.get("open_tickets", 0) >= a.get("capacity", 1)]
    rows = [[a["name"], a["id"], "; ".join(_named(team, names) for team in a.get("teams", [])), a["open_tickets"],
             a["capacity"], "yes" if a.get("available") else "no"] for a in full]  # fmt: skip
    columns = [("Agent", "text"), ("Agent id", "text"), ("Teams", "text"), ("Open tickets", "count"),
               ("Capacity", "count"), ("Available", "text")]  # fmt: skip
    return Table("capacity", "Agents at capacity", columns, rows)


def satisfaction_table(ratings: list[dict], names: dict[str, str] | None = None) -> Table:
    """The requesters' ratings of resolved tickets per team (the ticket's team when it was rated), and all."""
    good = Counter(r.get("team") or NO_TEAM for r in ratings if r.get("rating") == "good")
    bad = Counter(r.get("team") or NO_TEAM for r in ratings if r.get("rating") == "bad")
    teams = sorted(set(good) | set(bad), key=lambda t: (-(good[t] + bad[t]), t))
    rows = [
        [_named(team, names), good[team], bad[team], good[team] + bad[team], percent(good[team], bad[team])]
        for team in teams
    ]
    if len(rows) > 1:
        total_good, total_bad = sum(good.values()), sum(bad.values())
        rows.append(["All teams", total_good, total_bad, total_good + total_bad, percent(total_good, total_bad)])
    columns = [("Team", "text"), ("Good", "count"), ("Bad", "count"), ("Rated", "count"), ("Satisfied", "percent")]
    table = Table("satisfaction", "Requesters' satisfaction per team", columns, rows)
    table.chart = charts.bar_chart(
        table.title,
        [(row[0], row[-1]) for row in rows],
        unit="%",
        empty="No request was rated in this period.",
        top=100,
    )
    return table


def _named(team: str, names: dict[str, str] | None) -> str:
    """A team's name for a table (its id when the name is not known; NO_TEAM as it is)."""
    return (names or {}).get(team) or team
