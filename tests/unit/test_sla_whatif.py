"""sla's what-if: clocks replayed from their history, under the same policies (the same clocks) and under drafts."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import bson
import pytest
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla import reports, whatif
from services.sla.business_time import Calendar, parse_calendar
from services.sla.distribution import with_histograms
from services.sla.domain import Policy, TicketClocks, default_policies
from services.sla.store import HistoryStore


def stats_rows(tickets: list[dict]) -> list[dict]:
    """The rows GET /stats answers over these stored tickets."""
    return with_histograms(reports.stats(tickets), tickets)


T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
MADRID_TZ = ZoneInfo("Europe/Madrid")
OFFICE = parse_calendar(
    "office",
    {"timezone": "Europe/Madrid", "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}},
)
CALENDARS = {"24x7": Calendar.always(), "office": OFFICE}
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # as `until`: no running clock judged breached
BSON = CodecOptions(tz_aware=True)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def table(**normal) -> dict[str, Policy]:
    """The defaults, with the normal priority's policy changed by `normal`."""
    policies = default_policies()
    policies["normal"] = replace(policies["normal"], **normal)
    return policies


def draft(**terms) -> Policy:
    return replace(default_policies()["normal"], version=2, **terms)


def stored(ticket: TicketClocks) -> dict:
    """The ticket as the store keeps it (BSON: datetimes to the millisecond) and loads it again."""
    doc = {**ticket.to_dict(), "_id": ticket.ticket_id}
    doc["clocks"] = [{**c, "warn_at_percent": list(c["warn_at_percent"])} for c in doc["clocks"]]
    return bson.decode(bson.encode(doc), codec_options=BSON)


class Live:
    """A ticket's clocks as sla's handlers keep them: loaded, changed by one event, saved, each time."""

    def __init__(self, policies=None, priority="normal", created=T0):
        self.policies = policies or default_policies()
        ticket = TicketClocks("t-1", calendars=CALENDARS)
        assert ticket.created(priority, created, self.policies)
        self.doc = stored(ticket)

    def __call__(self, method: str, *args) -> Live:
        """One event: the TicketClocks method and its arguments (the policies added where it takes them)."""
        ticket = TicketClocks.from_dict(self.doc, CALENDARS)
        getattr(ticket, method)(*args, *([self.policies] if method in ("priority_changed", "message_added") else []))
        self.doc = stored(ticket)
        return self

    def timer(self, now: datetime) -> Live:
        ticket = TicketClocks.from_dict(self.doc, CALENDARS)
        ticket.due_alerts(now)
        self.doc = stored(ticket)
        return self

    def clock(self, kind: str, instance: int = 0) -> dict:
        return next(c for c in self.doc["clocks"] if c["kind"] == kind and c["instance"] == instance)


def replayable(stored_clock: dict) -> dict:
    """A stored clock with its history as a replay reads it."""
    return {**stored_clock, "steps": whatif.steps_of(stored_clock["history"])}


def replayed(live: Live, kind: str, policies=None, until=LONG_AGO, instance: int = 0):
    return whatif.replay(replayable(live.clock(kind, instance)), policies or live.policies, CALENDARS, until)


def read(live: Live, ticket_id: str) -> dict:
    """The ticket as a what-if reads it: through the compact copy the store keeps."""
    return HistoryStore.ticket_of(HistoryStore.copy_of({**live.doc, "_id": ticket_id}, 1))


def same_clock(replayed_clock, stored_clock: dict) -> bool:
    """Everything of a clock but the alerts announced (the timer's, not the history's)."""
    mine = {**asdict(replayed_clock), "announced": None, "warn_at_percent": list(replayed_clock.warn_at_percent)}
    return mine == {**stored_clock, "announced": None}


# --- under the same policies: the same clocks -------------------------------------------------------------------


def test_a_paused_and_resumed_resolution_replays_to_the_stored_clock():
    live = Live(table(resolution_minutes=60))
    live("status_changed", "waiting_on_requester", at(20))("status_changed", "in_progress", at(50))
    live("resolved", at(80))("reopened", at(90))("closed", at(110))
    assert [step.get("to") or step["priority"] for step in live.clock("resolution")["history"]] == [
        "normal", "running", "paused", "running", "stopped", "running", "stopped"
    ]  # fmt: skip
    clock = replayed(live, "resolution")
    assert same_clock(clock, live.clock("resolution"))
    assert clock.elapsed == 70 * 60 and clock.breached_at == at(
        100
    )  # its 60 minutes ran out at 100: 30 paused, 10 resolved


