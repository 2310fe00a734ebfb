"""The broker stops for 10 seconds in the middle of 200 tickets, then starts again: nothing lost, nothing doubled.

The system runs on a RabbitMQ node of the module's own (tests/brokerserver.py) with quorum queues, so that the
machine's broker, shared by every other test, is never stopped. While the node is down (10 s, then the ~20 s it
takes to boot), intake still answers 201: each ticket and its events wait in intake's outbox, and the relay sends
them once the node is back. Consumers reconnect and declare their queues again; a message whose ack the stop cut
off comes again and is recognised as handled. Afterwards each ticket was assigned once, its receipt and its
assignment email arrived once each, and no queue holds a dead letter.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pika
import pytest

from shared.config import SERVICE_PORTS, load_settings
from shared.topology import queue_arguments, queue_counts, queue_name
from tests.brokerserver import running_rabbitmq
from tests.e2e.checks import each_ticket_once
from tests.e2e.conftest import System
from tests.e2e.test_lifecycle import REQUESTER, help_desk

QUORUM = {"TICKETFLOW_QUEUE_TYPE": "quorum"}
ROOMY = {"TICKETFLOW_REQUESTER_TICKETS_PER_HOUR": "1000"}  # 200 tickets of one requester: not the limit's test
BEFORE, WHILE_DOWN, WHILE_BOOTING = 70, 60, 70  # 200 tickets
DOWN = 10.0  # seconds the node stays stopped


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory):
    """The module's own RabbitMQ node (it takes 20 s or more to boot here: one for the module)."""
    with running_rabbitmq(tmp_path_factory.mktemp("rabbitmq")) as node:
        yield node


def submit_201(system: System, topic: str, count: int) -> list[dict]:
    """`count` tickets from 8 threads, each answered 201 (Created), whatever the broker is doing."""
    request = {"subject": "Laptop for a new hire", "description": "Starts on Monday.", "requester": REQUESTER,
               "topic": topic, "priority": "normal", "source": "web"}  # fmt: skip

    def one(_: int) -> dict:
        status, body = system.call("POST", "intake", "/tickets", role="portal", json=request)
        assert status == 201, (status, body)
        return body

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def queues_are_quorum(amqp_url: str) -> bool:
    """Each service's queues as the workers declared them: a declaration with x-queue-type quorum is refused
    (PRECONDITION_FAILED) for a classic queue of the same name."""
    settings = load_settings({**os.environ, **QUORUM})
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for service in SERVICE_PORTS:
            for name in (queue_name(settings, service), f"{queue_name(settings, service)}.dead"):
                channel = connection.channel()
                channel.queue_declare(name, durable=True, arguments=queue_arguments(settings))
                channel.close()
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        connection.close()
    return True


def dead_lettered(amqp_url: str) -> dict[str, int]:
    settings = load_settings()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return {service: queue_counts(connection, settings, service).dead for service in SERVICE_PORTS}
    finally:
        connection.close()


@pytest.mark.timeout(600)  # 200 tickets through one worker per service: 4 to 5 minutes on a busy 2-core machine
def test_the_broker_stopped_for_10_s_in_the_middle_of_200_tickets_loses_nothing_and_doubles_nothing(
    fresh_store, start_system, rabbit
):
    system = start_system(workers=1, amqp_url=rabbit.url, mongo_url=fresh_store, env={**QUORUM, **ROOMY}, search=True)
    assert queues_are_quorum(rabbit.url)
    desk = help_desk(system, agents=4, capacity=60)  # 240 places for 200 tickets: every ticket gets an agent

    tickets = submit_201(system, desk["topic"], BEFORE)
    rabbit.stop()
    stopped_at = time.monotonic()
    assert not rabbit.answers()
    tickets += submit_201(system, desk["topic"], WHILE_DOWN)
    time.sleep(max(0.0, DOWN - (time.monotonic() - stopped_at)))  # the outage itself: 10 s, as asked
    with ThreadPoolExecutor(1) as pool:
        booting = pool.submit(rabbit.start)
        tickets += submit_201(system, desk["topic"], WHILE_BOOTING)
        booting.result()

    assert len({t["id"] for t in tickets}) == BEFORE + WHILE_DOWN + WHILE_BOOTING
    each_ticket_once(system, desk, tickets)  # nothing killed: not even a resend
    assert dead_lettered(rabbit.url) == dict.fromkeys(SERVICE_PORTS, 0)
