"""sla's rules: policies per priority and the clocks of a ticket, driven by its events. No I/O here.

A clock counts business seconds in its calendar: `elapsed` before the current running span plus the
span since `running_since`. Every event carries its occurred_at `at`, and nothing moves backwards: an
event older than the last one of its kind, or than the clock's last change, is ignored (its effect is
lost rather than replayed out of order). A closed ticket's clocks never change again.

Each clock keeps its `history`: every change of state and of policy it took, with the moment it took
effect. Run again through the same methods, it gives back the same clock, or, under other policies,
the clock those would have made (services/sla/whatif.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from services.sla.business_time import Calendar, InvalidFields, add_business_minutes, business_seconds_between
from shared.events import BY_URGENCY, CLOCKS, derived_event_id
from shared.ordering import newer

ALWAYS = "24x7"
DEFAULT_MINUTES = {
    "emergency": (15, 30, 240),
    "high": (60, 120, 480),
    "normal": (240, 480, 1440),
    "low": (480, 960, 4320),
}
DEFAULT_WARN_AT = (80,)
MAX_MINUTES = 10 * 366 * 24 * 60  # ten years: beyond that a target is a typo, and datetimes overflow
PAUSING_STATUSES = ("waiting_on_requester",)
RUNNING_STATUSES = ("new", "assigned", "in_progress")
_MINUTE_FIELDS = tuple(f"{clock}_minutes" for clock in CLOCKS)
_POLICY_FIELDS = (*_MINUTE_FIELDS, "warn_at_percent", "calendar")
NEVER = datetime(9999, 12, 31, tzinfo=UTC)  # the deadline of a target its calendar never reaches
_CALENDAR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# --- policies --------------------------------------------------------------------------------------


class PolicyError(InvalidFields):
    what = "policy"


@dataclass(frozen=True)
class Policy:
    priority: str
    version: int
    first_response_minutes: float
    next_response_minutes: float
    resolution_minutes: float
    warn_at_percent: tuple[int, ...] = DEFAULT_WARN_AT
    calendar: str = ALWAYS

    def target_seconds(self, clock: str) -> float:
        return getattr(self, f"{clock}_minutes") * 60


def default_policies() -> dict[str, Policy]:
    """The default policies (DEFAULT_MINUTES, warning at 80 %, 24x7), each at version 1."""
    return {p: Policy(p, 1, *map(float, DEFAULT_MINUTES[p])) for p in BY_URGENCY}


def validate_policy(raw: object, calendars: Collection[str] | None = None) -> dict:
    """The fields of `Policy` but priority and version, from a PUT body; PolicyError listing every problem.

    With `calendars`, the calendar must also be one of those ids.
    """
    if not isinstance(raw, Mapping):
        raise PolicyError({"_schema": ["Must be an object."]})
    errors = {str(key): ["Unknown field."] for key in raw if key not in _POLICY_FIELDS}
    errors |= {name: ["Missing data for required field."] for name in _POLICY_FIELDS if name not in raw}
    for name in _MINUTE_FIELDS:
        if name in raw and not _valid_minutes(raw[name]):
            errors[name] = [f"Must be a finite number greater than 0 and at most {MAX_MINUTES}."]
    if "warn_at_percent" in raw and (problems := _percent_problems(raw["warn_at_percent"])):
        errors["warn_at_percent"] = problems
    if "calendar" in raw and (problem := _calendar_problem(raw["calendar"], calendars)):
        errors["calendar"] = [problem]
    if errors:
        raise PolicyError(errors)
    minutes = {name: float(raw[name]) for name in _MINUTE_FIELDS}
    return {**minutes, "warn_at_percent": tuple(sorted(raw["warn_at_percent"])), "calendar": raw["calendar"]}


def _valid_minutes(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and 0 < value <= MAX_MINUTES
    except OverflowError:  # an int too big for a float
        return False


def _percent_problems(value: object) -> list[str]:
    if not isinstance(value, list):
        return ["Must be a list of whole percents from 1 to 99."]
    problems = [  # named by the value, as typed: "200" is clearer than its place in the list
        f"{json.dumps(p)[:40]} is not a whole percent from 1 to 99."
        for p in value
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 99
    ]
    if not problems and len(set(value)) < len(value):
        problems.append("Each percent may appear only once.")
    return problems


def valid_calendar_id(value: object) -> bool:
    return isinstance(value, str) and _CALENDAR_ID.fullmatch(value) is not None


def _calendar_problem(value: object, calendars: Collection[str] | None) -> str | None:
    if not valid_calendar_id(value):
        return "Must be a calendar id: letters, digits, '_', '.' or '-', up to 64."
    if calendars is not None and value != ALWAYS and value not in calendars:
        return f"Unknown calendar: {value!r}."
    return None


def why_calendar_stays(calendar_id: str, versions: dict[str, list[dict]]) -> str | None:
    """Why a calendar may not be deleted (None: it may): 24x7 is built in; a calendar any version of a policy ever
    named stays, since clocks under that version count in it and every version is kept to explain its deadlines.
    `versions` maps a priority to its policy's versions (each with `version` and `calendar`)."""
    if calendar_id == ALWAYS:
        return "The 24x7 calendar is built in and cannot be deleted."
    uses = []
    for priority, kept in versions.items():
        if numbers := sorted(v["version"] for v in kept if v.get("calendar") == calendar_id):
            words = "versions" if len(numbers) > 1 else "version"
            uses.append(f"the {priority} priority policy's {words} {', '.join(map(str, numbers))}")
    if uses:
        return (
            f"Not deleted: {calendar_id} is the calendar of {'; '.join(uses)}. A calendar a policy ever used stays, "
            "since the deadlines of its versions are counted in it; a policy changed to another calendar keeps its "
            "earlier versions."
        )
    return None


