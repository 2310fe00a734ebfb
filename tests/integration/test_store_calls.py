"""What one event costs in store calls: the reads that buy nothing are not made (issue 16, part 2).

Each test counts the commands a step sends through the process's client (a pymongo CommandListener on
it, this thread's only) against the session's store, and checks the step's effect as well.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pika
import pytest
from pymongo import MongoClient, monitoring

from services.assignment import handlers as assignment
from services.notify import handlers as notify
from services.notify.domain import NotKnownYet
from services.notify.timers import Dispatcher
from services.sla import handlers as sla
from shared import events, metrics, mongo
from shared.clock import now
from shared.config import load_settings
from shared.consumer import Consumer
from shared.idempotency import ProcessedEvents
from tests.harness import flushed
from tests.integration.assignment_fixtures import created_data, created_event, unique
from tests.integration.conftest import event_from
from tests.integration.notify_servers import smtp_server  # noqa: F401 - a fixture


class Commands(monitoring.CommandListener):
    """(collection, command) of every command sent while `counting` a step: by its thread, or by any."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.thread: int | None = None  # 0: any thread

    def started(self, event) -> None:
        if self.thread == 0 or threading.get_ident() == self.thread:
            target = event.command.get(event.command_name)
            self.seen.append((target if isinstance(target, str) else "", event.command_name))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def counting(self, step, any_thread: bool = False) -> list[tuple[str, str]]:
        self.seen, self.thread = [], 0 if any_thread else threading.get_ident()
        try:
            step()
        finally:
            self.thread = None
        return self.seen


@pytest.fixture(name="commands")
def commands_fixture(infra, monkeypatch) -> Iterator[Commands]:
    """The process's client (shared.mongo) opened again with a listener; closed again afterwards."""
    listener = Commands()
    mongo.close_client()
    monkeypatch.setattr(mongo, "MongoClient", functools.partial(MongoClient, event_listeners=[listener]))
    yield listener
    mongo.close_client()


class _Channel:
    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        raise AssertionError(f"nothing is retried or dead-lettered here: {routing_key}")

    def basic_ack(self, delivery_tag, multiple=False):
        pass

    def get_waiting_message_count(self) -> int:
        return 0


class _Connection:
    def process_data_events(self, time_limit=0):
        pass


class _Method:
    delivery_tag = 1


def test_a_delivery_reads_nothing_before_its_handler_and_its_repeat_counts_as_a_duplicate(infra, commands):
    settings = load_settings()
    handled = []
    processed = ProcessedEvents(mongo.database(settings, "intake"))
    consumer = Consumer(settings, "intake", {"ticket.reopened": handled.append}, processed)
    envelope = event_from("intake", "ticket.reopened", uuid.uuid4().hex, {"reason": "again"})
    props = pika.BasicProperties(content_type="application/json", message_id=envelope["event_id"])
    duplicates = metrics.EVENTS_CONSUMED.labels("intake", "ticket.reopened", "duplicate")
    before = duplicates._value.get()

    def deliver() -> None:
        consumer._deliver(_Connection(), _Channel(), _Channel(), _Method(), props, events.encode(envelope))

    try:
        first, again = commands.counting(deliver, any_thread=True), commands.counting(deliver, any_thread=True)
        assert first == again == []  # the records wait for the worker's timer: one write for many events
        assert processed.pending() == 2 and duplicates._value.get() == before
        written = commands.counting(processed.flush, any_thread=True)
    finally:
        consumer._pool.shutdown(wait=True)
    assert written == [("processed_events", "insert")]
    assert len(handled) == 2  # the handlers are idempotent: a repeat runs again and changes nothing
    assert duplicates._value.get() - before == 1
    assert processed.collection.count_documents({"_id": envelope["event_id"]}) == 1


def _created(ticket_id: str) -> dict:
    return event_from("intake", "ticket.created", ticket_id, created_data(unique("topic")))


def test_notify_learns_a_new_ticket_without_reading_its_projection_first(infra, commands):
    svc = notify.bootstrap(load_settings())
    ticket_id = uuid.uuid4().hex
    calls = commands.counting(lambda: notify.on_event(svc, _created(ticket_id)))
    tickets = [command for collection, command in calls if collection == "tickets"]
    assert tickets[0] == "insert", calls  # no read first (after the receipt, the stamp's check reads it: access.py)
    assert svc.views.get(ticket_id).number is not None


