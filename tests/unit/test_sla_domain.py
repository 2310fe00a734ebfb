"""sla clock rules: start, pause, resume, stop, re-target, warnings and breaches once, out-of-order events."""

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.business_time import Calendar, parse_calendar
from services.sla.domain import (
    NEVER,
    Policy,
    PolicyError,
    TicketClocks,
    default_policies,
    validate_policy,
    why_calendar_stays,
)
from shared.events import SlaBreachedData, SlaDeadlinesChangedData, SlaWarningData, derived_event_id

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
ALWAYS = Calendar.always()
MINUTE = 60.0
ONE_MS = timedelta(milliseconds=1)  # a clock passes its deadline the first millisecond after it
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
MADRID = parse_calendar(
    "madrid",
    {"timezone": "Europe/Madrid", "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}},
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def policies(**normal) -> dict[str, Policy]:
    """The defaults, with the normal priority's policy changed by `normal`."""
    table = default_policies()
    table["normal"] = replace(table["normal"], **normal)
    return table


def make_ticket(priority="normal", table=None, calendars=None, created=T0) -> TicketClocks:
    ticket = TicketClocks("t-1", calendars=calendars or {})
    assert ticket.created(priority, created, table or default_policies())
    return ticket


def clock(ticket: TicketClocks, kind: str, instance: int = 0):
    return next(c for c in ticket.clocks if c.kind == kind and c.instance == instance)


def elapsed_minutes(ticket, kind, now) -> float:
    return ticket.describe(now)[kind]["elapsed_seconds"] / MINUTE


def labels(alerts) -> list[tuple[str, int, str]]:
    return [(a.data["clock"], a.data["instance"], a.data.get("percent", "breach")) for a in alerts]


# --- policies ----------------------------------------------------------------------------------------


def test_default_policies_follow_the_contract():
    table = default_policies()
    minutes = {p: (x.first_response_minutes, x.next_response_minutes, x.resolution_minutes) for p, x in table.items()}
    assert minutes == {
        "emergency": (15, 30, 240),
        "high": (60, 120, 480),
        "normal": (240, 480, 1440),
        "low": (480, 960, 4320),
    }
    assert {(x.version, x.warn_at_percent, x.calendar) for x in table.values()} == {(1, (80,), "24x7")}


GOOD = {
    "first_response_minutes": 60,
    "next_response_minutes": 0.05,
    "resolution_minutes": 480,
    "warn_at_percent": [90, 75],
    "calendar": "24x7",
}


def test_validate_policy_normalises_a_good_one():
    assert validate_policy(GOOD) == {**GOOD, "warn_at_percent": (75, 90), "first_response_minutes": 60.0}
    assert Policy("high", 2, **validate_policy(GOOD)).target_seconds("next_response") == pytest.approx(3.0)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"first_response_minutes": 0}, "first_response_minutes"),
        ({"next_response_minutes": -5}, "next_response_minutes"),
        ({"resolution_minutes": True}, "resolution_minutes"),
        ({"resolution_minutes": "60"}, "resolution_minutes"),
        ({"resolution_minutes": float("nan")}, "resolution_minutes"),
        ({"resolution_minutes": float("inf")}, "resolution_minutes"),
        ({"resolution_minutes": 10**400}, "resolution_minutes"),
        ({"warn_at_percent": [0]}, "warn_at_percent"),
        ({"warn_at_percent": [100]}, "warn_at_percent"),
        ({"warn_at_percent": [50, 50]}, "warn_at_percent"),
        ({"warn_at_percent": [50.5]}, "warn_at_percent"),
        ({"warn_at_percent": [True]}, "warn_at_percent"),
        ({"warn_at_percent": 80}, "warn_at_percent"),
        ({"calendar": ""}, "calendar"),
        ({"calendar": 7}, "calendar"),
        ({"calendar": "no spaces"}, "calendar"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_validate_policy_rejects(change, field):
    with pytest.raises(PolicyError) as caught:
        validate_policy({**GOOD, **change})
    assert list(caught.value.errors) == [field]


def test_a_warning_percent_out_of_range_is_named_by_its_value():
    with pytest.raises(PolicyError) as caught:
        validate_policy({**GOOD, "warn_at_percent": [80, 200, 50.5, "x"]})
    assert caught.value.errors == {
        "warn_at_percent": [
            "200 is not a whole percent from 1 to 99.",
            "50.5 is not a whole percent from 1 to 99.",
            '"x" is not a whole percent from 1 to 99.',
        ]
    }


def test_validate_policy_lists_every_missing_field_and_unknown_calendars():
    with pytest.raises(PolicyError) as caught:
        validate_policy({})
    assert set(caught.value.errors) == set(GOOD)
    with pytest.raises(PolicyError) as caught:
        validate_policy({**GOOD, "calendar": "madrid"}, calendars={"berlin"})
    assert caught.value.errors == {"calendar": ["Unknown calendar: 'madrid'."]}
    assert validate_policy({**GOOD, "calendar": "madrid"}, calendars={"madrid"})["calendar"] == "madrid"
    with pytest.raises(PolicyError):
        validate_policy([GOOD])


# --- starting, pausing, stopping -------------------------------------------------------------------------


def test_created_starts_first_response_and_resolution_under_the_policy_version():
    ticket = make_ticket("high", policies() | {"high": replace(default_policies()["high"], version=4)})
    view = ticket.describe(at(30))
    assert view["next_response"] is None
    assert view["first_response"]["due_at"] == at(60) and view["resolution"]["due_at"] == at(480)
    assert view["first_response"]["policy_version"] == 4 and view["first_response"]["state"] == "running"
    assert view["first_response"]["elapsed_seconds"] == 30 * MINUTE
    assert view["first_response"]["remaining_seconds"] == 30 * MINUTE
    assert not ticket.created("low", at(1), default_policies())  # a duplicate changes nothing


def test_waiting_on_the_requester_pauses_resolution_and_resuming_keeps_elapsed():
    ticket = make_ticket()
    assert ticket.status_changed("waiting_on_requester", at(60))
    assert ticket.describe(at(100))["resolution"]["state"] == "paused"
    assert elapsed_minutes(ticket, "resolution", at(100)) == 60
    assert ticket.describe(at(100))["resolution"]["due_at"] is None
    assert ticket.status_changed("in_progress", at(100))
    assert elapsed_minutes(ticket, "resolution", at(160)) == 120
    assert clock(ticket, "resolution").due_at == at(1440 + 40)
    assert clock(ticket, "first_response").state == "running"  # only resolution pauses


def test_resolve_stops_everything_and_reopen_resumes_resolution_only():
    ticket = make_ticket()
    assert ticket.resolved(at(30))
    assert {c.kind: c.state for c in ticket.clocks} == {"first_response": "stopped", "resolution": "stopped"}
    assert elapsed_minutes(ticket, "resolution", at(500)) == 30
    assert ticket.reopened(at(90))
    assert clock(ticket, "resolution").state == "running" and clock(ticket, "first_response").state == "stopped"
    assert elapsed_minutes(ticket, "resolution", at(100)) == 40
    assert clock(ticket, "resolution").due_at == at(1440 + 60)


def test_closed_stops_for_good():
    ticket = make_ticket()
    ticket.resolved(at(30))
    assert ticket.closed(at(40))
    before = ticket.to_dict()
    assert not ticket.reopened(at(50))
    assert not ticket.status_changed("in_progress", at(51))
    assert not ticket.priority_changed("high", at(52), default_policies())
    assert not ticket.replied(at(53)) and not ticket.message_added(at(54), default_policies())
    assert not ticket.closed(at(55))
    assert ticket.to_dict() == before
    assert ticket.due_alerts(at(10**6)) == [] and ticket.next_due(at(60)) is None


def test_closing_an_open_ticket_stops_its_running_clocks():
    ticket = make_ticket()
    ticket.closed(at(45))
    assert {c.state for c in ticket.clocks} == {"stopped"}
    assert elapsed_minutes(ticket, "resolution", at(999)) == 45


def test_a_resolution_stopped_with_no_resolution_is_said_so_a_resolve_is_one():
    """The reports count a resolution clock met only when a resolve stopped it: not a close before any resolve (the
    requester closed it), nor a resolve that merged the ticket into another (its resolution is the other's)."""
    resolved, closed, merged = make_ticket(), make_ticket(), make_ticket()
    resolved.resolved(at(30))
    resolved.closed(at(40))  # closed once resolved: its resolution stays one
    closed.closed(at(45))
    merged.resolved(at(20), merged=True)
    assert [clock(t, "resolution").no_resolution for t in (resolved, closed, merged)] == [False, True, True]
    assert not clock(closed, "first_response").no_resolution  # a response clock is unanswered, not unresolved

    merged.reopened(at(50))  # the requester's reply: not the same request after all
    assert not clock(merged, "resolution").no_resolution
    merged.resolved(at(60))
    assert clock(merged, "resolution").state == "stopped" and not clock(merged, "resolution").no_resolution


def test_a_resolve_that_arrives_after_the_close_it_came_before_is_a_resolution_still():
    """intake's close and assignment's resolve come by two queues: the close may be heard first."""
    ticket = make_ticket()
    assert ticket.closed(at(11))
    assert ticket.resolved(at(10))  # written before the close
    resolution = clock(ticket, "resolution")
    assert (resolution.state, resolution.no_resolution, resolution.stopped_at) == ("stopped", False, at(11))
    late = make_ticket()
    late.closed(at(11))
    assert not late.resolved(at(12)) and clock(late, "resolution").no_resolution  # after the close: nothing
    merged = make_ticket()
    merged.closed(at(11))
    assert not merged.resolved(at(10), merged=True) and clock(merged, "resolution").no_resolution


def test_a_priority_change_retargets_running_and_paused_clocks_keeping_elapsed():
    table = default_policies() | {"high": replace(default_policies()["high"], version=3)}
    ticket = make_ticket(table=table)
    ticket.status_changed("waiting_on_requester", at(20))
    assert ticket.priority_changed("high", at(30), table)
    first, resolution = clock(ticket, "first_response"), clock(ticket, "resolution")
    assert (first.target_seconds, first.policy_version, first.due_at) == (60 * MINUTE, 3, at(60))
    assert elapsed_minutes(ticket, "first_response", at(30)) == 30
    assert (resolution.state, resolution.target_seconds, resolution.policy_version) == ("paused", 480 * MINUTE, 3)
    ticket.status_changed("in_progress", at(40))
    assert resolution.due_at == at(40 + 480 - 20)
    assert ticket.priority == "high"


def test_a_priority_change_past_the_new_target_breaches_at_once():
    ticket = make_ticket()
    ticket.priority_changed("emergency", at(20), default_policies())  # its 20 minutes end at this very moment
    assert not [a for a in ticket.due_alerts(at(20)) if a.type == "sla.breached"]  # on the deadline: in time
    alerts = [a for a in ticket.due_alerts(at(20) + ONE_MS) if a.type == "sla.breached"]
    assert labels(alerts) == [("first_response", 0, "breach")]
    assert alerts[0].data["breached_at"] == at(20) and alerts[0].data["priority"] == "emergency"


def test_a_priority_change_after_the_deadline_passed_keeps_the_breach_the_timer_had_not_announced_yet():
    ticket = make_ticket(table=policies(first_response_minutes=10))
    ticket.priority_changed("low", at(12), default_policies())  # low's 480 minutes: the 10 had passed at 10
    assert clock(ticket, "first_response").breached_at == at(10)
    ticket.replied(at(15))
    assert ticket.describe(at(15))["first_response"]["breached_at"] == at(10)
    assert labels(ticket.due_alerts(at(15))) == [("first_response", 0, "breach")]


def test_a_breach_a_priority_change_caught_is_announced_under_the_policy_it_broke():
    """The SLA reviewer's find: it went out as low's version 7, due 8 hours after it was breached."""
    table = {**default_policies(), "low": replace(default_policies()["low"], version=7)}
    ticket = make_ticket(table=policies(first_response_minutes=10))
    ticket.priority_changed("low", at(12), table)  # the timer had not announced the breach at 10 yet

    [breach] = [a for a in ticket.due_alerts(at(12)) if a.type == "sla.breached"]

    assert breach.data["priority"] == "normal" and breach.data["policy_version"] == 1
    assert breach.data["due_at"] == breach.data["breached_at"] == at(10)
    assert breach.event_id == derived_event_id("t-1", "first_response", "0", "breach", "1")


@pytest.mark.parametrize("done", ["replied", "resolved", "paused"])
def test_work_in_time_that_reached_sla_after_the_timer_announced_the_breach_did_not_breach(done):
    """The reply at minute 8 of 10 reached sla at 10.5 (a backlog, a retry), after the timer announced the breach at
    10: the clock is met, not breached, and the breach is not announced again (it stayed breached for good, and
    /stats counted it: a reviewer's find). Work after the breach still breaches."""
    ticket = make_ticket(table=policies(first_response_minutes=10, resolution_minutes=10))
    announced = ticket.due_alerts(at(10.5))
    assert {a.data["clock"] for a in announced if a.type == "sla.breached"} == {"first_response", "resolution"}

    {"replied": ticket.replied, "resolved": ticket.resolved}.get(
        done, lambda moment: ticket.status_changed("waiting_on_requester", moment)
    )(at(8))

    kind = "resolution" if done != "replied" else "first_response"
    view = ticket.describe(at(11))[kind]
    assert view["breached_at"] is None
    assert view["state"] == {"replied": "met", "resolved": "stopped"}.get(done, "paused")
    assert not [a for a in ticket.due_alerts(at(10**4)) if a.data["clock"] == kind]
    other = "first_response" if kind == "resolution" else "resolution"
    if done != "resolved":
        assert ticket.describe(at(11))[other]["breached_at"] == at(10)  # not touched: it did breach
    late = make_ticket(table=policies(first_response_minutes=10))
    late.due_alerts(at(10.5))
    late.replied(at(10.2))  # after the deadline: breached
    assert late.describe(at(11))["first_response"]["breached_at"] == at(10)


def test_a_breach_a_late_pause_took_back_is_marked_when_the_clock_does_pass_its_deadline():
    """Paused at 8 (heard at 10.5, after the timer announced the breach at 10), resumed at 20: the clock passes its
    10 minutes at 22, and the timer marks it breached then (it stayed running with no breach for good: a review's
    find), with no second sla.breached (one a clock instance)."""
    ticket = make_ticket(table=policies(resolution_minutes=10))
    assert [a for a in ticket.due_alerts(at(10.5)) if a.data["clock"] == "resolution"]
    ticket.status_changed("waiting_on_requester", at(8))
    assert clock(ticket, "resolution").breached_at is None
    ticket.status_changed("in_progress", at(20))
    assert ticket.next_due(at(21)) == at(22) + ONE_MS  # passed the first moment after its deadline

    assert not [a for a in ticket.due_alerts(at(23)) if a.data["clock"] == "resolution"]

    assert ticket.describe(at(23))["resolution"]["state"] == "breached"
    assert clock(ticket, "resolution").breached_at == at(22) and clock(ticket, "resolution").thresholds(ALWAYS) == []


def test_a_reply_heard_before_the_creation_with_an_early_message_waits_for_it():
    """sla keeps a message heard before any reply; a reply before the ticket's creation starts nothing (it raised,
    the priority unknown: a review's find)."""
    ticket = TicketClocks("t-1")
    ticket.message_added(at(5), default_policies())
    assert ticket.replied(at(3), default_policies()) and ticket.clocks == []


def test_a_paused_clock_already_past_a_new_shorter_target_breaches_at_the_change():
    """The SLA reviewer's find: waiting on the requester, raised to emergency, then resolved while still waiting,
    it counted as met with 300 minutes spent against a 240-minute target."""
    ticket = make_ticket()
    ticket.replied(at(1))
    ticket.status_changed("waiting_on_requester", at(300))
    ticket.priority_changed("emergency", at(310), default_policies())  # resolution: 240 minutes

    resolution = clock(ticket, "resolution")
    assert (resolution.state, resolution.breached_at) == ("paused", at(310))
    [breach] = [a for a in ticket.due_alerts(at(310)) if a.type == "sla.breached"]
    assert breach.data["clock"] == "resolution" and breach.data["priority"] == "emergency"
    ticket.resolved(at(500))
    assert clock(ticket, "resolution").breached_at == at(310) and ticket.due_alerts(at(10**5)) == []
    still = make_ticket()  # paused under the target, raised: nothing breaches until it runs past it
    still.status_changed("waiting_on_requester", at(100))
    still.priority_changed("emergency", at(110), default_policies())
    assert clock(still, "resolution").breached_at is None


# --- replies and requester messages -------------------------------------------------------------------------


def test_the_first_reply_meets_the_first_response_and_later_ones_change_nothing():
    ticket = make_ticket()
    assert ticket.replied(at(10))
    assert ticket.replied(at(20))
    first = clock(ticket, "first_response")
    assert (first.state, first.met_at, first.breached_at) == ("met", at(10), None)
    assert ticket.describe(at(30))["first_response"]["elapsed_seconds"] == 10 * MINUTE
    assert clock(ticket, "resolution").state == "running"


def test_each_requester_message_after_a_reply_starts_a_next_response_instance_met_by_the_next_reply():
    table = default_policies()
    ticket = make_ticket()
    ticket.message_added(at(5), table)  # before any reply: the first response still runs, no next_response
    assert [c.kind for c in ticket.clocks] == ["first_response", "resolution"]
    ticket.replied(at(10))
    assert ticket.message_added(at(20), table)
    ticket.message_added(at(25), table)  # one instance per cycle (kept for a reply written before it, heard after)
    assert [c.instance for c in ticket.clocks if c.kind == "next_response"] == [0]
    ticket.replied(at(30))
    ticket.message_added(at(40), table)
    ticket.replied(at(55))
    zero, one = clock(ticket, "next_response", 0), clock(ticket, "next_response", 1)
    assert (zero.started_at, zero.state, zero.met_at, zero.elapsed) == (at(20), "met", at(30), 10 * MINUTE)
    assert (one.started_at, one.state, one.met_at, one.elapsed) == (at(40), "met", at(55), 15 * MINUTE)
    assert ticket.describe(at(60))["next_response"]["instance"] == 1


# --- warnings and breaches -------------------------------------------------------------------------------------


def test_each_warning_then_the_breach_is_announced_once():
    ticket = make_ticket(table=policies(first_response_minutes=10, warn_at_percent=(50, 75, 90)))
    assert ticket.next_due(at(0)) == at(5)
    assert labels(ticket.due_alerts(at(4.9))) == []
    assert labels(ticket.due_alerts(at(5))) == [("first_response", 0, 50)]
    assert ticket.due_alerts(at(5)) == []
    assert ticket.next_due(at(5)) == at(7.5)
    assert labels(ticket.due_alerts(at(9.5))) == [("first_response", 0, 75), ("first_response", 0, 90)]
    breach = ticket.due_alerts(at(10.5))
    assert labels(breach) == [("first_response", 0, "breach")]
    assert breach[0].data["breached_at"] == at(10) == breach[0].data["due_at"] and breach[0].at == at(10)
    for minute in (11, 12, 100):
        assert [a for a in ticket.due_alerts(at(minute)) if a.data["clock"] == "first_response"] == []
    assert ticket.describe(at(12))["first_response"]["state"] == "breached"
    assert ticket.next_due(at(12)) == at(720)  # resolution's 50 % warning


def test_alert_data_matches_the_event_schemas():
    ticket = make_ticket(table=policies(first_response_minutes=10))
    warning, breach = ticket.due_alerts(at(11))[:2]
    assert (warning.type, breach.type) == ("sla.warning", "sla.breached")
    assert SlaWarningData().validate(_wire(warning.data)) == {}
    assert SlaBreachedData().validate(_wire(breach.data)) == {}


def _wire(data: dict) -> dict:
    return {k: v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v for k, v in data.items()}


# --- the deadlines: sla.deadlines_changed -----------------------------------------------------------


def step(ticket: TicketClocks, change, when: datetime):
    """Apply `change` as sla's handler does: the deadlines before it, then the event to publish if they moved."""
    before = ticket.deadlines()
    change(ticket)
    return ticket.deadlines_changed(before, when)


def test_the_deadlines_follow_every_change_of_the_running_clocks_each_a_new_revision():
    ticket = TicketClocks("t-1")
    started = step(ticket, lambda t: t.created("normal", T0, default_policies()), at(0))
    assert started.type == "sla.deadlines_changed" and started.at == at(0)
    assert started.data == {
        "first_response_due_at": at(240),
        "next_response_due_at": None,
        "resolution_due_at": at(1440),
        "priority": "normal",
        "revision": 1,
    }
    assert SlaDeadlinesChangedData().validate(SlaDeadlinesChangedData().dump(started.data)) == {}
    assert started.event_id == derived_event_id("t-1", "deadlines", "1")

    replied = step(ticket, lambda t: t.replied(at(10)), at(10))
    assert (replied.data["first_response_due_at"], replied.data["revision"]) == (None, 2)
    paused = step(ticket, lambda t: t.status_changed("waiting_on_requester", at(100)), at(100))
    assert paused.data["resolution_due_at"] is None and paused.data["revision"] == 3
    resumed = step(ticket, lambda t: t.status_changed("in_progress", at(160)), at(160))
    assert resumed.data["resolution_due_at"] == at(1500)  # 60 minutes paused
    asked = step(ticket, lambda t: t.message_added(at(170), default_policies()), at(170))
    assert asked.data["next_response_due_at"] == at(170 + 480)
    higher = step(ticket, lambda t: t.priority_changed("high", at(180), default_policies()), at(180))
    assert (higher.data["next_response_due_at"], higher.data["resolution_due_at"]) == (at(290), at(540))
    assert higher.data["priority"] == "high"
    resolved = step(ticket, lambda t: t.resolved(at(200)), at(200))
    assert [resolved.data[k] for k in ("first_response_due_at", "next_response_due_at", "resolution_due_at")] == [
        None,
        None,
        None,
    ]
    assert resolved.data["revision"] == ticket.deadlines_revision == 7


def test_what_leaves_the_deadlines_as_they_were_announces_nothing_and_keeps_the_revision():
    ticket = make_ticket()
    ticket.deadlines_revision = 1
    assert step(ticket, lambda t: t.status_changed("in_progress", at(5)), at(5)) is None  # nothing was paused
    assert step(ticket, lambda t: t.due_alerts(at(200)), at(200)) is None  # a warning moves no deadline
    assert step(ticket, lambda t: t.replied(at(1)), at(1)) is not None
    assert step(ticket, lambda t: t.replied(at(2)), at(2)) is None  # a second reply meets nothing more
    assert ticket.deadlines_revision == 2
    assert TicketClocks.from_dict(ticket.to_dict()).deadlines_revision == 2
    stored_before = {k: v for k, v in ticket.to_dict().items() if k != "deadlines_revision"}
    assert TicketClocks.from_dict(stored_before).deadlines_revision == 0  # clocks stored before the field


def test_a_target_its_calendar_never_reaches_has_no_deadline_to_sort_by():
    ticket = make_ticket()
    clock(ticket, "resolution").due_at = NEVER
    assert ticket.deadlines()["resolution_due_at"] is None
    assert ticket.deadlines()["first_response_due_at"] == at(240)


def test_a_clock_met_before_its_deadline_never_breaches():
    ticket = make_ticket(table=policies(first_response_minutes=10, resolution_minutes=20, warn_at_percent=()))
    ticket.replied(at(9.999))
    ticket.resolved(at(19.999))
    assert ticket.due_alerts(at(10**5)) == [] and ticket.next_due(at(30)) is None
    assert all(c.breached_at is None for c in ticket.clocks)


def test_a_clock_met_after_its_deadline_still_announces_its_breach():
    ticket = make_ticket(table=policies(first_response_minutes=10, warn_at_percent=()))
    ticket.replied(at(10.5))  # the reply came before the timer noticed
    assert ticket.next_due(at(11)) == at(11)
    alerts = ticket.due_alerts(at(11))
    assert labels(alerts) == [("first_response", 0, "breach")] and alerts[0].data["breached_at"] == at(10)
    assert ticket.describe(at(11))["first_response"]["state"] == "met"


def test_event_ids_are_derived_and_differ_per_threshold_instance_and_version():
    table = policies(next_response_minutes=10, warn_at_percent=(50,))
    ticket = make_ticket(table=table)
    ticket.replied(at(1))
    ticket.message_added(at(2), table)
    first = {(a.data["instance"], a.data.get("percent")): a.event_id for a in ticket.due_alerts(at(13))}
    assert first[(0, 50)] == derived_event_id("t-1", "next_response", "0", "warn-50", "1")
    assert first[(0, None)] == derived_event_id("t-1", "next_response", "0", "breach", "1")
    again = make_ticket(table=table)
    again.replied(at(1))
    again.message_added(at(2), table)
    assert {a.event_id for a in again.due_alerts(at(13))} == set(first.values())  # stable
    ticket.replied(at(14))
    ticket.message_added(at(15), policies(next_response_minutes=10, warn_at_percent=(50,), version=2))
    second = {a.event_id for a in ticket.due_alerts(at(30)) if a.data["clock"] == "next_response"}
    assert second == {derived_event_id("t-1", "next_response", "1", label, "2") for label in ("warn-50", "breach")}
    assert len(set(first.values()) | second) == 4


# --- out of order and duplicated ---------------------------------------------------------------------------------


def test_an_older_status_change_is_ignored():
    ticket = make_ticket()
    ticket.status_changed("waiting_on_requester", at(60))
    ticket.status_changed("in_progress", at(100))
    assert not ticket.status_changed("waiting_on_requester", at(80))
    assert not ticket.status_changed("in_progress", at(100))
    assert clock(ticket, "resolution").state == "running"
    assert elapsed_minutes(ticket, "resolution", at(160)) == 120


def test_late_and_duplicated_lifecycle_events_never_move_a_clock_back():
    ticket = make_ticket()
    ticket.resolved(at(30))
    ticket.reopened(at(60))
    assert not ticket.resolved(at(30))  # a repeat
    ticket.resolved(at(45))  # older than the reopen: it moves no clock (it answers a message written after it)
    assert not ticket.reopened(at(60))
    assert clock(ticket, "resolution").state == "running"
    assert elapsed_minutes(ticket, "resolution", at(70)) == 40
    assert ticket.priority_changed("high", at(80), default_policies())
    assert not ticket.priority_changed("low", at(75), default_policies())  # older than the high one
    assert ticket.priority == "high"


def test_a_late_message_or_reply_starts_and_meets_nothing():
    table = default_policies()
    ticket = make_ticket()
    ticket.replied(at(10))
    ticket.message_added(at(20), table)
    ticket.replied(at(30))
    assert not ticket.replied(at(10))  # a duplicate
    assert not ticket.message_added(at(20), table)  # a duplicate, already answered
    assert not ticket.message_added(at(25), table)  # written before the reply that answered it
    assert [c.instance for c in ticket.clocks if c.kind == "next_response"] == [0]
    ticket.message_added(at(40), table)
    ticket.replied(at(35))  # delivered after the message of 40: it cannot have answered it
    assert clock(ticket, "next_response", 1).state == "running"


def test_a_message_heard_before_the_reply_it_follows_starts_the_next_response_when_the_reply_comes():
    """Two services' events: the requester's message of minute 20 (intake) handled before the agent's reply of 10
    (assignment), by a retry or a second worker: the reply starts the next_response from 20 (none ever started:
    a race hunter's and a reviewer's find). Messages before the reply are answered by it."""
    table = default_policies()
    ticket = make_ticket()
    assert ticket.message_added(at(5), table)  # no reply known: kept
    assert ticket.message_added(at(20), table)
    assert [c.kind for c in ticket.clocks] == ["first_response", "resolution"]

    ticket.replied(at(10), table)

    waiting = clock(ticket, "next_response", 0)
    assert (waiting.state, waiting.started_at) == ("running", at(20)) and ticket.unanswered == []
    assert clock(ticket, "first_response").met_at == at(10)
    answered = make_ticket()
    answered.message_added(at(5), table)
    answered.replied(at(10), table)  # the message came before the reply: answered by it
    assert [c.kind for c in answered.clocks] == ["first_response", "resolution"] and answered.unanswered == []
    stored = TicketClocks.from_dict(ticket.to_dict())
    assert stored.unanswered == [] and TicketClocks.from_dict(
        {**make_ticket().to_dict(), "unanswered": [at(3)]}
    ).unanswered == [at(3)]


def test_a_message_older_than_a_resolve_that_came_first_starts_nothing():
    ticket = make_ticket()
    ticket.replied(at(10))
    ticket.resolved(at(30))
    assert not ticket.message_added(at(20), default_policies())
    assert [c.kind for c in ticket.clocks] == ["first_response", "resolution"]


# --- business calendars and storage -------------------------------------------------------------------------------


def test_a_business_calendar_puts_deadlines_in_business_hours():
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    table = policies(first_response_minutes=60, calendar="madrid")
    ticket = make_ticket(table=table, calendars={"madrid": MADRID}, created=friday)
    monday = datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    assert clock(ticket, "first_response").due_at == monday
    assert ticket.next_due(friday) == datetime(2026, 11, 30, 9, 18, tzinfo=ZoneInfo("Europe/Madrid"))
    assert ticket.describe(monday - timedelta(minutes=10))["first_response"]["elapsed_seconds"] == 50 * MINUTE
    assert labels(ticket.due_alerts(monday - timedelta(seconds=1))) == [("first_response", 0, 80)]
    assert labels(ticket.due_alerts(monday)) == []  # a reply now is in time
    assert labels(ticket.due_alerts(monday + ONE_MS)) == [("first_response", 0, "breach")]


def test_a_round_trip_through_a_document_keeps_everything():
    ticket = make_ticket(table=policies(first_response_minutes=10, warn_at_percent=(50, 90)))
    ticket.status_changed("waiting_on_requester", at(3))
    ticket.due_alerts(at(6))
    doc = ticket.to_dict()
    assert isinstance(doc["clocks"][0]["started_at"], datetime)
    stored = {
        **doc,
        "_id": "t-1",
        "clocks": [{**c, "warn_at_percent": list(c["warn_at_percent"])} for c in doc["clocks"]],
    }
    again = TicketClocks.from_dict(stored, calendars={})
    assert again == ticket and again.to_dict() == doc
    assert again.due_alerts(at(6)) == []


def test_a_clock_as_stored_is_what_asdict_gives_and_a_copy():
    ticket = make_ticket(table=policies(first_response_minutes=10, warn_at_percent=(50, 90)))
    ticket.due_alerts(at(6))  # announces warn-50
    clock = ticket.clocks[0]
    assert clock.history and clock.announced
    doc = clock.to_dict()

    assert doc == asdict(clock)
    doc["announced"].append("x")
    doc["history"][0]["at"] = None
    assert "x" not in clock.announced and clock.history[0]["at"] is not None


# --- properties -------------------------------------------------------------------------------------------------

EVENTS = st.sampled_from(
    ["replied", "message", "waiting", "in_progress", "resolved", "reopened", "closed", "high", "low", "alerts"]
)
SHORT = default_policies() | {
    p: Policy(p, v, 5, 7, 20, (50, 75, 90)) for p, v in (("normal", 1), ("high", 2), ("low", 3))
}


def apply(ticket: TicketClocks, event: str, when: datetime) -> list:
    """One event (or a timer run) at `when`; the alerts it produced."""
    actions = {
        "replied": lambda: ticket.replied(when),
        "message": lambda: ticket.message_added(when, SHORT),
        "waiting": lambda: ticket.status_changed("waiting_on_requester", when),
        "in_progress": lambda: ticket.status_changed("in_progress", when),
        "resolved": lambda: ticket.resolved(when),
        "reopened": lambda: ticket.reopened(when),
        "closed": lambda: ticket.closed(when),
        "high": lambda: ticket.priority_changed("high", when, SHORT),
        "low": lambda: ticket.priority_changed("low", when, SHORT),
    }
    return ticket.due_alerts(when) if event == "alerts" else (actions[event](), [])[1]


def run(steps, ordered: bool) -> None:
    """Apply the steps; with increasing times the elapsed time seen at `now` never decreases, in any
    order what a clock has stored (its elapsed time, its last change) never does; no alert comes twice."""
    ticket, now, seen, last = make_ticket(table=SHORT), T0, set(), {}
    for event, minutes in steps:
        when = (now if ordered else T0) + timedelta(minutes=minutes)
        now = max(now, when)
        for alert in apply(ticket, event, when) + ticket.due_alerts(now):
            key = labels([alert])[0]
            assert key not in seen
            seen.add(key)
        for c in ticket.clocks:
            value = (c.elapsed_at(now, ALWAYS),) if ordered else (c.elapsed, c.changed_at)
            assert value >= last.get((c.kind, c.instance), value)
            last[(c.kind, c.instance)] = value


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(EVENTS, st.floats(0, 8, allow_nan=False)), max_size=25))
def test_elapsed_never_decreases_and_no_alert_twice_with_increasing_times(steps):
    run(steps, ordered=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(EVENTS, st.floats(0, 60, allow_nan=False)), max_size=25))
