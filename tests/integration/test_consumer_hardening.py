"""A consumer never stalls on one bad message: broken retry headers and forged clocks are dead-lettered.

Proven on intake's worker against the real broker: each bad message lands once in `<ns>.intake.dead`
with its reason, and the messages behind it flow without the worker reconnecting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pika
import pytest

from shared import events
from tests.harness import dead_letters, wait_until
from tests.integration.conftest import event_from

BROKEN_ATTEMPTS = {
    "text": "abc",
    "negative": -100,
    "huge": 2**62,
    "bytes": b"\x01\x02",
    "decimal": Decimal("1.5"),
    "boolean": True,
    "table": {"n": 1},
}


@pytest.fixture
def publish_with_headers(infra, settings):
    """Publish an envelope to the events exchange with the given AMQP headers."""
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()

    def send(envelope: dict, headers: dict | None = None) -> None:
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=envelope["event_id"], headers=headers
        )
        channel.basic_publish(settings.exchange, envelope["type"], events.encode(envelope), props)

    yield send
    connection.close()


def intake_dead_letters(infra, settings) -> list[tuple[dict, dict]]:
    """(headers, envelope) of every event in intake's dead-letter queue, left there."""
    found = []
    for headers, body in dead_letters(infra.amqp_url, f"{settings.namespace}.intake.dead"):
        try:
            found.append((headers, events.decode(body)))
        except events.InvalidEvent:
            pass  # a poison message of this test's own
    return found


def _ghost_assignment(ticket_id: str) -> dict:
    """An event intake's handler fails on (no such ticket): it goes the retry path."""
    data = {
        "agent_id": "jane",
        "agent_name": "Jane",
        "agent_email": "jane@example.com",
        "team": "network",
        "reason": "claim",
    }
    return event_from("assignment", "ticket.assigned", ticket_id, data)


def test_a_failing_message_with_an_unusable_attempt_header_is_dead_lettered_and_the_next_one_flows(
    infra, settings, make_ticket, intake_db, publish_with_headers, spawn_worker
):
    worker = spawn_worker("intake")
    first = make_ticket()
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": first["id"]}), timeout=15)
    marker = uuid.uuid4().hex
    ghosts = {name: f"ghost-{name}-{marker}" for name in BROKEN_ATTEMPTS}
    for name, value in BROKEN_ATTEMPTS.items():
        publish_with_headers(_ghost_assignment(ghosts[name]), {"x-ticketflow-attempt": value})
    after = make_ticket()  # its ticket.created queues up behind the broken messages
    wait_until(
        lambda: intake_db.timeline.find_one({"ticket_id": after["id"]}),
        timeout=15,
        message="the message behind the broken ones was not processed",
    )

    def all_dead():
        letters = {env["ticket_id"]: headers for headers, env in intake_dead_letters(infra, settings)}
        return letters if all(ghost in letters for ghost in ghosts.values()) else None

    letters = wait_until(all_dead, timeout=15, message="not every broken message reached the DLQ")
    for name, ghost in ghosts.items():
        headers = letters[ghost]
        assert headers["x-ticketflow-reason"] == "invalid", (name, headers)
        assert "x-ticketflow-attempt" in headers["x-ticketflow-error"], (name, headers)
        assert "No ticket" in headers["x-ticketflow-error"], (name, headers)  # the handler's own failure too
    dead_ids = [env["ticket_id"] for _, env in intake_dead_letters(infra, settings)]
    assert all(dead_ids.count(ghost) == 1 for ghost in ghosts.values())  # once each, not once per reconnect
    assert "reconnecting" not in worker.log_text()
    assert worker.running


def test_an_event_from_the_future_is_dead_lettered_and_the_ticket_still_changes(
    infra, settings, make_ticket, intake_db, publish_with_headers, spawn_worker
):
    worker = spawn_worker("intake")
    ticket = make_ticket(priority="normal")
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": ticket["id"]}), timeout=15)
    forged = event_from(
        "assignment",
        "ticket.priority_changed",
        ticket["id"],
        {"priority": "low", "previous_priority": "normal"},
        occurred_at=datetime.now(UTC) + timedelta(days=365),
    )
    publish_with_headers(forged)
    real = event_from(
        "assignment", "ticket.priority_changed", ticket["id"], {"priority": "emergency", "previous_priority": "normal"}
    )
    publish_with_headers(real)
    wait_until(
        lambda: intake_db.tickets.find_one({"_id": ticket["id"], "priority": "emergency"}),
        timeout=15,
        message="a real change after the forged one was not applied",
    )

    def dead():
        return [h for h, env in intake_dead_letters(infra, settings) if env["event_id"] == forged["event_id"]] or None

    (headers,) = wait_until(dead, timeout=15, message="the event from the future did not reach the DLQ")
    assert headers["x-ticketflow-reason"] == "invalid"
    assert "future" in headers["x-ticketflow-error"] and "occurred_at" in headers["x-ticketflow-error"]
    assert intake_db.timeline.find_one({"_id": forged["event_id"]}) is None  # no handler ran for it
    assert "reconnecting" not in worker.log_text()
