"""A record's stamp (its ticket's team and agent) after a worker died between writing the record and checking it.

The first delivery read the ticket's stamp, an assignment was stored meanwhile (finding no record to restamp),
the record was written with the older stamp, and the worker died before its check. The redelivery finds the
record there: it must still end with the ticket's newest stamp, or the record is listed to the wrong team.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from services.notify import handlers as notify
from services.sla import handlers as sla
from shared import events, mongo
from shared.access import Stamp
from shared.clock import now
from shared.config import load_settings
from tests.harness import flushed
from tests.integration.assignment_fixtures import created_data, unique
from tests.integration.conftest import event_from

ASSIGNED = {"agent_id": "jane", "agent_name": "Jane", "agent_email": "jane@example.com", "team": "network",
            "team_lead_email": None, "previous_agent_id": None, "reason": "auto", "decision": None}  # fmt: skip


@pytest.fixture(autouse=True)
def _own_client() -> Iterator[None]:
    """The process's client (shared.mongo), closed after the test."""
    yield
    mongo.close_client()


def _breached(ticket_id: str) -> dict:
    at = now()
    data = {"clock": "first_response", "instance": 0, "due_at": at, "priority": "normal", "policy_version": 1,
            "breached_at": at}  # fmt: skip
    return event_from("sla", "sla.breached", ticket_id, data)


def test_sla_restamps_a_breach_a_dead_worker_wrote_with_an_older_stamp_when_it_is_delivered_again(infra):
    svc = sla.bootstrap(load_settings())
    svc.ensure_storage()
    ticket_id = uuid.uuid4().hex
    sla.on_created(svc, event_from("intake", "ticket.created", ticket_id, created_data(unique("topic"))))
    breach = _breached(ticket_id)
    older = Stamp("desk", None, now() - timedelta(minutes=1))
    # the first delivery: noted, read `older`, then the assignment to network was learnt (nothing to restamp
    # yet), then it wrote the breach with `older` and died before its check
    svc.access.note_records(ticket_id)
    sla.on_assigned(svc, event_from("assignment", "ticket.assigned", ticket_id, ASSIGNED))
    svc.breaches.record(breach["event_id"], events.load_data(breach), ticket_id, older)

    sla.on_breached(svc, breach)  # the redelivery

    doc = svc.breaches.collection.find_one({"_id": breach["event_id"]})
    assert (doc["team"], doc["agent_id"]) == ("network", "jane")
    flushed(svc.flusher)


def test_notify_restamps_notifications_a_dead_worker_wrote_with_an_older_stamp_when_it_is_delivered_again(infra):
    svc = notify.bootstrap(load_settings())
    ticket_id = uuid.uuid4().hex
    created = event_from("intake", "ticket.created", ticket_id, created_data(unique("topic")))
    notify.on_event(svc, created)
    notify.on_event(svc, event_from("assignment", "ticket.assigned", ticket_id, ASSIGNED))
    receipt = {"ticket_id": ticket_id, "event_type": "ticket.created"}
    # as if the first delivery of ticket.created had written its receipt after the assignment was learnt, with
    # the stamp it read before, and died before its check
    older = Stamp("desk", None, now() - timedelta(minutes=1))
    assert svc.notifications.collection.update_many(receipt, {"$set": older.fields()}).modified_count

    notify.on_event(svc, created)  # the redelivery: the receipt is there already

    docs = list(svc.notifications.collection.find({"ticket_id": ticket_id}))
    assert len(docs) == 2 and all((doc["team"], doc["agent_id"]) == ("network", "jane") for doc in docs), docs
    flushed(svc.flusher)