def test_notify_learns_a_ticket_created_that_comes_after_its_assignment_into_that_projection(infra, commands):
    svc = notify.bootstrap(load_settings())
    ticket_id = uuid.uuid4().hex
    assigned = {"agent_id": "jane", "agent_name": "Jane", "agent_email": "jane@example.com", "team": "general",
                "team_lead_email": None, "previous_agent_id": None, "reason": "auto", "decision": None}  # fmt: skip
    with pytest.raises(NotKnownYet):  # its email waits for the ticket (a retry); the projection learnt the agent
        notify.on_event(svc, event_from("assignment", "ticket.assigned", ticket_id, assigned))
    notify.on_event(svc, _created(ticket_id))
    view = svc.views.get(ticket_id)
    assert (view.agent["id"], view.number is not None) == ("jane", True)


def test_notify_reads_nothing_for_an_event_it_neither_learns_from_nor_sends_when_no_webhook_wants_it(infra, commands):
    svc = notify.bootstrap(load_settings())
    ticket_id = uuid.uuid4().hex
    notify.on_event(svc, _created(ticket_id))
    deadlines = {"first_response_due_at": "2026-12-05T10:00:00.000Z", "next_response_due_at": None,
                 "resolution_due_at": None, "priority": "normal", "revision": 1}  # fmt: skip
    changed = {"status": "in_progress", "previous_status": "assigned"}
    quiet = dataclasses.replace(svc, webhooks=SimpleNamespace(all=lambda: []))  # the session's may want them
    for envelope in (
        event_from("sla", "sla.deadlines_changed", ticket_id, deadlines),
        event_from("assignment", "ticket.status_changed", ticket_id, changed),
    ):
        assert commands.counting(lambda envelope=envelope: notify.on_event(quiet, envelope)) == []
    hook = {"_id": "h1", "url": "http://127.0.0.1:9/hook", "events": ["sla.*"], "secret": "s"}
    hooked = dataclasses.replace(svc, webhooks=SimpleNamespace(all=lambda: [hook]))
    envelope = event_from("sla", "sla.deadlines_changed", ticket_id, deadlines)
    calls = commands.counting(lambda: notify.on_event(hooked, envelope))
    assert ("notifications", "insert") in calls  # a webhook that wants it gets its delivery
    delivery = svc.notifications.collection.find_one({"ticket_id": ticket_id, "channel": "webhook"})
    assert delivery["event_type"] == "sla.deadlines_changed"


def test_sla_starts_a_new_tickets_clocks_without_reading_them_first(infra, commands):
    svc = sla.bootstrap(load_settings())
    svc.ensure_storage()  # the default policies
    ticket_id = uuid.uuid4().hex
    envelope = _created(ticket_id)
    calls = commands.counting(lambda: sla.on_created(svc, envelope))
    assert ("clocks", "find") not in calls and ("clocks", "insert") in calls
    sla.on_created(svc, envelope)  # delivered again: the insert finds them, and nothing changes
    doc = svc.clocks.collection.find_one({"_id": ticket_id})
    assert doc["_v"] == 1
    flushed(svc.flusher)


def test_assignment_assigns_a_new_ticket_without_reading_it_again_or_the_lead_apart(infra, commands):
    svc = assignment.bootstrap(load_settings())
    team, at = unique("team"), now()
    svc.teams.insert({"id": team, "name": "Network", "topics": [unique("topic")], "created_at": at, "updated_at": at})
    topic = svc.teams.get(team)["topics"][0]
    lead_id = unique("lead")
    for agent_id, lead in ((lead_id, [team]), (unique("agent"), [])):
        svc.agents.insert({"id": agent_id, "name": agent_id, "email": f"{agent_id}@example.com", "teams": [team],
                           "lead_of": lead, "capacity": 5, "available": not lead, "created_at": at,
                           "updated_at": at})  # fmt: skip
    ticket_id, staged = uuid.uuid4().hex, []
    flusher = svc.tickets.flusher
    svc.tickets.flusher = SimpleNamespace(submit=lambda *args: (staged.append(args[2]), flusher.submit(*args)))
    calls = commands.counting(lambda: assignment.on_created(svc, created_event(ticket_id, topic)))
    assert calls.count(("tickets", "find")) == 0 and calls.count(("agents", "find")) == 1
    assert svc.tickets.get(ticket_id).agent_id.startswith("agent")
    (assigned,) = [json.loads(entry["body"]) for entries in staged for entry in entries.values()]
    assert (assigned["type"], assigned["data"]["team_lead_email"]) == ("ticket.assigned", f"{lead_id}@example.com")
    flushed(svc.flusher)