def test_clocks_in_business_hours_with_a_priority_change_replay_to_the_stored_clocks():
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=MADRID_TZ)
    policies = {**table(calendar="office"), "high": replace(default_policies()["high"], calendar="office")}
    live = Live(policies, created=friday)
    live("priority_changed", "high", friday + timedelta(minutes=30))
    live("replied", datetime(2026, 11, 30, 9, 45, tzinfo=MADRID_TZ))  # Monday
    for kind in ("first_response", "resolution"):
        assert same_clock(replayed(live, kind), live.clock(kind))
    assert live.clock("first_response")["elapsed"] == 105 * 60  # Friday 16:00-17:00 and Monday 09:00-09:45
    assert live.clock("first_response")["breached_at"] == datetime(2026, 11, 27, 17, 0, tzinfo=MADRID_TZ)


def test_a_breach_the_timer_announced_is_a_breach_of_the_replay_too():
    live = Live(table(first_response_minutes=10)).timer(at(15))
    live("priority_changed", "low", at(20))("replied", at(25))  # low's 480 minutes would have met it
    clock = replayed(live, "first_response")
    assert clock.breached_at == live.clock("first_response")["breached_at"] == at(10)
    assert same_clock(clock, live.clock("first_response"))


def test_a_running_clock_counts_as_breached_once_its_deadline_passed_by_until():
    live = Live(table(first_response_minutes=10))
    assert replayed(live, "first_response", until=at(9)).breached_at is None
    assert replayed(live, "first_response", until=at(10)).breached_at is None  # a reply now would be in time
    assert replayed(live, "first_response", until=at(10) + timedelta(milliseconds=1)).breached_at == at(10)


def test_a_deadline_is_compared_as_stored_to_the_millisecond():
    in_time = Live(table(first_response_minutes=0.5 / 60_000))  # 0.5 ms: due at T0 + 500 µs, stored as T0
    in_time("replied", T0)  # met at the deadline as stored: in time
    assert in_time.clock("first_response")["breached_at"] is None
    assert replayed(in_time, "first_response").breached_at is None
    late = Live(table(first_response_minutes=0.5 / 60_000))
    late("replied", T0 + timedelta(milliseconds=1))
    assert late.clock("first_response")["breached_at"] == T0
    assert replayed(late, "first_response").breached_at == T0


# --- under a draft ----------------------------------------------------------------------------------------------


def test_a_draft_in_business_hours_moves_the_deadline_across_the_weekend():
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=MADRID_TZ)
    live = Live(table(first_response_minutes=120, calendar="office"), created=friday)
    live("replied", datetime(2026, 11, 30, 9, 30, tzinfo=MADRID_TZ))  # 1 h 30 of office time
    current = replayed(live, "first_response")
    assert (current.state, current.breached_at) == ("met", None)
    assert current.due_at == datetime(2026, 11, 30, 10, 0, tzinfo=MADRID_TZ)
    stricter = replayed(live, "first_response", {**live.policies, "normal": draft(first_response_minutes=60)})
    assert stricter.breached_at == stricter.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=MADRID_TZ)
    around_the_clock = draft(first_response_minutes=120, calendar="24x7")
    wall = replayed(live, "first_response", {**live.policies, "normal": around_the_clock})
    assert wall.due_at == datetime(2026, 11, 27, 18, 0, tzinfo=MADRID_TZ) and wall.breached_at == wall.due_at


def test_a_draft_counts_only_the_time_the_clock_ran_not_the_pauses():
    live = Live(table(resolution_minutes=60))
    live("status_changed", "waiting_on_requester", at(20))("status_changed", "in_progress", at(120))
    live("resolved", at(150))  # 50 minutes ran
    assert replayed(live, "resolution").breached_at is None
    late = replayed(live, "resolution", {**live.policies, "normal": draft(resolution_minutes=45)})
    assert late.due_at == late.breached_at == at(145)  # 20 before the pause, 25 after it


def test_time_under_another_priority_keeps_its_policy_and_counts_towards_the_draft():
    live = Live(priority="high")  # first response: 60 minutes
    live("priority_changed", "normal", at(40))("replied", at(70))  # normal's 240 minutes: met
    assert replayed(live, "first_response").state == "met" and replayed(live, "first_response").breached_at is None
    drafted = replayed(live, "first_response", {**live.policies, "normal": draft(first_response_minutes=50)})
    assert drafted.due_at == drafted.breached_at == at(50)  # 40 under high, then 10 more under the draft
    high_draft = {**live.policies, "high": replace(live.policies["high"], first_response_minutes=30)}
    assert replayed(live, "first_response", high_draft).breached_at == at(30)  # passed before the change


