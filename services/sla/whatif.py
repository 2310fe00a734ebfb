"""What a draft policy would have done: each clock replayed from the changes it took. No I/O.

A clock's `history` lists every change it took, with the moment it took effect (see domain.py): the
policy of a priority from then on (at its start, at each priority change) or a new state (running,
paused, met, stopped). Replayed through the same Clock methods under the same policies and calendars,
it gives back the same clock. Under a draft, the same history runs with the draft in place of its
priority's policy: time under that priority counts towards the draft's target in the draft's
calendar, elapsed time is kept across a priority change (as live clocks do), and time under another
priority keeps that one's policy.

Under the current policies, a clock that only ever ran under their current versions is what it is:
its stored figures are the replay's, and they are what GET /stats counts. A clock that ran under an
older version is replayed under the current one.

Two things the live clocks get from elsewhere are done here as they happen there: the store keeps
datetimes to the millisecond (an event is compared with the deadline as stored), and the deadline
timer marks a running clock breached once its deadline has passed (here: by `until`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.sla import reports
from services.sla.business_time import Calendar
from services.sla.distribution import with_tallied_histograms
from services.sla.domain import Clock, Policy
from shared.events import CLOCKS

ALWAYS_OPEN = Calendar.always()
FIGURES = ("kind", "state", "breached_at", "elapsed", "due_at")  # of a clock, what a what-if answers from
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


# --- a clock's history as steps, and its replay ---------------------------------------------------------


def steps_of(history: Iterable[Mapping]) -> list[list]:
    """A clock's history as a replay reads it: [epoch ms, "priority", priority, version] or [epoch ms, "to", state].

    In milliseconds, as the store keeps datetimes: a replay compares what the live clocks compared.
    """
    return [
        [ms(step["at"]), "to", step["to"]]
        if "to" in step
        else [ms(step["at"]), "priority", step["priority"], step.get("version")]
        for step in history
    ]


def ms(moment: datetime | None) -> int | None:
    """Milliseconds since the epoch (the microseconds cut, as BSON does)."""
    return None if moment is None else (moment - EPOCH) // MILLISECOND


def moment(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else EPOCH + milliseconds * MILLISECOND


def replayable(clock: Mapping) -> bool:
    """Whether a clock has its whole history (`steps`): it begins with the policy it started under."""
    steps = clock.get("steps")
    return bool(steps) and steps[0][1] == "priority"


def replay(clock: Mapping, policies: Mapping[str, Policy], calendars: Mapping[str, Calendar], until: datetime) -> Clock:
    """The clock that a clock's `steps` make under `policies`; running past its deadline by `until`: breached."""
    first, *rest = clock["steps"]
    replayed = Clock.under(clock["kind"], clock["instance"], policies[first[2]], EPOCH + first[0] * MILLISECOND)
    for step in rest:
        at = EPOCH + step[0] * MILLISECOND
        calendar = calendars.get(replayed.calendar, ALWAYS_OPEN)  # one no longer known counts as 24x7, as live
        if step[1] == "priority":
            policy = policies[step[2]]
            replayed.retarget(policy, at, calendar, calendars.get(policy.calendar, ALWAYS_OPEN))
        elif step[2] == "running":
            replayed.run(at, calendar)
        else:
            replayed.halt(step[2], at, calendar)
        if replayed.due_at is not None and replayed.due_at.microsecond % 1000:
            replayed.due_at = replayed.due_at.replace(microsecond=replayed.due_at.microsecond // 1000 * 1000)
    if replayed.running and replayed.breached_at is None and replayed.due_at < until:
        replayed.breached_at = replayed.due_at
    replayed.no_resolution = replayed.state == "stopped" and bool(clock.get("no_resolution"))  # a close still
    return replayed


def figures(clock: Clock | Mapping) -> dict:
    """What /stats reads of a clock (and the outcome it reads there), with its last deadline; times in epoch ms."""
    if isinstance(clock, Clock):
        read = {
            "kind": clock.kind,
            "state": clock.state,
            "breached_at": ms(clock.breached_at),
            "elapsed": clock.elapsed,
            "no_resolution": clock.no_resolution,
        }
        read["due_at"] = ms(clock.due_at)
    else:
        read = {name: clock[name] for name in FIGURES} | {"no_resolution": bool(clock.get("no_resolution"))}
    read["outcome"] = reports.outcome(read)
    return read


# --- the comparison ---------------------------------------------------------------------------------


@dataclass
class Comparison:
    """A priority's tickets replayed so far, under the current policies and under a draft of that priority's."""

    current_policies: Mapping[str, Policy]
    draft: Policy
    calendars: Mapping[str, Calendar]
    until: datetime
    current: list[dict] = field(default_factory=list)  # per ticket, its clocks' figures as reports.stats reads them
    drafted: list[dict] = field(default_factory=list)
    changed: list[tuple[tuple, dict]] = field(default_factory=list)  # (sort key, change)
    skipped: int = 0

    def __post_init__(self) -> None:
        self.priority = self.draft.priority
        self._draft_policies = {**self.current_policies, self.priority: self.draft}
        now, draft = self.current_policies[self.priority], self.draft
        same_calendar = draft.calendar == now.calendar
        # With the same calendar, a longer target only moves deadlines later: it breaches no clock the current
        # one did not (the same history, the same elapsed time), and a shorter one keeps every breach.
        self._keeps = {
            kind: {
                "breached": same_calendar and draft.target_seconds(kind) <= now.target_seconds(kind),
                "not breached": same_calendar and draft.target_seconds(kind) >= now.target_seconds(kind),
            }
            for kind in CLOCKS
        }

    def add(self, ticket: Mapping) -> None:
        """Replay a stored ticket's clocks both ways, or count it skipped when one lacks its history."""
        clocks = ticket.get("clocks") or []
        if not clocks or not all(replayable(clock) for clock in clocks):
            self.skipped += 1
            return
        now_figures, draft_figures = [], []
        for clock in clocks:
            was = self._current(clock)
            would = self._drafted(clock, was)
            now_figures.append(was)
            draft_figures.append(would)
            if was["outcome"] != would["outcome"]:
                key = (clock["steps"][0][0], ticket["_id"], CLOCKS.index(clock["kind"]), clock["instance"])
                self.changed.append((key, _change(ticket["_id"], clock, was, would)))
        self.current.append({"priority": ticket["priority"], "clocks": now_figures})
        self.drafted.append({"priority": ticket["priority"], "clocks": draft_figures})

    def answer(self) -> dict:
        """The priority's rows of /stats both ways, each clock whose outcome changes (oldest first), the counts."""
        return {
            "current": {"items": self._rows(self.current)},
            "draft": {"items": self._rows(self.drafted)},
            "changed": [change for _, change in sorted(self.changed, key=lambda pair: pair[0])],
            "replayed": len(self.current),
            "skipped": self.skipped,
        }

    def _current(self, clock: Mapping) -> dict:
        """As stored when it ran only under the current versions (what /stats counts), else replayed under them."""
        policies = self.current_policies
        if "state" in clock and all(s[3] == policies[s[2]].version for s in clock["steps"] if s[1] == "priority"):
            return figures(clock)
        return figures(replay(clock, policies, self.calendars, self.until))

    def _drafted(self, clock: Mapping, was: dict) -> dict:
        """Replayed under the draft, unless the draft cannot change whether it breached (then as it `was`)."""
        keeps = self._keeps[clock["kind"]]["breached" if was["outcome"] == "breached" else "not breached"]
        if keeps or self.priority not in (step[2] for step in clock["steps"] if step[1] == "priority"):
            return was
        return figures(replay(clock, self._draft_policies, self.calendars, self.until))

    def _rows(self, tickets: list[dict]) -> list[dict]:
        """The priority's rows as GET /stats gives them, histograms included."""
        tallied = reports.tally(tickets)
        rows = with_tallied_histograms(reports.rows(tallied), tallied)
        return [row for row in rows if row["priority"] == self.priority]


def compare(
    tickets: Iterable[Mapping],
    current_policies: Mapping[str, Policy],
    draft: Policy,
    calendars: Mapping[str, Calendar],
    until: datetime,
) -> dict:
    """Stored tickets of the draft's priority (`_id`, `priority`, `clocks`) replayed both ways (`Comparison.answer`).

    Each clock: `kind`, `instance`, `steps` (`steps_of` its history), and, to be taken as stored, `state`,
    `breached_at` and `due_at` (epoch ms) and `elapsed`.
    """
    comparison = Comparison(current_policies, draft, calendars, until)
    for ticket in tickets:
        comparison.add(ticket)
    return comparison.answer()


def _change(ticket_id: str, clock: Mapping, was: dict, would: dict) -> dict:
    def side(figures: dict) -> dict:
        return {
            "outcome": figures["outcome"],
            "due_at": moment(figures["due_at"]),
            "breached_at": moment(figures["breached_at"]),
        }

    return {
        "ticket_id": ticket_id,
        "clock": clock["kind"],
        "instance": clock["instance"],
        "current": side(was),
        "draft": side(would),
    }
