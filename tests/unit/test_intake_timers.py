"""intake's auto-close round, without a store: one ticket that cannot be closed holds back no other."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pymongo.errors import AutoReconnect

from services.intake import timers
from shared.saving import NO_CHANGE


def desk(*resolved: str) -> SimpleNamespace:
    settings = SimpleNamespace(auto_close_hours=72)

    def resolved_before(moment, without=None):
        return [ticket_id for ticket_id in resolved if ticket_id not in (without or [])]

    return SimpleNamespace(settings=settings, tickets=SimpleNamespace(resolved_before=resolved_before))


def test_a_ticket_that_cannot_be_closed_stops_no_other(monkeypatch, caplog):
    """The deadline timer's poison (a plumbing review's find) in auto-close: one ticket whose change raised ended the
    round, and the next round read it first again."""
    closed = []

    def change_ticket(svc, ticket_id, change, correlation_id):
        if ticket_id == "unreadable":
            raise KeyError("status")
        closed.append(ticket_id)
        return None, "closed"

    monkeypatch.setattr(timers, "change_ticket", change_ticket)

    assert timers.auto_close(desk("unreadable", "t-2", "t-3")) == 2
    assert closed == ["t-2", "t-3"] and "auto-close of ticket unreadable failed" in caplog.text


def test_a_ticket_that_cannot_be_closed_is_left_out_of_the_rounds_for_a_while(monkeypatch):
    """A review's find: tried at every round, 200 such tickets would have filled each round's page."""
    tried, moment = [], {"now": datetime(2026, 12, 6, 12, 0, tzinfo=UTC)}

    def change_ticket(svc, ticket_id, change, correlation_id):
        tried.append(ticket_id)
        raise KeyError("status")

    monkeypatch.setattr(timers, "change_ticket", change_ticket)
    monkeypatch.setattr(timers, "now", lambda: moment["now"])
    failing: dict = {}

    timers.auto_close(desk("unreadable"), failing)
    timers.auto_close(desk("unreadable"), failing)  # the next round: left out
    moment["now"] += timers.PUT_OFF
    timers.auto_close(desk("unreadable"), failing)  # its time came: tried again

    assert tried == ["unreadable", "unreadable"]


def test_a_store_away_ends_the_round(monkeypatch):
    def change_ticket(svc, ticket_id, change, correlation_id):
        raise AutoReconnect("the store is restarting")

    monkeypatch.setattr(timers, "change_ticket", change_ticket)
    with pytest.raises(AutoReconnect):
        timers.auto_close(desk("t-1", "t-2"))


def test_a_ticket_reopened_since_it_was_found_is_not_counted(monkeypatch):
    monkeypatch.setattr(timers, "change_ticket", lambda svc, ticket_id, change, correlation_id: (None, NO_CHANGE))
    assert timers.auto_close(desk("t-1")) == 0