def test_clocks_never_go_back_and_no_alert_twice_in_any_order(steps):
    run(steps, ordered=False)


def test_a_target_its_calendar_never_reaches_is_due_never_rather_than_failing():
    tiny = parse_calendar("tiny", {"timezone": "UTC", "hours": {"mon": [["09:00", "09:01"]]}})
    table = policies(resolution_minutes=10 * 366 * 24 * 60, calendar="tiny")
    ticket = make_ticket(table=table, calendars={"tiny": tiny})
    assert clock(ticket, "resolution").due_at == NEVER
    assert clock(ticket, "first_response").due_at < NEVER
    assert ticket.due_alerts(at(5 * 366 * 24 * 60)) != []  # 240 minutes at one a week: about 4.6 years


# --- deleting a calendar ---------------------------------------------------------------------------


def test_a_calendar_stays_while_any_policy_version_names_it():
    versions = {
        "low": [{"version": v, "calendar": c} for v, c in ((1, "24x7"), (2, "office"), (10, "office"), (11, "24x7"))],
        "high": [{"version": 1, "calendar": "24x7"}, {"version": 2, "calendar": "office"}],
        "normal": [{"version": 1, "calendar": "night"}],
    }
    said = why_calendar_stays("office", versions)
    assert said is not None and said.startswith("Not deleted: office is the calendar of the low priority policy")
    assert "low priority policy's versions 2, 10; the high priority policy's version 2." in said
    assert why_calendar_stays("unused", versions) is None
    assert "built in" in why_calendar_stays("24x7", {})


