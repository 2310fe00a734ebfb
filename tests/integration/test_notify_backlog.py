"""notify's backlog gauges: pending and failed notifications counted, sent and dead ones not, through the index."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from pymongo import MongoClient

from services.notify.store import NotificationStore
from services.notify.timers import export_backlog
from shared import metrics


def test_the_backlog_counts_what_waits_and_how_late_the_most_overdue_one_is(infra, settings):
    client = MongoClient(infra.mongo_url, tz_aware=True)
    name = f"{settings.namespace}_backlog_{uuid.uuid4().hex[:8]}"  # its own database: no other test's notifications
    try:
        store = NotificationStore(client[name])
        store.ensure_indexes()
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        store.collection.insert_many([
            {"_id": "pending", "status": "pending", "next_attempt_at": at - timedelta(seconds=30)},
            {"_id": "failed", "status": "failed", "next_attempt_at": at + timedelta(minutes=5)},
            {"_id": "sending", "status": "pending", "next_attempt_at": at - timedelta(seconds=4)},
            {"_id": "sent", "status": "sent", "next_attempt_at": None},
            {"_id": "dead", "status": "dead", "next_attempt_at": None},
        ])  # fmt: skip
        assert store.backlog(at) == (3, 30.0)
        assert store.backlog(at, cap=2) == (2, 30.0)
        assert store.backlog(at - timedelta(minutes=1)) == (3, 0.0)  # none due yet: nobody waits past its time

        export_backlog(SimpleNamespace(notifications=store))  # at now(): the pending one is months overdue
        assert metrics.NOTIFY_PENDING._value.get() == 3
        assert metrics.NOTIFY_OLDEST_PENDING._value.get() > 30
        store.collection.delete_many({})
        assert store.backlog(at) == (0, 0.0)
    finally:
        client.drop_database(name)
        client.close()
        client.close()


def test_what_is_due_is_read_for_one_endpoint_soonest_first(infra, settings):
    """The dispatcher's second read, past a dead webhook's backlog: only the SMTP server's, through its index."""
    from services.notify.domain import Notification

    client = MongoClient(infra.mongo_url, tz_aware=True)
    name = f"{settings.namespace}_due_{uuid.uuid4().hex[:8]}"
    try:
        store = NotificationStore(client[name])
        store.ensure_indexes()
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        for n, endpoint in enumerate(["dead.example"] * 5 + ["smtp", "dead.example", "smtp", "ok.example"]):
            when = at - timedelta(seconds=100 - n)
            record = Notification(f"n-{n}", f"e-{n}", "ticket.created", f"t-{n}", "email", "a@example.com", "s",
                                  "b", when, endpoint=endpoint, next_attempt_at=when)  # fmt: skip
            store.collection.insert_one(store.to_doc(record))
        assert [r.id for r in store.due(at, 4)] == ["n-0", "n-1", "n-2", "n-3"]
        assert [r.id for r in store.due(at, 4, "smtp")] == ["n-5", "n-7"]
        assert [r.id for r in store.due(at - timedelta(seconds=94), 4, "smtp")] == ["n-5"]
        assert [r.endpoint for r in store.due(at, 4, "ok.example")] == ["ok.example"]
    finally:
        client.drop_database(name)
        client.close()
