"""The outbox flusher while the broker holds its publishes (a memory or disk alarm blocks publishers for half a minute
a try): what a write stores waits in the store for the relay, not in the process's memory. The hang is an Event,
released at the end: no sleep decides anything."""

from __future__ import annotations

import threading

import pytest

from shared import relay
from shared.bus import PublishError
from shared.config import load_settings

ENTRY = {"type": "ticket.created", "body": "{}", "at": "2026-12-06T10:00:00.000Z", "seq": 0}


class Pending:
    def __init__(self) -> None:
        self.marked: list = []

    def mark(self, collection, doc_id, delay=relay.RETRY_AFTER) -> None:
        self.marked.append(doc_id)


class Collection:
    name = full_name = "db.tickets"


@pytest.fixture
def no_store(monkeypatch):
    monkeypatch.setattr(relay.outbox, "clear_many", lambda *a, **k: None)
    monkeypatch.setattr(relay.outbox, "clear", lambda *a, **k: None)


def test_writes_while_a_publish_hangs_are_marked_for_the_relay_past_a_bound(monkeypatch, no_store):
    """A plumbing review's find: 5,000 documents' events (95 MiB of bodies) waited in memory behind one hung
    publish, and none was handed to the relay."""
    started, release = threading.Event(), threading.Event()

    class Hanging:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def publish_entry(self, event_id, entry) -> None:
            started.set()
            release.wait(30)

        def keepalive(self) -> None:
            pass

    monkeypatch.setattr(relay, "Publisher", Hanging)
    pending = Pending()
    flusher = relay.OutboxFlusher(load_settings({}), "flushertest", pending)
    flusher.submit(Collection(), "t0", {"e0": ENTRY}, 1)
    assert started.wait(10)
    try:
        for n in range(1, 2001):  # the api goes on storing tickets
            flusher.submit(Collection(), f"t{n}", {f"e{n}": ENTRY}, 1)

        assert flusher._queue.qsize() <= relay.WAITING_AT_MOST
        assert len(pending.marked) == 2000 - relay.WAITING_AT_MOST and pending.marked[-1] == "t2000"
    finally:
        release.set()
        assert flusher.drain(30.0)  # before the monkeypatches are undone


def test_after_a_failed_publish_the_rest_of_the_batch_goes_to_the_relay_untried(no_store):
    tried: list[str] = []

    class Refusing:
        def publish_entry(self, event_id, entry) -> None:
            tried.append(event_id)
            if event_id == "e1":
                raise PublishError("the broker blocked it for 30 s")

    pending = Pending()
    flusher = relay.OutboxFlusher(load_settings({}), "flushertest", pending)

    flusher._publish(Refusing(), [(Collection(), f"t{n}", {f"e{n}": ENTRY}, 1) for n in range(4)])

    assert tried == ["e0", "e1"]  # each try could wait as long again
    assert pending.marked == ["t1", "t2", "t3"]
