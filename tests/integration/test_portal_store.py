"""The portal's store on a real MongoDB wire server: what must hold when several processes share it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.portal import mailing
from services.portal.store import PortalStore
from shared import smtp
from tests.integration.conftest import service_database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(infra, settings):
    with service_database(infra, settings, "portal") as db:
        db.drop_collection("status_requests")
        store = PortalStore(db)
        store.ensure_indexes()
        yield store


def test_each_job_is_taken_by_one_worker_and_a_dead_takers_comes_back(store):
    for i in range(3):
        store.add_status_request(f"ana{i}@example.com", 100000 + i, NOW + timedelta(seconds=i))
    take = lambda at: store.take_job("status_requests", at, timedelta(minutes=5))  # noqa: E731
    taken = [take(NOW) for _ in range(4)]
    assert [request["number"] for request in taken[:3]] == [100000, 100001, 100002]  # oldest first, each once
    assert taken[3] is None
    store.finish_job("status_requests", taken[0]["_id"], "sent", NOW)
    store.retry_job("status_requests", taken[1]["_id"], NOW + timedelta(minutes=1))  # failed: again in a minute
    assert take(NOW) is None
    again = take(NOW + timedelta(minutes=1))
    assert (again["number"], again["attempts"]) == (100001, 2)
    store.finish_job("status_requests", again["_id"], "no-match", NOW)
    # the third one's taker died: after five minutes another worker takes it
    assert take(NOW + timedelta(minutes=4)) is None
    assert take(NOW + timedelta(minutes=6))["number"] == 100002


def test_an_address_always_refused_holds_up_nothing_and_ends_failed(store, monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(mailing, "now", lambda: clock["now"])
    store.add_status_request("refused@example.com", 100000, NOW)
    store.add_status_request("ana@example.com", 100001, NOW + timedelta(seconds=1))
    sent = []

    def handle(svc, job):
        if job["email"] == "refused@example.com":
            raise smtp.SmtpError("SMTP 550: no such user")
        sent.append(job["email"])
        return "sent"

    svc = SimpleNamespace(store=store)
    assert mailing.work(svc, "status_requests", handle) == 1
    assert sent == ["ana@example.com"]  # the one behind the refused address went out
    for delay in mailing.DELAYS:  # each try after the delay, until the last ends it
        clock["now"] += delay
        mailing.work(svc, "status_requests", handle)
    states = {doc["email"]: (doc["state"], doc["attempts"]) for doc in store.status_requests.find()}
    assert states == {"refused@example.com": ("failed", mailing.ATTEMPTS), "ana@example.com": ("sent", 1)}


def test_a_job_whose_handler_fails_unexpectedly_is_tried_again_then_ends_failed(store, monkeypatch):
    """Not left taken for ever (taken again every five minutes past its attempts, holding up the queue)."""
    clock = {"now": NOW}
    monkeypatch.setattr(mailing, "now", lambda: clock["now"])
    store.add_status_request("odd@example.com", None, NOW)

    def handle(svc, job):
        raise ValueError("a bug of the handler's")

    svc = SimpleNamespace(store=store)
    mailing.work(svc, "status_requests", handle)
    assert store.status_requests.find_one({"email": "odd@example.com"})["state"] == "pending"  # again later
    for delay in mailing.DELAYS:
        clock["now"] += delay
        mailing.work(svc, "status_requests", handle)
    job = store.status_requests.find_one({"email": "odd@example.com"})
    assert (job["state"], job["attempts"]) == ("failed", mailing.ATTEMPTS)


def test_a_fixed_window_counts_every_hit_once(store):
    window = NOW.replace(minute=0)
    counts = [store.count_hit("status:email:ana@example.com", window, timedelta(hours=1)) for _ in range(3)]
    assert counts == [1, 2, 3]
    assert store.count_hit("status:email:ana@example.com", window + timedelta(hours=1), timedelta(hours=1)) == 1


def test_a_send_is_claimed_once_going_until_it_went_or_taken_back_and_a_dead_senders_claim_is_taken_over(store):
    """A message's send claimed by one request of a browser: a second of the same words finds it going (it waits for
    the first), then went; taken back, it may be claimed again; a claim whose request died (still going a minute
    later) is claimed by the next."""
    s1, s2, s3 = (f"session-{uuid.uuid4().hex}" for _ in range(3))  # the database may outlive the test
    store.sessions.insert_many([{"_id": s1}, {"_id": s2}, {"_id": s3}])
    since, words = NOW - timedelta(minutes=10), "d1"
    claim = lambda at: store.claim_sent(s1, words, at, since, (), at - timedelta(seconds=60))  # noqa: E731
    assert store.send_state(s1, words, since) is None
    assert claim(NOW)
    assert not claim(NOW + timedelta(seconds=1))
    assert store.send_state(s1, words, since) == "going"
    store.sent_went(s1, words, NOW)
    assert store.send_state(s1, words, since) == "went"
    assert not claim(NOW + timedelta(minutes=5))  # went: the same words are not sent again
    assert store.send_state(s1, words, NOW) is None  # ... past the window they are another message

    assert store.claim_sent(s2, words, NOW, since)
    store.unclaim_sent(s2, words, NOW)
    assert store.send_state(s2, words, since) is None
    assert store.claim_sent(s2, words, NOW + timedelta(seconds=1), since)  # taken back: claimed again

    assert store.claim_sent(s3, words, NOW, since)  # its request dies: never went, never taken back
    late = lambda seconds: NOW + timedelta(seconds=seconds)  # noqa: E731
    assert not store.claim_sent(s3, words, late(59), since, (), late(59) - timedelta(seconds=60))
    assert store.claim_sent(s3, words, late(61), since, (), late(61) - timedelta(seconds=60))
    store.sent_went(s3, words, NOW)  # the dead one's end, were it heard, leaves the new claim going
    assert store.send_state(s3, words, since) == "going"