def test_a_calendar_changed_under_a_running_clock_keeps_the_time_counted_and_moves_its_deadline():
    """A normal ticket (480 business minutes to resolve) under an office calendar, opened Monday 09:00 UTC; on
    Tuesday at noon the office closes at 13:00 from then on and Monday becomes a holiday: Monday's 8 hours stay
    counted (they were recounted away, and the deadline stayed where the old hours put it: two reviewers' find),
    and the timer's step moves the deadline into the new hours."""
    office = parse_calendar("office", {"timezone": "UTC", "hours": {d: [["09:00", "17:00"]] for d in WEEKDAYS}})
    table = policies(resolution_minutes=16 * 60, first_response_minutes=60, calendar="office")
    ticket = make_ticket(table=table, calendars={"office": office}, created=datetime(2026, 11, 30, 9, tzinfo=UTC))
    assert clock(ticket, "resolution").due_at == datetime(2026, 12, 1, 17, tzinfo=UTC)  # Monday 8 + Tuesday 8

    change = datetime(2026, 12, 1, 12, tzinfo=UTC)
    shorter = parse_calendar(
        "office",
        {"timezone": "UTC", "hours": {d: [["09:00", "13:00"]] for d in WEEKDAYS}, "holidays": ["2026-11-30"]},
    )
    ticket.calendars["office"] = replace(shorter, earlier=((change, office),))

    assert ticket.describe(change)["resolution"]["elapsed_seconds"] == 11 * 3600  # Monday's 8, Tuesday's 3
    assert ticket.follow_calendars() == {"office"} and not ticket.follow_calendars()  # moved once
    assert clock(ticket, "resolution").due_at == datetime(2026, 12, 2, 13, tzinfo=UTC)  # 1 + 4 hours more
    assert ticket.describe(change)["resolution"]["remaining_seconds"] == 5 * 3600


