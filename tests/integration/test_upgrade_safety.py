"""Upgrade safety: today's consumer beside a newer producer, as in a rolling upgrade (a real assignment worker).

A newer producer that adds a field to an event's data is understood by today's code (the field is ignored);
an event of a newer `schema_version` is not half-understood: it goes to the dead-letter queue with its reason.
"""

from __future__ import annotations

import json
import uuid

from shared import events
from shared.consumer import REASON_HEADER
from tests.harness import dead_letters, wait_until
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    aclient_fixture,  # noqa: F401
    assignment_app_fixture,  # noqa: F401
    assignment_db_fixture,  # noqa: F401
    assignment_worker_fixture,  # noqa: F401
    created_event,
    declare_assignment_queue,
    make_agent_fixture,  # noqa: F401
    make_team_fixture,  # noqa: F401
)


def _raw(envelope: dict) -> bytes:
    """The envelope as bytes exactly as given: events.encode would drop (or refuse) what today's code does not know."""
    return json.dumps(envelope).encode()


def test_an_added_data_field_is_ignored_and_a_newer_schema_version_is_dead_lettered_with_its_reason(
    make_team, make_agent, assignment_worker, publish, infra, settings, assignment_db
):
    team = make_team()
    agent = make_agent(team["id"])
    declare_assignment_queue(infra.amqp_url, settings)
    assignment_worker(1)
    topic = team["topics"][0]
    added, newer, after = (uuid.uuid4().hex for _ in range(3))

    tomorrow = created_event(added, topic)  # a newer producer's ticket.created, one data field more
    tomorrow["data"] |= {"sentiment": {"score": 0.8, "model": "v2"}, "language": "en"}
    version_two = created_event(newer, topic) | {"schema_version": 2}
    version_two["data"]["sentiment"] = "positive"
    publish("ticket.created", _raw(tomorrow))
    publish("ticket.created", _raw(version_two), message_id=f"v2-{newer}")
    publish("ticket.created", _raw(created_event(after, topic)))

    def handled():
        docs = {doc["_id"]: doc for doc in assignment_db.tickets.find({"_id": {"$in": [added, after]}})}
        return docs if len(docs) == 2 and all(doc.get("history") for doc in docs.values()) else None

    docs = wait_until(handled, timeout=30, message="the ticket with an added field and the one after it")
    assert docs[added]["agent_id"] == agent["id"] and docs[added]["topic"] == topic
    assert "sentiment" not in docs[added] and "language" not in docs[added]

    def dead():
        return [h for h, body in dead_letters(infra.amqp_url, f"{settings.namespace}.assignment.dead")
                if newer.encode() in body]  # fmt: skip

    (headers,) = wait_until(dead, timeout=20, message="the version-2 event reaches the dead-letter queue")
    assert headers[REASON_HEADER] == "unsupported-version", headers
    assert "schema_version 2 is not supported" in headers["x-ticketflow-error"], headers
    assert assignment_db.tickets.find_one({"_id": newer}) is None  # nothing of it was applied
    assert events.SCHEMA_VERSION == 1  # the test speaks of version 2 as the next one
