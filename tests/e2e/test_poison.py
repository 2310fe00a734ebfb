"""One message that fails with an attempt header no consumer can use, in every service's queue at once.

Each such message goes to its service's dead-letter queue once, with its reason, and the ticket created
right after it flows through every service as if nothing had happened: no queue stalls behind it.
"""

from __future__ import annotations

import uuid

import pika

from shared import events
from shared.config import load_settings
from shared.consumer import ATTEMPT_HEADER, REASON_HEADER
from tests.e2e.conftest import System
from tests.e2e.test_lifecycle import REQUESTER, help_desk, submit
from tests.harness import dead_letters, wait_until
from tests.integration.conftest import event_from

# An event each service handles, about a ticket nobody knows: its handler fails (the ticket is not known yet),
# and the retry path then meets the attempt header.
FAILING = {
    "intake": ("assignment", "ticket.resolved", {"agent_id": "ghost", "resolution": "Done."}),
    "assignment": ("intake", "ticket.reopened", {"reason": "The requester wrote again."}),
    "sla": ("assignment", "ticket.resolved", {"agent_id": "ghost", "resolution": "Done."}),
    "notify": ("assignment", "ticket.resolved", {"agent_id": "ghost", "resolution": "Done."}),
}


def _poison(amqp_url: str, namespace: str) -> dict[str, str]:
    """Publish one failing event with attempt header "abc" into each service's own queue; {service: ticket id}."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel, sent = connection.channel(), {}
    channel.confirm_delivery()
    for service, (producer, kind, data) in FAILING.items():
        envelope = event_from(producer, kind, uuid.uuid4().hex, data)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=envelope["event_id"], headers={ATTEMPT_HEADER: "abc"})  # fmt: skip
        channel.basic_publish("", f"{namespace}.{service}", events.encode(envelope), props)
        sent[service] = envelope["ticket_id"]
    connection.close()
    return sent


def test_a_message_with_a_broken_attempt_header_is_dead_lettered_once_and_the_next_ticket_flows(start_system):
    system: System = start_system(workers=1)
    settings = load_settings()
    desk = help_desk(system, agents=1, capacity=5)
    poisoned = _poison(settings.amqp_url, settings.namespace)

    def dead(service: str) -> list[dict]:
        letters = dead_letters(settings.amqp_url, f"{settings.namespace}.{service}.dead")
        return [headers for headers, body in letters if events.decode(body)["ticket_id"] == poisoned[service]]

    for service in FAILING:
        (headers,) = wait_until(lambda service=service: dead(service), timeout=30, message=f"{service}'s dead letter")
        assert headers[REASON_HEADER] == "invalid" and ATTEMPT_HEADER in headers["x-ticketflow-error"], headers

    ticket = submit(system, desk["topic"])
    agent = desk["agents"][0]
    path = f"/tickets/{ticket['id']}"
    wait_until(lambda: system.ok("GET", "assignment", path)["agent_id"] == agent["id"], timeout=30)
    wait_until(lambda: system.ok("GET", "intake", path)["status"] == "assigned", timeout=30)
    clocks = wait_until(lambda: system.ok("GET", "sla", path)["clocks"], timeout=30)  # sla may come after the others
    assert clocks["first_response"]["state"] == "running"
    wait_until(lambda: system.emails_to(REQUESTER["email"], ticket["number"]), timeout=30)  # the receipt
    wait_until(lambda: system.emails_to(agent["email"], ticket["number"]), timeout=30)  # the assignment
    for service in FAILING:  # once, never again: nothing retried it behind the next ticket
        assert len(dead(service)) == 1, service