def test_the_requesters_answer_to_a_resolution_nobody_replied_before_starts_a_next_response():
    """Resolved with no public reply (its resolution emailed), then the requester answers it, which reopens it: a
    response is awaited, and a next_response runs (only the resolution ran: an admin tester's find)."""
    table = default_policies()
    ticket = make_ticket()
    ticket.resolved(at(30))
    assert ticket.message_added(at(40), table)
    ticket.reopened(at(40))
    waiting = clock(ticket, "next_response", 0)
    assert (waiting.state, waiting.started_at) == ("running", at(40))
    unanswered = make_ticket()
    unanswered.message_added(at(40), table)  # no reply nor resolve yet: kept for the reply it follows
    assert unanswered.unanswered == [at(40)] and [c.kind for c in unanswered.clocks] == ["first_response", "resolution"]
    before = make_ticket()
    before.resolved(at(30))
    assert not before.message_added(at(20), table)  # written before the resolve: answered by it


@pytest.mark.parametrize("order", ["reopen before the message", "message before the resolve"])
def test_a_requesters_answer_to_a_resolution_starts_a_next_response_in_whatever_order_it_is_heard(order):
    """The resolve (assignment's event) and the requester's answer with its reopen (intake's) may be heard in any
    order: a next_response runs from the answer (a review's find: none did)."""
    table = default_policies()
    ticket = make_ticket()
    if order == "reopen before the message":
        ticket.resolved(at(30), policies=table)
        ticket.reopened(at(40))
        ticket.message_added(at(40), table)
    else:
        ticket.message_added(at(40), table)
        ticket.reopened(at(40))
        ticket.resolved(at(30), policies=table)
    waiting = clock(ticket, "next_response", 0)
    assert (waiting.state, waiting.started_at) == ("running", at(40))


