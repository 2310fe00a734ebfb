"""sla's deadline timer (on a fake clock store) and its statistics, without broker or database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from services.sla import reports, timers
from services.sla.domain import TicketClocks, default_policies
from services.sla.timers import Alarm, DeadlineTimer
from shared.runtime import EARLY_WAKE, Timer, _timer_loop
from tests.harness import wait_until

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


class FakeClocks:
    def __init__(self, due: list[tuple[str, datetime]]) -> None:
        self.entries, self.asked = due, []

    def due(self, until: datetime, limit: int) -> list[tuple[str, datetime]]:
        self.asked.append(until)
        return sorted((e for e in self.entries if e[1] <= until), key=lambda e: e[1])[:limit]

    def put_off(self, ticket_id: str, due: datetime, until: datetime) -> bool:
        self.entries = [(t, until if (t, at) == (ticket_id, due) else at) for t, at in self.entries]
        return True


class FakeApp:
    def __init__(self, due) -> None:
        self.clocks = FakeClocks(due)


@pytest.fixture
def frozen(monkeypatch):
    announced: list[str] = []
    monkeypatch.setattr(timers, "now", lambda: NOW)
    monkeypatch.setattr(timers, "announce_due", lambda svc, ticket_id: announced.append(ticket_id))
    return announced


def test_the_timer_announces_what_is_due_and_sleeps_until_the_soonest_other(frozen):
    app = FakeApp([("past", NOW - timedelta(seconds=2)), ("now", NOW), ("soon", NOW + timedelta(milliseconds=300))])
    timer = DeadlineTimer(app, Alarm(), lookahead=1.0)
    delay = timer.run_once()
    assert frozen == ["past", "now"]
    assert delay == pytest.approx((timedelta(milliseconds=300) + EARLY_WAKE).total_seconds())
    assert app.clocks.asked == [NOW + timedelta(seconds=1)]  # only what falls due within the look-ahead


def test_with_nothing_due_soon_the_timer_looks_again_after_its_lookahead(frozen):
    timer = DeadlineTimer(FakeApp([("later", NOW + timedelta(hours=3))]), Alarm(), lookahead=1.0)
    assert timer.run_once() == pytest.approx(1.0 + EARLY_WAKE.total_seconds())
    assert frozen == []


def test_a_full_batch_of_due_clocks_runs_again_at_once(frozen):
    app = FakeApp([(f"t{i}", NOW - timedelta(seconds=i)) for i in range(5)])
    assert DeadlineTimer(app, Alarm(), batch=5).run_once() == 0.0
    assert len(frozen) == 5


def _a_pass_with_one_failing(monkeypatch, error: Exception) -> tuple[list[str], FakeApp]:
    """A pass over two due tickets whose first one's step raises `error`: (those announced, the app)."""
    announced: list[str] = []

    def announce_due(svc, ticket_id):
        if ticket_id == "failing":
            raise error
        announced.append(ticket_id)

    monkeypatch.setattr(timers, "now", lambda: NOW)
    monkeypatch.setattr(timers, "announce_due", announce_due)
    app = FakeApp([("failing", NOW - timedelta(seconds=2)), ("healthy", NOW - timedelta(seconds=1))])
    DeadlineTimer(app, Alarm()).run_once()
    return announced, app


def test_a_ticket_whose_step_fails_is_put_off_and_holds_back_no_other(monkeypatch, caplog):
    """A plumbing review's find: one clock whose step raised (a document this version cannot read) came first in
    every pass, and the pass stopped there: every later warning and breach waited behind it for good."""
    announced, app = _a_pass_with_one_failing(monkeypatch, KeyError("clocks"))

    assert announced == ["healthy"]
    assert app.clocks.entries[0] == ("failing", NOW + timers.PUT_OFF)  # looked at again later, not each pass
    assert "its step failed" in caplog.text


def test_a_passing_store_fault_on_one_ticket_is_tried_at_the_next_pass_not_a_minute_later(monkeypatch):
    """A change review's find: a timeout on one healthy ticket put its breach off by a minute."""
    from pymongo.errors import ExecutionTimeout

    announced, app = _a_pass_with_one_failing(monkeypatch, ExecutionTimeout("operation exceeded time limit"))

    assert announced == ["healthy"] and app.clocks.entries[0] == ("failing", NOW - timedelta(seconds=2))


def test_a_store_error_that_stays_puts_the_ticket_off_as_any_other_failure(monkeypatch):
    """A review's find: every store error was taken as passing, and a document the store refuses for good was tried
    each second, with a warning each time."""
    from pymongo.errors import OperationFailure

    announced, app = _a_pass_with_one_failing(monkeypatch, OperationFailure("not implemented for this shape"))

    assert announced == ["healthy"] and app.clocks.entries[0] == ("failing", NOW + timers.PUT_OFF)


