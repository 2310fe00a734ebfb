"""The portal's health figures against the real broker: queue counts by passive declares, nothing created."""

from __future__ import annotations

import dataclasses

import pika
import pytest

from services.portal import health
from shared.topology import QueueCounts, declare_service_topology, queue_name, retry_queue_name
from ticketflow.local import free_port


@pytest.fixture
def channel(infra):
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    yield connection.channel()
    connection.close()


def test_each_queue_is_counted_and_a_queue_never_declared_is_none(channel, settings):
    settings = dataclasses.replace(settings, retry_delays=(60.0, 600.0))  # nothing leaves a retry queue meanwhile
    declare_service_topology(channel, settings, "notify", [])
    work = queue_name(settings, "notify")
    for queue, messages in ((work, 3), (retry_queue_name(settings, "notify", 600.0), 2), (f"{work}.dead", 1)):
        for _ in range(messages):
            channel.basic_publish("", queue, b"{}")

    counts, problem = health.broker_counts(settings, ["notify", "intake"])
    assert problem is None
    assert counts["notify"] == QueueCounts(messages=3, consumers=0, retrying=2, dead=1)
    assert counts["intake"] == QueueCounts(None, None, None, None)  # not declared in this namespace: still not
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare(queue_name(settings, "intake"), passive=True)


def test_a_broker_that_does_not_answer_is_said_in_words(settings):
    nowhere = dataclasses.replace(settings, amqp_url=f"amqp://guest:secret@127.0.0.1:{free_port()}/%2F")
    counts, problem = health.broker_counts(nowhere, ["notify"])
    assert counts == {} and problem.startswith("RabbitMQ does not answer at 127.0.0.1:") and "secret" not in problem


def test_a_user_the_broker_refuses_is_said_so_not_as_a_broker_away(settings, infra):
    """A deploy that added the portal's user without the broker importing it (it does at boot) reads as such."""
    where = pika.URLParameters(infra.amqp_url)
    refused = dataclasses.replace(
        settings, amqp_url=f"amqp://tf-nobody:secret@{where.host}:{where.port}/%2F"
    )  # a user nobody made
    counts, problem = health.broker_counts(refused, ["notify"])
    assert counts == {} and "refused the portal's user 'tf-nobody'" in problem and "secret" not in problem