def test_the_comparison_lists_each_clock_whose_outcome_changes_and_the_figures_both_ways():
    policies = table(first_response_minutes=30, resolution_minutes=120)
    quick, slow, untouched = Live(policies), Live(policies), Live(policies)
    quick("replied", at(10))("resolved", at(100))
    slow("replied", at(40))("resolved", at(140))
    old = Live(policies)
    old.doc["clocks"] = [{**c, "history": []} for c in old.doc["clocks"]]  # recorded before the history
    tickets = [read(live, name) for name, live in [("q", quick), ("s", slow), ("u", untouched), ("o", old)]]

    answer = whatif.compare(tickets, policies, draft(first_response_minutes=20, resolution_minutes=150), CALENDARS, T0)
    assert (answer["replayed"], answer["skipped"]) == (3, 1)
    stored = [{**live.doc, "_id": name} for name, live in [("q", quick), ("s", slow), ("u", untouched)]]
    assert answer["current"]["items"] == [row for row in stats_rows(stored) if row["priority"] == "normal"]
    assert [
        (c["ticket_id"], c["clock"], c["current"]["outcome"], c["draft"]["outcome"]) for c in answer["changed"]
    ] == [("s", "resolution", "breached", "met")]
    change = answer["changed"][0]
    assert (change["current"]["due_at"], change["current"]["breached_at"]) == (at(120), at(120))
    assert (change["draft"]["due_at"], change["draft"]["breached_at"]) == (at(150), None)
    rows = {row["clock"]: row for row in answer["draft"]["items"]}
    assert (rows["first_response"]["met"], rows["first_response"]["breached"], rows["first_response"]["open"]) == (
        1, 1, 1
    )  # fmt: skip
    assert (rows["resolution"]["met"], rows["resolution"]["breached"], rows["resolution"]["open"]) == (2, 0, 1)


def test_under_the_current_policies_a_clock_is_as_stored_unless_it_ran_under_an_older_version():
    v1 = table(first_response_minutes=30)
    ran_under_v1 = Live(v1)("replied", at(20))  # met under 30 minutes
    v2 = {**v1, "normal": replace(v1["normal"], version=2, first_response_minutes=15)}
    ran_under_v2 = Live(v2)("replied", at(20))  # late under 15 minutes
    tickets = [read(ran_under_v1, "v1"), read(ran_under_v2, "v2")]
    same_terms = replace(v2["normal"], version=3)
    answer = whatif.compare(tickets, v2, same_terms, CALENDARS, T0)
    first = next(row for row in answer["current"]["items"] if row["clock"] == "first_response")
    assert (first["met"], first["breached"]) == (0, 2)  # both under version 2's 15 minutes
    assert answer["draft"]["items"] == answer["current"]["items"] and answer["changed"] == []
    stored = next(
        row
        for row in reports.stats([ran_under_v1.doc, ran_under_v2.doc])
        if (row["priority"], row["clock"]) == ("normal", "first_response")
    )
    assert (stored["met"], stored["breached"]) == (1, 1)  # what happened: /stats


def test_a_stored_clock_is_taken_as_stored_even_where_a_replay_would_judge_it_later():
    live = Live(table(first_response_minutes=10))  # running, due at 10, the timer not yet there
    answer = whatif.compare([read(live, "t")], live.policies, draft(first_response_minutes=20), CALENDARS, at(15))
    first = {row["clock"]: row for row in answer["current"]["items"]}["first_response"]
    assert (first["open"], first["breached"]) == (1, 0)  # as /stats counts it until the timer announces
    assert answer["changed"] == []  # the draft's 20 minutes have not passed by then either


# --- properties -------------------------------------------------------------------------------------------------

EVENTS = st.sampled_from(
    ["replied", "message", "waiting", "in_progress", "resolved", "reopened", "closed", "high", "low", "timer"]
)
SHORT = default_policies() | {
    p: Policy(p, v, 5, 7, 20, (50, 75, 90), c)
    for p, v, c in (("normal", 1, "24x7"), ("high", 2, "office"), ("low", 3, "24x7"))
}
DRAFT = {**SHORT, "normal": Policy("normal", 9, 3.5, 11, 13, (80,), "office")}


def apply(live: Live, event: str, when: datetime) -> None:
    actions = {
        "replied": ("replied", when),
        "message": ("message_added", when),
        "waiting": ("status_changed", "waiting_on_requester", when),
        "in_progress": ("status_changed", "in_progress", when),
        "resolved": ("resolved", when),
        "reopened": ("reopened", when),
        "closed": ("closed", when),
        "high": ("priority_changed", "high", when),
        "low": ("priority_changed", "low", when),
    }
    live.timer(when) if event == "timer" else live(*actions[event])


