"""The portal's store on a real MongoDB wire server: what must hold when several processes share it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.portal.store import PortalStore
from tests.integration.conftest import service_database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(infra, settings):
    with service_database(infra, settings, "portal") as db:
        db.drop_collection("status_requests")
        store = PortalStore(db)
        store.ensure_indexes()
        yield store


def test_each_check_status_request_is_taken_by_one_worker_and_a_dead_takers_comes_back(store):
    for i in range(3):
        store.add_status_request(f"ana{i}@example.com", 100000 + i, NOW + timedelta(seconds=i))
    taken = [store.take_status_request(NOW, timedelta(minutes=5)) for _ in range(4)]
    assert [request["number"] for request in taken[:3]] == [100000, 100001, 100002]  # oldest first, each once
    assert taken[3] is None
    store.finish_status_request(taken[0]["_id"], "sent", NOW)
    store.release_status_request(taken[1]["_id"])  # could not be answered now: free for the next round
    again = store.take_status_request(NOW, timedelta(minutes=5))
    assert again["number"] == 100001
    store.finish_status_request(again["_id"], "no-match", NOW)
    # the third one's taker died: after five minutes another worker takes it
    assert store.take_status_request(NOW + timedelta(minutes=4), timedelta(minutes=5)) is None
    assert store.take_status_request(NOW + timedelta(minutes=6), timedelta(minutes=5))["number"] == 100002


def test_a_fixed_window_counts_every_hit_once(store):
    window = NOW.replace(minute=0)
    counts = [store.count_hit("status:email:ana@example.com", window, timedelta(hours=1)) for _ in range(3)]
    assert counts == [1, 2, 3]
    assert store.count_hit("status:email:ana@example.com", window + timedelta(hours=1), timedelta(hours=1)) == 1
