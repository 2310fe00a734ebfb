"""A ticket's whole life through sla's event handlers, on the real store: every clock rule, stored and read back."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.sla import handlers
from shared.errors import NotFound
from shared.events import derived_event_id, format_time
from shared.runtime import bind
from tests.harness import flushed, wait_until
from tests.integration.conftest import event_from
from tests.integration.sla_fixtures import sla_fixture  # noqa: F401 - the `sla` fixture

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)  # the ticket was opened half an hour ago


def _handle(app, kind: str, ticket_id: str, minutes: float, producer: str = "assignment", **data) -> None:
    envelope = event_from(producer, kind, ticket_id, data, occurred_at=T0 + timedelta(minutes=minutes))
    bind(handlers.HANDLERS, app)[kind](envelope)


def _clocks(app, ticket_id: str) -> dict:
    return handlers.ticket_view(app, ticket_id)["clocks"]


def _create(app, priority: str = "low") -> str:
    ticket_id = uuid.uuid4().hex
    data = {
        "number": 7,
        "subject": "Mail bounces",
        "description": "Every message to the sales team bounces.",
        "requester": {"name": "Ana", "email": "ana@example.com"},
        "topic": "email",
        "priority": priority,
        "source": "email",
    }
    _handle(app, "ticket.created", ticket_id, 0, producer="intake", **data)
    return ticket_id


def test_a_ticket_s_clocks_through_its_whole_life(sla):
    low = sla.policies.get("low")  # 480 / 960 / 4320 minutes by default
    ticket = _create(sla)
    clocks = _clocks(sla, ticket)
    assert clocks["first_response"]["state"] == clocks["resolution"]["state"] == "running"
    assert clocks["next_response"] is None
    assert clocks["first_response"]["due_at"] == T0 + timedelta(minutes=low.first_response_minutes)
    assert clocks["first_response"]["policy_version"] == low.version

    _handle(sla, "ticket.replied", ticket, 1, reply_id="r1", agent_id="a1", agent_name="Bo", body="On it.",
            first_response=True)  # fmt: skip
    first = _clocks(sla, ticket)["first_response"]
    assert first["state"] == "met" and first["met_at"] == T0 + timedelta(minutes=1)
    assert first["elapsed_seconds"] == 60 and first["breached_at"] is None

    author = {"type": "requester", "name": "Ana", "email": "ana@example.com"}
    _handle(sla, "ticket.message_added", ticket, 2, producer="intake", message_id="m1", body="Still?", author=author)
    nxt = _clocks(sla, ticket)["next_response"]
    assert nxt["state"] == "running" and nxt["instance"] == 0
    assert nxt["due_at"] == T0 + timedelta(minutes=2 + low.next_response_minutes)

    _handle(sla, "ticket.status_changed", ticket, 4, status="waiting_on_requester", previous_status="in_progress")
    resolution = _clocks(sla, ticket)["resolution"]
    assert resolution["state"] == "paused" and resolution["due_at"] is None
    assert resolution["elapsed_seconds"] == 4 * 60  # frozen while paused

    _handle(sla, "ticket.status_changed", ticket, 10, status="in_progress", previous_status="waiting_on_requester")
    resolution = _clocks(sla, ticket)["resolution"]
    assert resolution["state"] == "running"
    assert resolution["due_at"] == T0 + timedelta(minutes=10 + low.resolution_minutes - 4)  # elapsed kept

    _handle(sla, "ticket.replied", ticket, 11, reply_id="r2", agent_id="a1", agent_name="Bo", body="Done?",
            first_response=False)  # fmt: skip
    assert _clocks(sla, ticket)["next_response"]["state"] == "met"
    _handle(sla, "ticket.message_added", ticket, 12, producer="intake", message_id="m2", body="No.", author=author)
    assert _clocks(sla, ticket)["next_response"]["instance"] == 1  # a new instance per requester message

    high = sla.policies.get("high")
    _handle(sla, "ticket.priority_changed", ticket, 13, priority="high", previous_priority="low")
    view = handlers.ticket_view(sla, ticket)
    assert view["priority"] == "high"
    resolution = view["clocks"]["resolution"]
    assert resolution["policy_version"] == high.version
    assert resolution["due_at"] == T0 + timedelta(minutes=13 + high.resolution_minutes - 7)  # 7 min elapsed so far

    _handle(sla, "ticket.resolved", ticket, 14, agent_id="a1", resolution="Fixed the MX record.")
    clocks = _clocks(sla, ticket)
    assert clocks["resolution"]["state"] == clocks["next_response"]["state"] == "stopped"
    _handle(sla, "ticket.reopened", ticket, 20, producer="intake", reason="requester_message")
    resolution = _clocks(sla, ticket)["resolution"]
    assert resolution["state"] == "running" and resolution["elapsed_seconds"] >= 8 * 60

    _handle(sla, "ticket.closed", ticket, 25, producer="intake", by="requester")
    _handle(sla, "ticket.reopened", ticket, 26, producer="intake", reason="requester_message")  # too late
    assert _clocks(sla, ticket)["resolution"]["state"] == "stopped"


def test_each_change_of_the_running_deadlines_is_published_once_with_its_revision(sla, tap):
    low = sla.policies.get("low")
    ticket = _create(sla)
    _handle(sla, "ticket.status_changed", ticket, 3, status="waiting_on_requester", previous_status="assigned")
    _handle(sla, "ticket.status_changed", ticket, 3, status="waiting_on_requester", previous_status="assigned")
    resume = {"status": "in_progress", "previous_status": "waiting_on_requester"}
    at = T0 + timedelta(minutes=5)
    envelope = event_from("assignment", "ticket.status_changed", ticket, resume, occurred_at=at, correlation_id="req-9")
    bind(handlers.HANDLERS, sla)["ticket.status_changed"](envelope)  # an agent's request, its id carried on
    flushed(sla.flusher)
    wait_until(lambda: len(_deadlines(tap, ticket)) >= 3, timeout=30)
    published = _deadlines(tap, ticket)
    assert [env["data"]["revision"] for env in published] == [1, 2, 3]  # the repeated pause changed nothing
    first, paused, resumed = (env["data"] for env in published)
    due = lambda minutes: format_time(T0 + timedelta(minutes=minutes))  # noqa: E731
    assert (first["first_response_due_at"], first["resolution_due_at"]) == (
        due(low.first_response_minutes),
        due(low.resolution_minutes),
    )
    assert paused["resolution_due_at"] is None and paused["first_response_due_at"] == first["first_response_due_at"]
    assert resumed["resolution_due_at"] == due(low.resolution_minutes + 2)  # two minutes paused
    assert published[2]["correlation_id"] == "req-9"  # the change's cause (the others': their events', none here)
    assert published[0]["event_id"] == derived_event_id(ticket, "deadlines", "1")


def test_clocks_stored_before_the_deadlines_were_published_have_theirs_published_once(sla, tap):
    """Whatever older warnings left in assignment and intake (a due time paused or met since) is replaced: each
    ticket not closed gets a first sla.deadlines_changed, nulls included; one saved since without a change of
    deadlines (its revision 0) too."""
    running, waiting, resolved, saved_since, closed = (_create(sla) for _ in range(5))
    _handle(sla, "ticket.status_changed", waiting, 1, status="waiting_on_requester", previous_status="assigned")
    _handle(sla, "ticket.resolved", resolved, 1, agent_id="a1", resolution="Done.")
    _handle(sla, "ticket.closed", closed, 1, producer="intake", by="requester")
    flushed(sla.flusher)
    mine = (running, waiting, resolved, saved_since, closed)
    ids = {"_id": {"$in": list(mine)}}
    sla.clocks.collection.update_many(ids, {"$unset": {"deadlines_revision": ""}})  # as stored before the field
    sla.clocks.collection.update_one({"_id": saved_since}, {"$set": {"deadlines_revision": 0}})
    sla.clocks.histories.migrations.delete_one({"_id": handlers.DEADLINES_BACKFILL})

    def received() -> list[dict]:
        return [e for e in tap.envelopes() if e["type"] == "sla.deadlines_changed" and e["ticket_id"] in mine]

    before = len(received())  # here the first revisions went out at creation (with the ids the backfill gives)

    assert handlers.backfill_deadlines(sla, threading.Event()) >= 4
    flushed(sla.flusher)
    wait_until(lambda: len(received()) >= before + 4, timeout=30)
    published = {env["ticket_id"]: env["data"] for env in received()[before:]}
    assert set(published) == {running, waiting, resolved, saved_since}  # not the closed one
    assert published[running]["first_response_due_at"] is not None and published[running]["revision"] == 1
    assert published[waiting]["resolution_due_at"] is None  # paused
    assert [published[resolved][f"{clock}_due_at"] for clock in ("first_response", "next_response", "resolution")] == [
        None,
        None,
        None,
    ]
    assert handlers.backfill_deadlines(sla, threading.Event()) == 0  # once per database
    stored = {doc["_id"]: doc.get("deadlines_revision") for doc in sla.clocks.collection.find(ids)}
    assert stored == {running: 1, waiting: 1, resolved: 1, saved_since: 1, closed: None}


def _deadlines(tap, ticket_id: str) -> list[dict]:
    found = [e for e in tap.envelopes() if e["type"] == "sla.deadlines_changed" and e["ticket_id"] == ticket_id]
    return sorted({env["event_id"]: env for env in found}.values(), key=lambda env: env["data"]["revision"])


def test_an_internal_note_is_no_reply_and_an_agent_message_starts_nothing(sla):
    ticket = _create(sla)
    agent = {"type": "agent", "name": "Bo"}
    _handle(sla, "ticket.message_added", ticket, 1, producer="intake", message_id="m1", body="note", author=agent)
    clocks = _clocks(sla, ticket)
    assert clocks["first_response"]["state"] == "running" and clocks["next_response"] is None


def _lag_count(kind: str) -> float:
    return REGISTRY.get_sample_value("ticketflow_sla_alert_lag_seconds_count", {"type": kind}) or 0.0


def test_a_breach_already_passed_is_announced_when_the_event_is_handled(sla):
    before = _lag_count("sla.breached")
    ticket = _create(sla, priority="emergency")  # 15 minutes to first response, opened 30 minutes ago
    assert _lag_count("sla.breached") == before + 1  # and its lag (15 minutes) went to /metrics
    clocks = _clocks(sla, ticket)["first_response"]
    assert clocks["state"] == "breached" and clocks["breached_at"] == clocks["due_at"]
    stored = sla.clocks.collection.find_one({"_id": ticket})
    assert stored["next_due"] is not None  # the resolution clock (240 min) is still ahead
    assert "breach" in stored["clocks"][0]["announced"]


def test_an_event_for_a_ticket_sla_has_not_seen_is_retried_later(sla):
    with pytest.raises(NotFound):
        _handle(sla, "ticket.resolved", uuid.uuid4().hex, 1, agent_id="a1", resolution="Done.")