def test_a_notification_recorded_while_a_sender_is_free_is_sent_without_a_pass_or_a_claim(
    infra,
    commands,
    smtp_server,  # noqa: F811
):
    recorder, smtp_url = smtp_server
    svc = notify.bootstrap(dataclasses.replace(load_settings(), smtp_url=smtp_url))
    staged = []  # the outcome's event, kept here: no flusher thread publishes and clears it meanwhile
    svc.notifications.flusher = SimpleNamespace(submit=lambda *args: staged.append(args[2]))
    svc.webhooks = SimpleNamespace(all=list)  # the receipt only, whatever webhooks other tests registered
    wakeup = threading.Event()
    dispatcher = Dispatcher(svc, wakeup, senders=2, lookahead=0.0)
    svc.sender, svc.on_recorded = dispatcher, wakeup.set
    ticket_id = uuid.uuid4().hex

    def record_and_send() -> None:
        notify.on_event(svc, _created(ticket_id))
        deadline = time.monotonic() + 30  # a bound, not a pace: the send is over as soon as no sender holds it
        while dispatcher._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    try:
        calls = commands.counting(record_and_send, any_thread=True)
    finally:
        dispatcher.close()
        svc.smtp.close()  # the connection the sender kept
    (record,) = svc.notifications.page({"ticket_id": ticket_id}, 10, None)[0]
    assert record.status == "sent" and len(recorder.with_id(record.id)) == 1
    notifications = [command for collection, command in calls if collection == "notifications"]
    assert notifications == ["insert", "update"], calls  # stored claimed, then its outcome: no read, no claim
    assert [json.loads(entry["body"])["type"] for entries in staged for entry in entries.values()] == [
        "notification.sent"
    ]
    assert not wakeup.is_set()  # no pass was needed


def test_a_notification_recorded_while_every_sender_is_busy_is_stored_due_for_a_pass(infra, commands):
    svc = notify.bootstrap(load_settings())
    wakeup = threading.Event()
    dispatcher = Dispatcher(svc, wakeup, senders=1, lookahead=0.0)
    svc.sender, svc.on_recorded = dispatcher, wakeup.set
    ticket_id = uuid.uuid4().hex
    try:
        assert dispatcher._may_start("another", "smtp")  # the only sender is busy
        notify.on_event(svc, _created(ticket_id))
        (record,) = svc.notifications.page({"ticket_id": ticket_id}, 10, None)[0]
        assert record.status == "pending" and record.next_attempt_at <= now()  # due now: a pass takes it
        assert wakeup.is_set()
    finally:
        dispatcher._finished("another", "smtp")
        dispatcher.close()
    flushed(svc.flusher)


def test_the_dispatcher_claims_what_its_query_read_without_reading_it_again(infra, commands):
    # its sending fails (nothing listens there), whatever else runs on this machine: the claim is what counts
    svc = notify.bootstrap(dataclasses.replace(load_settings(), smtp_url="smtp://127.0.0.1:1"))
    ticket_id = uuid.uuid4().hex
    notify.on_event(svc, _created(ticket_id))  # the requester's receipt, due now
    dispatcher = Dispatcher(svc, threading.Event(), senders=1, lookahead=0.0)
    try:
        calls = commands.counting(dispatcher.run_once)
    finally:
        dispatcher.close()
        svc.smtp.close()
    assert calls.count(("notifications", "find")) == 1 and ("notifications", "update") in calls
    flushed(svc.flusher)


def test_sla_learns_a_new_ticket_s_assignment_in_one_call_and_restamps_once_it_has_breaches(infra, commands):
    svc = sla.bootstrap(load_settings())
    svc.ensure_storage()
    ticket_id = uuid.uuid4().hex
    sla.on_created(svc, _created(ticket_id))
    assigned = {"agent_id": "jane", "agent_name": "Jane", "agent_email": "jane@example.com", "team": "general",
                "team_lead_email": None, "previous_agent_id": None, "reason": "auto", "decision": None}  # fmt: skip
    first = event_from("assignment", "ticket.assigned", ticket_id, assigned)
    calls = commands.counting(lambda: sla.on_assigned(svc, first))
    assert calls == [("ticket_access", "findAndModify")]  # no breach can exist yet: nothing to restamp
    svc.breaches.collection.insert_one({"_id": uuid.uuid4().hex, "ticket_id": ticket_id, "team": "general"})
    svc.access.note_records(ticket_id)  # as on_breached does before it records one
    queued = {"agent_id": None, "agent_name": None, "agent_email": None, "team": "desk"}
    again = event_from("assignment", "ticket.assigned", ticket_id, {**assigned, **queued})
    calls = commands.counting(lambda: sla.on_assigned(svc, again))
    assert calls == [("ticket_access", "findAndModify"), ("breaches", "update")]
    assert svc.breaches.collection.find_one({"ticket_id": ticket_id})["team"] == "desk"
    flushed(svc.flusher)
