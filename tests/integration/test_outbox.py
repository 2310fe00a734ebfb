"""The outbox mechanism itself: unroutable events wait, the relay catches up, the sweep finds the orphans."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

import pika
import pytest
from pymongo import monitoring

from shared import outbox
from shared.clock import now
from shared.relay import OutboxFlusher, OutboxRelay, PendingOutboxes
from tests.harness import flushed, wait_until
from ticketflow.local import free_port


@pytest.fixture
def scratch(infra, settings):
    from pymongo import MongoClient

    client = MongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.database_name("outboxtest")]
    yield db
    client.drop_database(db.name)
    client.close()


def _entry(event_type: str) -> tuple[str, dict]:
    event_id = str(uuid.uuid4())
    body = json.dumps({"event_id": event_id, "type": event_type})
    return event_id, {
        "type": event_type,
        "body": body,
        "at": now().isoformat(),
        "seq": 0,
        "correlation_id": None,
    }


def test_an_unroutable_event_stays_in_the_outbox_until_a_queue_is_bound(infra, settings, scratch):
    kind = f"test.unbound.{uuid.uuid4().hex[:8]}"
    event_id, entry = _entry(kind)
    staged = {event_id: entry}
    scratch.docs.insert_one({"_id": "d1", "_v": 1, **outbox.insert_fields(staged)})
    pending = PendingOutboxes(scratch)
    flusher = OutboxFlusher(settings, "outboxtest", pending)
    flusher.submit(scratch.docs, "d1", staged, 1)
    flushed(flusher)
    assert scratch.docs.find_one({"_id": "d1"})[outbox.COUNT] == 1, "an unroutable event left the outbox"
    assert pending.collection.find_one({"_id": "docs:d1"}) is not None, "no marker for the relay"

    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, settings.exchange, routing_key=kind)  # now somebody listens
    relay = OutboxRelay(settings, "outboxtest", pending, [scratch.docs])

    def relayed():
        relay.run_once()
        return channel.basic_get(queue, auto_ack=True)[0]

    method = wait_until(relayed, timeout=30, interval=0.3, message="the relay did not publish the event")
    assert method.routing_key == kind
    assert outbox.FIELD not in scratch.docs.find_one({"_id": "d1"})
    assert pending.collection.count_documents({}) == 0
    relay.close()
    connection.close()


def test_with_the_broker_away_a_relay_round_stops_at_the_first_marker_and_leaves_the_others_as_they_were(
    settings, scratch
):
    """Hundreds of tickets written during an outage: each round tries one, not every marker (a failed connect and
    a database write apiece)."""
    away = dataclasses.replace(settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")  # refused
    pending = PendingOutboxes(scratch)
    for number in range(3):
        staged = dict([_entry("ticket.created")])
        scratch.docs.insert_one({"_id": f"w{number}", "_v": 1, **outbox.insert_fields(staged)})
        pending.mark(scratch.docs, f"w{number}", delay=timedelta(0))
    before = {marker["_id"]: marker["due"] for marker in pending.collection.find()}
    relay = OutboxRelay(away, "outboxtest", pending, [scratch.docs])
    assert relay.run_once() == 0
    after = {marker["_id"]: marker["due"] for marker in pending.collection.find()}
    assert sum(after[key] != before[key] for key in before) == 1, (before, after)  # the one tried, due again later
    assert all(scratch.docs.find_one({"_id": f"w{number}"})[outbox.COUNT] == 1 for number in range(3))
    relay.close()


def test_the_sweep_finds_events_whose_writer_died_before_publishing(infra, settings, scratch):
    event_id, entry = _entry("ticket.created")
    staged = {event_id: entry}
    doc = {"_id": "orphan", "_v": 1, **outbox.insert_fields(staged)}
    doc[outbox.DUE] = now()  # its writer died: nobody flushed it and its due date has passed
    scratch.docs.insert_one(doc)
    pending = PendingOutboxes(scratch)
    relay = OutboxRelay(settings, "outboxtest", pending, [scratch.docs])
    assert relay.sweep() == 1
    assert relay.run_once() == 1
    assert outbox.FIELD not in scratch.docs.find_one({"_id": "orphan"})
    relay.close()


def test_clearing_after_a_concurrent_write_keeps_the_newer_events(scratch):
    first_id, first = _entry("ticket.created")
    scratch.docs.insert_one({"_id": "d2", "_v": 1, **outbox.insert_fields({first_id: first})})
    second_id, second = _entry("ticket.closed")
    outbox.save_with_events(scratch.docs, "d2", 1, {}, {second_id: second})
    outbox.clear(scratch.docs, "d2", [first_id], version=1)  # the writer of version 1 published its event
    doc = scratch.docs.find_one({"_id": "d2"})
    assert list(doc[outbox.FIELD]) == [second_id] and doc[outbox.COUNT] == 1 and outbox.DUE in doc
    outbox.clear(scratch.docs, "d2", [second_id, first_id])  # a relay that published both, one already gone
    assert not {outbox.FIELD, outbox.COUNT, outbox.DUE} & set(scratch.docs.find_one({"_id": "d2"}))


class UpdateCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event) -> None:
        self.count += event.command_name == "update"

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def test_the_outboxes_of_several_documents_are_cleared_in_one_write(infra, scratch):
    from pymongo import MongoClient

    listener = UpdateCommands()
    client = MongoClient(infra.mongo_url, tz_aware=True, event_listeners=[listener])
    docs = client[scratch.name].docs
    published = []
    for n in range(3):
        event_id, entry = _entry("ticket.created")
        docs.insert_one({"_id": f"many{n}", "_v": 1, **outbox.insert_fields({event_id: entry})})
        published.append((f"many{n}", [event_id], 1))

    outbox.clear_many(docs, published)

    assert listener.count == 1
    assert all(not {outbox.FIELD, outbox.COUNT, outbox.DUE} & set(doc) for doc in docs.find({}))
    client.close()


def test_clearing_several_after_a_concurrent_write_to_one_keeps_its_newer_events(scratch):
    published = []
    for n in range(3):
        event_id, entry = _entry("ticket.created")
        scratch.docs.insert_one({"_id": f"some{n}", "_v": 1, **outbox.insert_fields({event_id: entry})})
        published.append((f"some{n}", [event_id], 1))
    newer_id, newer = _entry("ticket.closed")
    outbox.save_with_events(scratch.docs, "some1", 1, {}, {newer_id: newer})

    outbox.clear_many(scratch.docs, published)

    outboxes = {doc["_id"]: list(doc.get(outbox.FIELD, {})) for doc in scratch.docs.find({})}
    assert outboxes == {"some0": [], "some1": [newer_id], "some2": []}
    assert scratch.docs.find_one({"_id": "some1"})[outbox.COUNT] == 1


def test_a_clear_by_version_keeps_an_older_entry_a_relay_could_not_publish(scratch):
    """A reviewer's find: X was stored by one write (its flush failed), B by the next; a relay published B, failed on
    X and cleared B. The next write's flusher, clearing B by its version, found as many entries as it published (X)
    and emptied the outbox: X was never published. Its entries must be the published ones, each still there."""
    x_id, x = _entry("ticket.created")
    for doc_id in ("one", "two", "three"):
        scratch.docs.insert_one({"_id": doc_id, "_v": 1, **outbox.insert_fields({x_id: x})})
    published = []
    for doc_id in ("one", "two", "three"):
        b_id, b = _entry("ticket.replied")
        version = outbox.save_with_events(scratch.docs, doc_id, 1, {}, {b_id: b})
        outbox.clear(scratch.docs, doc_id, [b_id])  # the relay's clear: B went, X did not
        published.append((doc_id, [b_id], version))

    outbox.clear(scratch.docs, *published[0])  # the flusher's clear, alone
    outbox.clear_many(scratch.docs, published[1:])  # and several at once

    for doc in scratch.docs.find({}):
        assert list(doc[outbox.FIELD]) == [x_id] and doc[outbox.COUNT] == 1 and outbox.DUE in doc, doc["_id"]


def test_an_orphaned_entry_is_swept_when_due_however_often_later_writes_come(settings, scratch, monkeypatch):
    """A writer died after storing X; later writes add their own events every 25 s, each published and cleared by
    its flusher. Each write put the sweep's due date 30 s later again, so X waited as long as they came (a
    reviewer's find): the due date only moves earlier."""
    start = now()
    moment = {"now": start}
    monkeypatch.setattr(outbox, "now", lambda: moment["now"])
    x_id, x = _entry("ticket.created")
    scratch.docs.insert_one({"_id": "busy", "_v": 1, **outbox.insert_fields({x_id: x})})  # its writer dies here
    version = 1
    for n in (1, 2):
        moment["now"] = start + timedelta(seconds=25 * n)
        y_id, y = _entry("ticket.message_added")
        version = outbox.save_with_events(scratch.docs, "busy", version, {}, {y_id: y})
        outbox.clear(scratch.docs, "busy", [y_id], version)  # its flusher published it

    assert scratch.docs.find_one({"_id": "busy"})[outbox.DUE] == start + outbox.SWEEP_AFTER