def test_an_answer_to_a_second_resolution_heard_before_it_starts_the_next_response_after_it():
    """Resolved again while next_response 0 runs, and the requester's answer to it heard before that resolve: the
    answer is kept, and the resolve starts next_response 1 from it (it was dropped: a review's find)."""
    table = default_policies()
    ticket = make_ticket()
    ticket.resolved(at(30), policies=table)
    ticket.message_added(at(40), table)
    ticket.reopened(at(40))
    ticket.message_added(at(60), table)  # written after the resolve of 50, heard before it
    ticket.resolved(at(50), policies=table)
    ticket.reopened(at(60))
    states = [(c.instance, c.state, c.started_at) for c in ticket.clocks if c.kind == "next_response"]
    assert states == [(0, "stopped", at(40)), (1, "running", at(60))]


def test_a_reply_on_the_deadline_s_very_moment_is_in_time_and_one_a_millisecond_later_is_not():
    """Contract section 6: sla.breached when a clock passes its target; at the deadline it has not yet passed."""
    on_time, late = (make_ticket(table=policies(first_response_minutes=10)) for _ in range(2))
    on_time.replied(at(10))
    late.replied(at(10) + ONE_MS)

    assert (clock(on_time, "first_response").state, clock(on_time, "first_response").breached_at) == ("met", None)
    assert clock(late, "first_response").breached_at == at(10)
    assert not [a for a in on_time.due_alerts(at(11)) if a.type == "sla.breached"]
