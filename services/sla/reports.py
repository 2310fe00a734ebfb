"""GET /stats from stored clocks: per priority and clock, met and breached counts, compliance, times. No I/O."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

from shared import percent
from shared.events import BY_URGENCY, CLOCKS


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (an observed value), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def _to_the_millisecond(seconds: float | None) -> float | None:
    """Durations as precise as the timestamps they come from: 70.303, not 70.30300000000001."""
    return None if seconds is None else round(seconds, 3)


def outcome(clock: Mapping) -> str:
    """breached (whenever it passed its target), met, open (running or paused) or stopped (ended unanswered).

    A resolution clock stopped by a resolve in time is met. One stopped with no resolution (`no_resolution`: the
    ticket closed before any resolve, or merged into another) resolved nothing, and a response clock stopped by a
    resolve or a close was never answered: neither is met nor breached. (Clocks stored before `no_resolution` count
    met.)
    """
    if clock.get("breached_at") is not None:
        return "breached"
    return "met" if finished(clock) else "open" if clock["state"] in ("running", "paused") else "stopped"


def finished(clock: Mapping) -> bool:
    """Whether the clock has a final time: answered (met, late or not), or resolution stopped by a resolve."""
    if clock["state"] == "met":
        return True
    return clock["state"] == "stopped" and clock["kind"] == "resolution" and not clock.get("no_resolution")


OUTCOMES = ("met", "breached", "open", "stopped")


def stats(tickets: Iterable[Mapping]) -> list[dict]:
    """One row per priority and clock over stored clock documents ({"priority", "clocks": [...]})."""
    return rows(tally(tickets))


def tally(tickets: Iterable[Mapping]) -> dict[tuple[str, str], dict]:
    """Per priority and clock: how many clocks of each outcome, and the finished ones' times (`times`)."""
    tallied = {(p, c): {**dict.fromkeys(OUTCOMES, 0), "times": []} for p in BY_URGENCY for c in CLOCKS}
    for ticket in tickets:
        for clock in ticket.get("clocks", []):
            row = tallied.get((ticket.get("priority"), clock["kind"]))
            if row is None:
                continue
            row[outcome(clock)] += 1
            if finished(clock):
                row["times"].append(float(clock["elapsed"]))
    return tallied


def add(total: dict[tuple[str, str], dict], part: dict[tuple[str, str], dict]) -> None:
    """Another tally's counts and times into `total` (one of `tally`)."""
    for key, row in part.items():
        into = total.get(key)
        if into is None:
            continue
        for name in OUTCOMES:
            into[name] += row[name]
        into["times"] += row["times"]


def rows(tallied: dict[tuple[str, str], dict]) -> list[dict]:
    """The rows of a tally, in priority then clock order."""
    return [_row(priority, clock, dict(row)) for (priority, clock), row in tallied.items()]


def _row(priority: str, clock: str, row: dict) -> dict:
    judged = row["met"] + row["breached"]
    times = row.pop("times")
    return {
        "priority": priority,
        "clock": clock,
        **row,
        "compliance_percent": percent.share(row["met"], judged),
        "median_seconds": _to_the_millisecond(statistics.median(times) if times else None),
        "p90_seconds": _to_the_millisecond(percentile(times, 90)),
        "measured": len(times),
    }