def replays_exactly(steps, ordered: bool) -> None:
    """In order with the timer between events, or in any order without it: the replay is the stored clock."""
    live, now, timer = Live(SHORT), T0, LONG_AGO
    for event, milliseconds in steps:
        when = (now if ordered else T0) + timedelta(milliseconds=milliseconds)
        now = max(now, when)
        if event == "timer":
            if not ordered:
                continue  # a timer at a time later events precede: its breach would stand where a replay's would not
            timer = when
        apply(live, event, when)
    for stored_clock in live.doc["clocks"]:
        clock = whatif.replay(replayable(stored_clock), SHORT, CALENDARS, timer)
        assert same_clock(clock, stored_clock), (asdict(clock), stored_clock)
        whatif.replay(replayable(stored_clock), DRAFT, CALENDARS, timer)  # and the draft replays without fail


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(EVENTS, st.integers(0, 8 * 60_000)), max_size=25))
def test_in_order_with_the_timer_a_replay_gives_back_the_stored_clocks(steps):
    replays_exactly(steps, ordered=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(EVENTS, st.integers(0, 60 * 60_000)), max_size=25))
def test_in_any_order_a_replay_gives_back_the_stored_clocks(steps):
    replays_exactly(steps, ordered=False)


UNTIL = T0 + timedelta(minutes=100)  # later than any event below; the timer has run up to it
MINUTES = st.sampled_from([2, 3.5, 5, 7, 9, 20, 45, 200])
DRAFTS = st.builds(
    lambda first, following, resolution, calendar: Policy("normal", 9, first, following, resolution, (80,), calendar),
    MINUTES,
    MINUTES,
    MINUTES,
    st.sampled_from(["24x7", "office"]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(EVENTS, st.integers(0, 8 * 60_000)), max_size=12), min_size=1, max_size=4), DRAFTS)
def test_the_comparison_is_every_clock_replayed_both_ways(histories, draft):
    """Whatever it takes as stored or leaves unreplayed, the answer is that of replaying every clock both ways."""
    lives = []
    for steps in histories:
        live, now = Live(SHORT), T0
        for event, milliseconds in steps:
            now += timedelta(milliseconds=milliseconds)
            apply(live, event, now)
        lives.append(live.timer(UNTIL))
    answer = whatif.compare([read(live, f"t{i}") for i, live in enumerate(lives)], SHORT, draft, CALENDARS, UNTIL)

    expected, now_tickets, draft_tickets = set(), [], []
    for i, live in enumerate(lives):
        both = []
        for stored_clock in live.doc["clocks"]:
            was, would = (
                whatif.figures(whatif.replay(replayable(stored_clock), policies, CALENDARS, UNTIL))
                for policies in (SHORT, {**SHORT, "normal": draft})
            )
            both.append((was, would))
            if was["outcome"] != would["outcome"]:
                expected.add(
                    (f"t{i}", stored_clock["kind"], stored_clock["instance"], was["outcome"], would["outcome"])
                )
        now_tickets.append({"priority": live.doc["priority"], "clocks": [was for was, _ in both]})
        draft_tickets.append({"priority": live.doc["priority"], "clocks": [would for _, would in both]})
    changed = answer["changed"]
    assert {
        (c["ticket_id"], c["clock"], c["instance"], c["current"]["outcome"], c["draft"]["outcome"]) for c in changed
    } == expected
    assert answer["current"]["items"] == [row for row in stats_rows(now_tickets) if row["priority"] == "normal"]
    assert answer["draft"]["items"] == [row for row in stats_rows(draft_tickets) if row["priority"] == "normal"]


@pytest.mark.parametrize("history", [[], [{"at": T0, "to": "running"}]])
def test_a_clock_without_its_start_is_not_replayable(history):
    assert not whatif.replayable({"kind": "resolution", "instance": 0, "steps": whatif.steps_of(history)})
    assert not whatif.replayable({"kind": "resolution", "instance": 0})


def test_the_compact_copy_holds_the_history_and_the_figures_to_the_millisecond():
    live = Live(table(first_response_minutes=0.5 / 60_000))  # due at T0 + 500 µs: T0 as stored
    live("status_changed", "waiting_on_requester", at(1))("priority_changed", "high", at(2))("replied", at(3))
    ticket = read(live, "t")
    assert ticket["_id"] == "t" and ticket["priority"] == "high"
    for copied, stored_clock in zip(ticket["clocks"], live.doc["clocks"], strict=True):
        assert copied["steps"] == whatif.steps_of(stored_clock["history"])
        times = {name: whatif.ms(stored_clock[name]) for name in ("breached_at", "due_at")}
        assert {name: copied[name] for name in whatif.FIGURES} == {
            **{name: stored_clock[name] for name in whatif.FIGURES},
            **times,
        }
    assert ticket["clocks"][0]["steps"][-1] == [whatif.ms(at(3)), "to", "met"]
    assert ticket["clocks"][1]["steps"][-1] == [whatif.ms(at(2)), "priority", "high", 1]