# --- one clock -------------------------------------------------------------------------------------


@dataclass
class Clock:
    kind: str  # first_response | next_response | resolution
    instance: int  # 0, except next_response: 0, 1, 2... one per requester message awaiting an answer
    target_seconds: float
    policy_version: int
    calendar: str
    warn_at_percent: tuple[int, ...]
    started_at: datetime
    state: str = "running"  # running | paused | met | stopped (`status` adds breached)
    elapsed: float = 0.0  # business seconds before running_since
    running_since: datetime | None = None
    due_at: datetime | None = None  # the deadline of the running span (kept once met or stopped)
    changed_at: datetime | None = None  # its watermark: the moment of its last change
    met_at: datetime | None = None
    stopped_at: datetime | None = None
    breached_at: datetime | None = None  # when it passed its target (sticky)
    # a resolution clock stopped with no resolution: by a close before any resolve (the requester closed it), or by
    # a resolve that merged the ticket into another; the reports count it stopped, not met
    no_resolution: bool = False
    announced: list[str] = field(default_factory=list)  # "warn-80", "breach": each at most once
    # every change it took: {"at", "priority", "version"} a policy from then on, {"at", "to"} a state
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Its fields, the lists copied: what dataclasses.asdict gives (its steps hold only scalars and datetimes)
        at a fiftieth of the cost (asdict deep-copies every value: 160 us a ticket of three clocks, against 3)."""
        doc = {name: getattr(self, name) for name in _CLOCK_FIELDS}
        doc["announced"] = list(self.announced)
        doc["history"] = [dict(step) for step in self.history]
        return doc

    @classmethod
    def under(cls, kind: str, instance: int, policy: Policy, at: datetime) -> Clock:
        """A clock of `kind` under `policy` from `at` on, not yet running."""
        terms = (policy.target_seconds(kind), policy.version, policy.calendar, policy.warn_at_percent)
        return cls(kind, instance, *terms, started_at=at, history=[_policy_step(policy, at)])

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused")

    @property
    def status(self) -> str:
        return "breached" if self.breached_at is not None and self.active else self.state

    def elapsed_at(self, now: datetime, calendar: Calendar) -> float:
        if not self.running:
            return self.elapsed
        return self.elapsed + business_seconds_between(calendar, self.running_since, now)

    def moment_of(self, seconds: float, calendar: Calendar) -> datetime:
        """When the running clock's elapsed time reaches `seconds` (its span's start if it already has).

        NEVER when the calendar does not get there (open a few minutes a year, say).
        """
        short = seconds - self.elapsed
        if short <= 0:
            return self.running_since
        try:
            return add_business_minutes(calendar, self.running_since, short / 60)
        except ValueError:
            return NEVER

    def run(self, at: datetime, calendar: Calendar) -> None:
        self.state, self.running_since, self.changed_at, self.stopped_at = "running", at, at, None
        self.due_at = self.moment_of(self.target_seconds, calendar)
        self.history.append({"at": at, "to": "running"})

    def halt(self, state: str, at: datetime, calendar: Calendar) -> None:
        """End the running span at `at` (paused, met or stopped); met or stopped late, it has breached. Ended before
        a breach the timer announced (the event came late: a backlog, a retry, a broker away longer than the grace),
        it did not breach: the clock says so, and the breach, announced once, is not announced again."""
        if self.running:
            self.elapsed = self.elapsed_at(at, calendar)
            self._not_breached_before(at)
            if self.breached_at is None and at > self.due_at:  # in time on its deadline's very moment
                self.breached_at = self.due_at
        self.state, self.running_since, self.changed_at = state, None, at
        if state == "paused":
            self.due_at = None  # unknown until it resumes
        self.met_at = at if state == "met" else self.met_at
        self.stopped_at = at if state == "stopped" else self.stopped_at
        self.history.append({"at": at, "to": state})

    def retarget(self, policy: Policy, at: datetime, old: Calendar, new: Calendar) -> None:
        """The new policy's target, version and calendar from `at` on, elapsed time kept.

        A running clock already past its deadline at `at` has breached, whatever the new target says. A paused one
        whose time so far is already past the new target breaches at `at` (it would only when it ran again, and a
        ticket is often resolved while it waits on its requester: it would have counted as met).
        """
        if self.running:
            self._not_breached_before(at)
            if self.breached_at is None and at > self.due_at:
                self.breached_at = self.due_at
            self.elapsed, self.running_since = self.elapsed_at(at, old), at
        self.target_seconds, self.policy_version = policy.target_seconds(self.kind), policy.version
        self.calendar, self.warn_at_percent, self.changed_at = policy.calendar, policy.warn_at_percent, at
        if self.running:
            self.due_at = self.moment_of(self.target_seconds, new)
        elif self.state == "paused" and self.breached_at is None and self.elapsed > self.target_seconds:
            self.breached_at = at
        self.history.append(_policy_step(policy, at))

    def _not_breached_before(self, at: datetime) -> None:
        """A running clock's breach the timer stamped after `at`, the moment of an event that changes it: it had not
        breached then. When the clock does pass its deadline later, the timer marks it breached without a second
        sla.breached (at most one a clock instance, contract section 6: it was never marked again, a review's
        find)."""
        if self.breached_at is not None and at <= self.breached_at:  # on its deadline: still in time
            self.breached_at = None  # "breach" stays announced: when it does pass its deadline, it is marked silently

    def policy_at(self, moment: datetime) -> dict | None:
        """The policy step ({"at", "priority", "version"}) in force at `moment`; None on a clock older than steps."""
        steps = [step for step in self.history if "version" in step and step["at"] <= moment]
        return steps[-1] if steps else None

    def thresholds(self, calendar: Calendar) -> list[tuple[str, int | None, datetime]]:
        """(label, percent, moment) of what is still to announce: warnings while running, then the breach."""
        if "breach" in self.announced:  # a breach announced, then taken back by an event in time heard late
            return [(MARK_BREACH, None, self.due_at)] if self.breached_at is None and self.running else []
        if self.breached_at is not None:
            return [("breach", None, self.breached_at)]
        if not self.running:
            return []  # a warning not yet announced when a clock is met or stopped no longer matters
        warnings = [
            (f"warn-{p}", p, self.moment_of(self.target_seconds * p / 100, calendar))
            for p in self.warn_at_percent
            if f"warn-{p}" not in self.announced
        ]
        return [*warnings, ("breach", None, self.due_at)]


_CLOCK_FIELDS = tuple(f.name for f in fields(Clock))


def _policy_step(policy: Policy, at: datetime) -> dict:
    return {"at": at, "priority": policy.priority, "version": policy.version}


# --- a ticket's clocks -----------------------------------------------------------------------------

NO_GRACE = timedelta(0)


MARK_BREACH = "mark-breach"  # a threshold the timer passes silently: the breach of a clock announced before


PASSED = timedelta(milliseconds=1)  # a clock passes its target the first moment after it (the store keeps ms)


def _announce_at(label: str, moment: datetime, grace: timedelta, undecided: bool) -> datetime:
    """When the timer announces a threshold: a warning at its moment; a breach not yet decided (no `breached_at`:
    the clock runs towards its deadline) once its deadline has passed (work done at the deadline's very millisecond
    is in time: contract section 6's "passes its target"), and one already decided (a priority change past the
    target) at once; a breach after `grace`."""
    if label not in ("breach", MARK_BREACH):
        return moment
    return moment + (PASSED if undecided else NO_GRACE) + grace


@dataclass(frozen=True)
class Alert:
    """An sla.warning, sla.breached or sla.deadlines_changed to publish, with its derived, stable event id."""

    type: str
    event_id: str
    at: datetime  # the moment the threshold or target was passed
    data: dict
    correlation_id: str | None = None  # a change's: the event's that caused it (else the ticket's, of its creation)


STATS_WINDOW = timedelta(days=30)  # /stats and the what-if without `since`: the last 30 days
UNANSWERED_KEPT = 20  # requester messages kept while no reply is known (the first after the reply counts)


@dataclass
class TicketClocks:
    """The clocks of one ticket. Each event method returns whether anything changed (to save)."""

    ticket_id: str
    priority: str | None = None
    clocks: list[Clock] = field(default_factory=list)
    closed_at: datetime | None = None
    correlation_id: str | None = None  # of ticket.created: the ticket's alerts carry it on
    deadlines_revision: int = 0  # how many sla.deadlines_changed the ticket has had: the last one's `revision`
    watermarks: dict[str, datetime] = field(default_factory=dict)
    # requester messages heard while no reply was known: the reply they follow may come later (another service's
    # event, a retried delivery), and then starts the next_response they await (at most UNANSWERED_KEPT)
    unanswered: list[datetime] = field(default_factory=list)
    calendars: dict[str, Calendar] = field(default_factory=dict, repr=False, compare=False)  # not stored

    # -- events --

    def created(self, priority: str, at: datetime, policies: Mapping[str, Policy]) -> bool:
        """ticket.created: first_response and resolution start under the priority's current policy."""
        if self.clocks or self.closed_at is not None:
            return False
        self.priority = priority
        for kind in ("first_response", "resolution"):
            self._start(kind, 0, policies[priority], at)
        return True

    def replied(self, at: datetime, policies: Mapping[str, Policy] | None = None) -> bool:
        """ticket.replied (public replies only): meets first_response and the next_response waiting. A requester
        message heard before it but written after it starts the next_response it awaits (it started none: a race
        hunter's and a reviewer's find)."""
        if self.closed_at is not None or not newer(self.watermarks, "reply", at):
            return False
        for clock in self._active("first_response", "next_response"):
            if at >= clock.changed_at:
                clock.halt("met", at, self._calendar(clock.calendar))
        self._answered(at, policies)
        return True

    def message_added(self, at: datetime, policies: Mapping[str, Policy]) -> bool:
        """A requester message after an agent's reply starts a new next_response instance (one at a time). A resolve
        is such a reply: the requester answers its resolution (a ticket resolved with no reply, reopened by the
        requester's answer, had no response clock: an admin tester's find)."""
        replies = [moment for moment in (self.watermarks.get("reply"), self.watermarks.get("resolve")) if moment]
        answered = max(replies) if replies else None
        if self.closed_at is None and answered is None and len(self.unanswered) < UNANSWERED_KEPT:
            self.unanswered.append(at)  # the reply it follows may come later
            return True
        # written before the reply or the resolve heard first: nobody awaits an answer to it now
        if self.closed_at is not None or answered is None or at <= answered:
            return False
        if self._active("next_response"):  # one awaits an answer already; a reply or a resolve written before this
            # message, heard after it, starts the next one from it (it was dropped: a review's find)
            if at in self.unanswered or len(self.unanswered) >= UNANSWERED_KEPT:
                return False
            self.unanswered.append(at)
            return True
        instance = sum(clock.kind == "next_response" for clock in self.clocks)
        self._start("next_response", instance, policies[self.priority], at)
        return True

    def status_changed(self, status: str, at: datetime) -> bool:
        """Waiting on the requester pauses resolution; an open working status resumes it."""
        if self.closed_at is not None or not newer(self.watermarks, "status", at):
            return False
        for clock in self._active("resolution"):
            if at < clock.changed_at:
                continue
            if status in PAUSING_STATUSES and clock.running:
                clock.halt("paused", at, self._calendar(clock.calendar))
            elif status in RUNNING_STATUSES and clock.state == "paused":
                clock.run(at, self._calendar(clock.calendar))
        return True

    def resolved(self, at: datetime, merged: bool = False, policies: Mapping[str, Policy] | None = None) -> bool:
        """Every running or paused clock stops; only resolution resumes, on reopen. `merged`: the resolve merged the
        ticket into another (its resolution is the other's: none here). The resolve answers the requester (see
        message_added), whatever the order it is heard in: a requester's message heard before it but written after
        it starts the next_response it awaits (a review's find, as for a reply)."""
        if self.closed_at is not None:
            return self._resolved_before_closed(at, merged)
        in_order = newer(self.watermarks, "lifecycle", at)
        if in_order:
            for clock in self._active(*CLOCKS):
                if at >= clock.changed_at:
                    clock.halt("stopped", at, self._calendar(clock.calendar))
                    clock.no_resolution = merged and clock.kind == "resolution"
        answered = newer(self.watermarks, "resolve", at)
        return self._answered(at, policies) or in_order or answered

    def _answered(self, at: datetime, policies: Mapping[str, Policy] | None) -> bool:
        """A reply or a resolve at `at` answers the requester's messages kept before it; the first written after it
        starts the next_response it awaits. Whether one started."""
        after, self.unanswered = sorted(moment for moment in self.unanswered if moment > at), []
        return (
            bool(after)
            and policies is not None
            and self.priority is not None
            and self.message_added(after[0], policies)
        )

    def _resolved_before_closed(self, at: datetime, merged: bool) -> bool:
        """A resolve that arrives after the close it came before (two services' events, each in its own order): the
        resolution the close stopped was one after all (its time is the close's, as before either was known)."""
        if merged or at > self.closed_at:
            return False
        changed = False
        for clock in self.clocks:
            if clock.kind == "resolution" and clock.no_resolution and clock.stopped_at == self.closed_at:
                clock.no_resolution, changed = False, True
        return changed

    def reopened(self, at: datetime) -> bool:
        """resolution runs again with its elapsed time kept."""
        if self.closed_at is not None or not newer(self.watermarks, "lifecycle", at):
            return False
        clock = self._latest("resolution")
        if clock and clock.state == "stopped" and at >= clock.changed_at:
            clock.run(at, self._calendar(clock.calendar))
            clock.no_resolution = False  # a merge undone (the requester's reply: not the same request)
        return True

    def closed(self, at: datetime) -> bool:
        """Everything stops for good, whatever arrives afterwards."""
        if self.closed_at is not None:
            return False
        self.closed_at = at
        for clock in self._active(*CLOCKS):
            clock.halt("stopped", max(at, clock.changed_at), self._calendar(clock.calendar))
            clock.no_resolution = clock.kind == "resolution"  # closed before any resolve: none
        return True

    def priority_changed(self, priority: str, at: datetime, policies: Mapping[str, Policy]) -> bool:
        """Running and paused clocks take the new priority's current policy, elapsed time kept."""
        if self.closed_at is not None or not newer(self.watermarks, "priority", at):
            return False
        self.priority, policy = priority, policies[priority]
        for clock in self._active(*CLOCKS):
            old = self._calendar(clock.calendar)
            clock.retarget(policy, max(at, clock.changed_at), old, self._calendar(policy.calendar))
        return True

    def follow_calendars(self) -> set[str]:
        """Each running clock's deadline in its calendar as it is now (its hours changed since the deadline was
        computed: the time before the change counts in the hours then, see Calendar.earlier); the calendars of the
        deadlines that moved."""
        moved = set()
        for clock in self._active(*CLOCKS):
            if not clock.running or clock.due_at is None:
                continue
            if clock.breached_at is not None and clock.due_at <= clock.breached_at:
                continue  # a breach stays where it was (its deadline is its moment)
            due = clock.moment_of(clock.target_seconds, self._calendar(clock.calendar))
            if abs(due - clock.due_at) >= timedelta(milliseconds=1):  # the store keeps milliseconds
                clock.due_at = due
                moved.add(clock.calendar)
        return moved

    # -- the timer --

    def due_alerts(self, now: datetime, grace: timedelta = NO_GRACE) -> list[Alert]:
        """The warnings and breaches passed by `now` and not yet announced, marked announced.

        A breach waits `grace` past its deadline before it is announced: an event that was already on
        its way when the deadline passed (a reply, a resolve) lands first and is judged by its own time.
        """
        alerts = []
        for clock in self.clocks:
            for label, percent, moment in clock.thresholds(self._calendar(clock.calendar)):
                if _announce_at(label, moment, grace, clock.breached_at is None) > now:
                    continue
                if label == MARK_BREACH:
                    clock.breached_at = moment
                else:
                    alerts.append(self._announce(clock, label, percent, moment))
        return alerts

    def next_due(self, now: datetime, grace: timedelta = NO_GRACE) -> datetime | None:
        """The soonest moment something is still to announce (`now` if already passed), with `grace`."""
        moments = [
            _announce_at(label, moment, grace, c.breached_at is None)
            for c in self.clocks
            for label, _, moment in c.thresholds(self._calendar(c.calendar))
        ]
        return max(min(moments), now) if moments else None

    def _announce(self, clock: Clock, label: str, percent: int | None, moment: datetime) -> Alert:
        clock.announced.append(label)
        version = str(clock.policy_version)
        event_id = derived_event_id(self.ticket_id, clock.kind, str(clock.instance), label, version)
        data = {
            "clock": clock.kind,
            "instance": clock.instance,
            "due_at": clock.due_at or moment,
            "priority": self.priority,
            "policy_version": clock.policy_version,
        }
        if label == "breach":
            clock.breached_at = clock.breached_at or moment
            under = clock.policy_at(clock.breached_at)  # a breach a priority change caught: the policy it broke
            if under is not None and (under["version"], under["priority"]) != (clock.policy_version, self.priority):
                data.update(priority=under["priority"], policy_version=under["version"], due_at=clock.breached_at)
                broken = str(under["version"])
                event_id = derived_event_id(self.ticket_id, clock.kind, str(clock.instance), label, broken)
            return Alert("sla.breached", event_id, moment, {**data, "breached_at": clock.breached_at})
        return Alert("sla.warning", event_id, moment, {**data, "percent": percent})

    # -- the deadlines --

    def deadlines(self) -> dict[str, datetime | None]:
        """Each kind's deadline while its latest clock runs, else None (paused, met, stopped, never started, or
        a target its calendar never reaches): what the queues sort by."""
        due = {}
        for kind in CLOCKS:
            clock = self._latest(kind)
            running = clock is not None and clock.running and clock.due_at != NEVER
            due[f"{kind}_due_at"] = clock.due_at if running else None
        return due

    def deadlines_changed(
        self,
        before: dict[str, datetime | None],
        at: datetime,
        correlation_id: str | None = None,
        calendar: str | None = None,
    ) -> Alert | None:
        """The sla.deadlines_changed to publish when the deadlines differ from `before` (the next revision), with
        the correlation id of the event that changed them, or the `calendar` whose new hours alone moved them."""
        after = self.deadlines()
        if after == before:
            return None
        self.deadlines_revision += 1
        event_id = derived_event_id(self.ticket_id, "deadlines", str(self.deadlines_revision))
        data = {**after, "priority": self.priority, "revision": self.deadlines_revision}
        if calendar is not None:
            data["calendar"] = calendar
        return Alert("sla.deadlines_changed", event_id, at, data, correlation_id)

    # -- reading --

    def describe(self, now: datetime) -> dict:
        """The GET /tickets/{id} view of each kind's latest clock (None if it never started)."""
        return {kind: self._view(clock, now) if (clock := self._latest(kind)) else None for kind in CLOCKS}

    def _view(self, clock: Clock, now: datetime) -> dict:
        elapsed = clock.elapsed_at(now, self._calendar(clock.calendar))
        return {
            "state": clock.status,
            "instance": clock.instance,
            "due_at": clock.due_at,
            "met_at": clock.met_at,
            "breached_at": clock.breached_at,
            "elapsed_seconds": round(elapsed, 3),  # to the millisecond the store keeps (not 2.5700000000000003)
            "remaining_seconds": round(max(clock.target_seconds - elapsed, 0.0), 3),
            "policy_version": clock.policy_version,
            "calendar": clock.calendar,
        }

    def to_dict(self) -> dict:
        """One document for the store (datetimes stay datetimes); the calendars are not part of it."""
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("clocks", "calendars")}
        return {**doc, "watermarks": dict(self.watermarks), "clocks": [clock.to_dict() for clock in self.clocks]}

    @classmethod
    def from_dict(cls, doc: Mapping, calendars: dict[str, Calendar] | None = None) -> TicketClocks:
        """Back from `to_dict` (extra keys such as `_id` ignored), computing with `calendars`."""
        clocks = [
            Clock(
                **{
                    **c,
                    "warn_at_percent": tuple(c["warn_at_percent"]),
                    "announced": list(c["announced"]),
                    "history": [dict(step) for step in c.get("history", ())],  # none on clocks older than it
                }
            )
            for c in doc["clocks"]
        ]
        names = {f.name for f in fields(cls)} - {"clocks", "calendars", "watermarks"}
        kept = {name: doc[name] for name in names if name in doc}
        return cls(**kept, clocks=clocks, watermarks=dict(doc.get("watermarks", {})), calendars=calendars or {})

    # -- helpers --

    def _start(self, kind: str, instance: int, policy: Policy, at: datetime) -> None:
        clock = Clock.under(kind, instance, policy, at)
        clock.run(at, self._calendar(clock.calendar))
        self.clocks.append(clock)

    def _active(self, *kinds: str) -> list[Clock]:
        return [clock for clock in self.clocks if clock.kind in kinds and clock.active]

    def _latest(self, kind: str) -> Clock | None:
        return next((clock for clock in reversed(self.clocks) if clock.kind == kind), None)

    def _calendar(self, calendar_id: str) -> Calendar:
        """A clock's calendar; one no longer known counts as 24x7 rather than stopping the clock."""
        return self.calendars.get(calendar_id) or Calendar.always()