def test_a_store_away_during_a_step_stops_the_pass_for_the_timer_s_loop_to_wait(frozen, monkeypatch):
    from pymongo.errors import AutoReconnect

    monkeypatch.setattr(timers, "announce_due", lambda svc, ticket_id: (_ for _ in ()).throw(AutoReconnect("down")))
    app = FakeApp([("any", NOW - timedelta(seconds=1))])
    with pytest.raises(AutoReconnect):
        DeadlineTimer(app, Alarm()).run_once()
    assert app.clocks.entries == [("any", NOW - timedelta(seconds=1))]  # not put off: nothing was wrong with it


def test_a_save_wakes_the_timer_only_for_an_earlier_deadline(frozen):
    app = FakeApp([("soon", NOW + timedelta(milliseconds=500))])
    alarm = Alarm()  # the worker gives alarm.saw to the handlers as their wake_timer
    timer = DeadlineTimer(app, alarm)
    timer.run_once()
    alarm.saw(NOW + timedelta(seconds=5))
    alarm.saw(None)
    assert not alarm.wakeup.is_set()
    alarm.saw(NOW + timedelta(milliseconds=100))
    assert alarm.wakeup.is_set()


def test_the_timer_loop_runs_again_when_woken_and_after_the_delay_it_asked_for():
    runs, stop, wakeup = [], threading.Event(), threading.Event()
    timer = Timer("t", 60.0, lambda: runs.append(1) or 60.0, wakeup=wakeup)
    thread = threading.Thread(target=_timer_loop, args=(timer, stop), daemon=True)
    thread.start()
    wait_until(lambda: len(runs) == 1, timeout=10)
    wakeup.set()
    wait_until(lambda: len(runs) == 2, timeout=10)
    timer.run = lambda: runs.append(1) or 0.01  # asks to run again in 10 ms
    wakeup.set()
    wait_until(lambda: len(runs) >= 5, timeout=10)
    stop.set()
    wakeup.set()
    thread.join(timeout=2)
    assert not thread.is_alive()


# --- statistics ------------------------------------------------------------------------------------


def _ticket(priority: str, at: datetime, *steps) -> dict:
    clocks = TicketClocks("t", calendars={})
    clocks.created(priority, at, default_policies())
    for method, minutes in steps:
        getattr(clocks, method)(at + timedelta(minutes=minutes))
    clocks.due_alerts(at + timedelta(days=30))
    return clocks.to_dict()


def _row(rows: list[dict], priority: str, clock: str) -> dict:
    return next(r for r in rows if r["priority"] == priority and r["clock"] == clock)


def test_stats_count_met_breached_open_and_stopped_per_priority_and_clock():
    tickets = [
        _ticket("high", NOW, ("replied", 10), ("resolved", 100)),  # both in time (60 / 480 min)
        _ticket("high", NOW, ("replied", 30), ("resolved", 600)),  # resolution late
        _ticket("high", NOW, ("replied", 90)),  # first response late, resolution still open... and breached by now
        _ticket("high", NOW, ("resolved", 5)),  # resolved without a reply: first response stopped unanswered
        _ticket("low", NOW),
    ]
    rows = reports.stats(tickets)
    assert len(rows) == 12
    first = _row(rows, "high", "first_response")
    assert (first["met"], first["breached"], first["open"], first["stopped"]) == (2, 1, 0, 1)
    assert first["compliance_percent"] == pytest.approx(66.7)
    assert first["median_seconds"] == 30 * 60 and first["p90_seconds"] == 90 * 60 and first["measured"] == 3
    resolution = _row(rows, "high", "resolution")
    assert (resolution["met"], resolution["breached"]) == (2, 2)  # the one left open passed 480 min by now
    assert resolution["compliance_percent"] == 50.0
    assert _row(rows, "low", "first_response")["breached"] == 1
    assert _row(rows, "normal", "resolution")["compliance_percent"] is None  # nothing judged: no percent


def test_stats_give_durations_to_the_millisecond_without_float_noise():
    rows = reports.rows({("high", "first_response"): {"met": 2, "breached": 0, "open": 0, "stopped": 0,
                                                       "times": [70.30300000000001, 0.7595000000000001]}})  # fmt: skip
    assert (rows[0]["median_seconds"], rows[0]["p90_seconds"]) == (35.531, 70.303)


def test_percentiles_are_observed_values_by_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert reports.percentile(values, 90) == 9.0
    assert reports.percentile(values, 50) == 5.0
    assert reports.percentile([7.0], 90) == 7.0
    assert reports.percentile([], 90) is None
