"""A ticket's search document from events, and from intake's view of it (a reindex into an empty database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.search.domain import TicketDoc
from services.search.reindex import from_intake

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_not_indexable_until_its_creation_is_known():
    doc = TicketDoc("t1")
    assert doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Rebooted."}, at(5))
    assert not doc.indexable
    created = {"number": 7, "subject": "S", "description": "D", "requester": {"name": "A", "email": " Ana@X.com "}}
    assert doc.apply("ticket.created", created, at(0))
    assert doc.indexable and doc.requester_email == "ana@x.com" and doc.status == "resolved"
    assert doc.document()["resolved_at"] == "2026-11-27T09:35:00.000Z"


def test_events_search_does_not_index_change_nothing():
    doc = TicketDoc("t1")
    for event_type in ("ticket.priority_changed", "sla.warning", "agent.updated", "notification.sent"):
        assert not doc.apply(event_type, {"priority": "high", "body": "secret"}, at(1))
    assert doc.messages == []


def test_a_reopened_ticket_is_open_again_without_the_resolution_that_did_not_hold():
    doc = TicketDoc("t1", number=1, agent_id="jane", status="resolved", resolution="Rebooted.", resolved_at=at(1))
    doc.watermarks.update(status=at(1), resolution=at(1))
    assert doc.apply("ticket.reopened", {"reason": "requester replied"}, at(2))
    assert (doc.status, doc.resolution, doc.resolved_at) == ("assigned", None, None)  # as intake has it
    assert not doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Rebooted."}, at(1))  # late: older
    assert doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "New dock."}, at(3))
    assert (doc.status, doc.resolution) == ("resolved", "New dock.")


def test_what_a_reopened_ticket_tried_stays_findable_in_its_thread_once():
    doc = TicketDoc("t1", number=1, agent_id="jane", status="resolved", resolution="Reseated the dock.")
    doc.resolved_at = at(1)
    doc.watermarks.update(status=at(1), resolution=at(1))
    assert doc.apply("ticket.reopened", {"reason": "requester replied"}, at(2))
    assert doc.document()["messages"] == ["Reseated the dock."] and doc.document()["resolution"] is None
    assert not doc.apply("ticket.reopened", {"reason": "requester replied"}, at(2))  # a repeat
    assert not doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Reseated the dock."}, at(1))
    assert doc.document()["messages"] == ["Reseated the dock."]


def test_a_resolution_learnt_after_its_reopen_is_an_earlier_one_and_its_repeat_changes_nothing():
    doc = TicketDoc("t1", number=1, agent_id="jane", status="assigned")
    assert doc.apply("ticket.reopened", {"reason": "requester replied"}, at(2))  # came first
    assert doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Reseated the dock."}, at(1))
    assert (doc.status, doc.resolution, doc.document()["messages"]) == ("assigned", None, ["Reseated the dock."])
    assert doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "New dock."}, at(3))
    assert not doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "New dock."}, at(3))  # a repeat
    assert (doc.resolution, doc.document()["messages"]) == ("New dock.", ["Reseated the dock."])


def test_a_reopen_that_comes_after_the_close_still_takes_the_resolution_away():
    doc = TicketDoc("t1", number=1, agent_id="jane", status="closed", resolution="Rebooted.", resolved_at=at(1))
    doc.watermarks.update(status=at(3), resolution=at(1))  # resolved at 1, reopened at 2, closed at 3
    assert doc.apply("ticket.reopened", {"reason": "requester replied"}, at(2))
    assert (doc.status, doc.resolution) == ("closed", None)


def test_from_intake_takes_the_thread_the_team_and_the_agent():
    ticket = {
        "id": "t1", "number": 42, "subject": "VPN", "description": "Drops.", "status": "in_progress",
        "requester": {"name": "Ana", "email": "Ana@Example.com"}, "team": "network",
        "assignee": {"agent_id": "jane", "name": "Jane"}, "created_at": "2026-11-27T09:30:00.000Z",
        "updated_at": "2026-11-27T10:00:00.000Z",
        "thread": [{"id": "m1", "kind": "message", "body": "Still.", "created_at": "2026-11-27T09:40:00.000Z"}],
    }  # fmt: skip
    doc = from_intake(ticket)
    assert doc.document() | {"created_at": None} == {
        "ticket_id": "t1", "number": 42, "subject": "VPN", "description": "Drops.", "messages": ["Still."],
        "resolution": None, "status": "in_progress", "team": "network", "requester_email": "ana@example.com",
        "requester_name": "Ana", "agent_id": "jane", "created_at": None, "resolved_at": None,
    }  # fmt: skip
    assert not doc.apply("ticket.status_changed", {"status": "assigned", "previous_status": "new"}, at(10))  # older
    assert doc.apply("ticket.status_changed", {"status": "waiting_on_requester", "previous_status": "x"}, at(31))


def test_from_intake_takes_a_resolved_tickets_resolution():
    ticket = {
        "id": "t2", "number": 43, "subject": "VPN", "description": "Drops.", "status": "closed",
        "requester": {"name": "Ana", "email": "ana@example.com"}, "team": "network", "assignee": None,
        "created_at": "2026-11-27T09:30:00.000Z", "updated_at": "2026-11-28T10:00:00.000Z", "thread": [],
        "resolution": "New VPN profile.", "resolved_at": "2026-11-27T12:00:00.000Z",
    }  # fmt: skip
    doc = from_intake(ticket).document()
    assert (doc["resolution"], doc["resolved_at"]) == ("New VPN profile.", "2026-11-27T12:00:00.000Z")


def test_from_intake_takes_the_earlier_resolutions_into_the_thread_as_the_events_would():
    ticket = {
        "id": "t3", "number": 44, "subject": "Dock", "description": "Screens flicker.", "status": "assigned",
        "requester": {"name": "Ana", "email": "ana@example.com"}, "team": "desk", "assignee": None,
        "created_at": "2026-11-27T09:30:00.000Z", "updated_at": "2026-11-28T10:00:00.000Z",
        "thread": [{"id": "m1", "kind": "message", "body": "Back again.", "created_at": "2026-11-27T12:30:00.000Z"}],
        "earlier_resolutions": [{"resolution": "Reseated the dock.", "resolved_at": "2026-11-27T12:00:00.000Z"}],
    }  # fmt: skip
    doc = from_intake(ticket)
    assert doc.document()["messages"] == ["Reseated the dock.", "Back again."]
    late = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # its resolve's event, replayed after the reindex
    assert not doc.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Reseated the dock."}, late)
    assert doc.document()["messages"] == ["Reseated the dock.", "Back again."]


def test_a_resolve_after_a_newer_resolve_whose_reopen_comes_last_keeps_both_resolutions_words():
    """resolved(4), reopened(5), resolved(7), delivered as 4, 7, 5: the first resolution's words stay in the thread,
    as in order (they were lost: a race hunter's find)."""

    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    moment = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731
    in_order, shuffled = TicketDoc("t-1", number=1), TicketDoc("t-1", number=1)
    events = {4: ("ticket.resolved", {"resolution": "Cleared the cache."}), 5: ("ticket.reopened", {"reason": "No."}),
              7: ("ticket.resolved", {"resolution": "Replaced the disk."})}  # fmt: skip
    for minutes in (4, 5, 7):
        in_order.apply(*events[minutes], moment(minutes))
    for minutes in (4, 7, 5):
        shuffled.apply(*events[minutes], moment(minutes))
    assert shuffled.resolution == in_order.resolution == "Replaced the disk."
    assert [m["body"] for m in shuffled.messages] == [m["body"] for m in in_order.messages] == ["Cleared the cache."]
