"""`ticketflow dead-letters`: reading a service's dead letters leaves them there; moving them back gives each its
retries again, on the real broker (and, once, through a real worker)."""

from __future__ import annotations

import io
import json
import uuid

import pika
import pytest

from shared import topology
from shared.config import load_settings
from shared.consumer import ATTEMPT_HEADER, ERROR_HEADER, REASON_HEADER
from shared.topology import SUBSCRIPTIONS
from tests.conftest import own_namespace
from tests.harness import dead_letters, wait_until
from tests.integration.conftest import event_from
from ticketflow import deadletters


@pytest.fixture
def settings(infra):
    """Each test's own queues: the dead letters of one are never another's."""
    with own_namespace("t"):
        yield load_settings()


@pytest.fixture
def channel(infra, settings):
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    channel = connection.channel()
    topology.declare_service_topology(channel, settings, "intake", list(SUBSCRIPTIONS["intake"]))
    channel.confirm_delivery()  # each publish returns once the queue holds it: counted by the next look
    yield channel
    connection.close()


@pytest.fixture
def connection(infra):
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    yield connection
    connection.close()


def _bury(channel, settings, reason: str, **extra) -> str:
    """A dead letter in intake's dead-letter queue, as the consumer leaves one; its event id."""
    event_id = str(uuid.uuid4())
    body = json.dumps({"event_id": event_id, "type": "ticket.assigned", "ticket_id": f"t-{event_id[:8]}"}).encode()
    headers = {ATTEMPT_HEADER: 3, REASON_HEADER: reason, ERROR_HEADER: f"KeyError: {reason}",
               "x-ticketflow-service": "intake", "x-ticketflow-dead-at": "2026-12-05T10:00:00.000Z",
               "x-correlation-id": "c-1", **extra}  # fmt: skip
    props = pika.BasicProperties(message_id=event_id, type="ticket.assigned", headers=headers, delivery_mode=2)
    channel.basic_publish("", f"{settings.namespace}.intake.dead", body, props)
    return event_id


def _ids(found) -> list[str]:
    return [json.loads(body)["event_id"] for _, body in found]


def test_reading_leaves_every_dead_letter_where_it_was_and_says_why_each_died(channel, connection, settings):
    first, second = _bury(channel, settings, "failed"), _bury(channel, settings, "rejected")
    total, letters = deadletters.read(connection, settings, "intake", limit=1)
    assert total == 2
    (letter,) = letters
    assert (letter.event_id, letter.reason, letter.error) == (first, "failed", "KeyError: failed")

    out = io.StringIO()
    deadletters.list_command(settings, ["intake"], 5, out=out)
    said = out.getvalue()
    assert "intake: 2 dead letters" in said and first in said and second in said and "KeyError: rejected" in said
    queue = f"{settings.namespace}.intake.dead"
    assert _ids(dead_letters(settings.amqp_url, queue)) == [first, second]  # still there, in order


def test_a_replay_moves_back_those_asked_for_without_their_retry_count_and_keeps_the_others_in_order(
    channel, connection, settings
):
    failed = [_bury(channel, settings, "failed") for _ in range(2)]
    rejected = _bury(channel, settings, "rejected", **{"x-death": [{"reason": "delivery_limit", "count": 1}]})
    failed.append(_bury(channel, settings, "failed"))

    moved, left = deadletters.replay(connection, settings, "intake", reason="failed", limit=2)
    assert (moved, left) == (2, 2)
    back = [channel.basic_get(f"{settings.namespace}.intake", auto_ack=True) for _ in range(3)]
    assert back[2][0] is None  # two, not three
    for (_, props, body), event_id in zip(back[:2], failed[:2], strict=True):
        assert json.loads(body)["event_id"] == event_id and props.message_id == event_id
        headers = props.headers
        assert not {ATTEMPT_HEADER, REASON_HEADER, ERROR_HEADER, "x-ticketflow-dead-at"} & set(headers)
        assert headers["x-correlation-id"] == "c-1" and headers[deadletters.REPLAYED_HEADER]
    assert _ids(dead_letters(settings.amqp_url, f"{settings.namespace}.intake.dead")) == [rejected, failed[2]]

    assert deadletters.replay(connection, settings, "intake", event_id=rejected) == (1, 1)
    _, props, _ = channel.basic_get(f"{settings.namespace}.intake", auto_ack=True)
    assert props.message_id == rejected and "x-death" not in props.headers


def test_a_message_the_broker_does_not_take_back_stops_the_replay_and_stays_dead(
    channel, connection, settings, monkeypatch
):
    """The queue went away between the check and the move (the broker answers the publish as unroutable): the replay
    stops there, saying so, and that message and those after it are dead letters still, in their order."""
    buried = [_bury(channel, settings, "failed") for _ in range(2)]
    nowhere = f"{settings.namespace}.intake.gone"
    counted, dead = deadletters._count, deadletters.dead_queue(settings, "intake")
    monkeypatch.setattr(deadletters, "dead_queue", lambda settings, service: dead)
    monkeypatch.setattr(deadletters, "queue_name", lambda settings, service: nowhere)
    monkeypatch.setattr(
        deadletters, "_count", lambda channel, queue: 0 if queue == nowhere else counted(channel, queue)
    )

    with pytest.raises(deadletters.DeadLetterError, match="did not take a message back \\(UnroutableError\\)"):
        deadletters.replay(connection, settings, "intake")

    assert _ids(dead_letters(settings.amqp_url, dead)) == buried


def test_an_unknown_service_or_a_queue_never_declared_is_said_in_words(connection, settings):
    with pytest.raises(deadletters.DeadLetterError, match="one of: assignment"):
        deadletters.replay(connection, settings, "billing")
    with pytest.raises(deadletters.DeadLetterError, match="has the service's worker run yet"):
        deadletters.read(connection, settings, "search", limit=5)  # nothing declared search's queues here


def test_a_replay_on_a_broker_upgraded_before_its_worker_ran_says_why_and_keeps_the_letters(channel, settings):
    """A change review's find: a broker whose queues an older version declared has no requeue exchange until the
    service's worker connects; the replay's publish there was a traceback."""
    event_id = _bury(channel, settings, "failed")
    channel.exchange_delete(topology.requeue_exchange_name(settings, "intake"))

    with pytest.raises(deadletters.DeadLetterError, match="has the service's worker run since the upgrade"):
        deadletters.replay(channel.connection, settings, "intake")

    total, letters = deadletters.read(channel.connection, settings, "intake", limit=5)
    assert total == 1 and [letter.event_id for letter in letters] == [event_id]


def test_a_replayed_event_that_fails_again_gets_every_retry_again_through_the_real_worker(
    infra, settings, spawn_worker, publish
):
    worker = spawn_worker("intake")
    ghost = event_from(
        "assignment",
        "ticket.assigned",
        f"ghost-{uuid.uuid4().hex}",
        {"agent_id": "jane", "agent_name": "Jane", "agent_email": "jane@example.com", "team": "network",
         "reason": "claim"},
    )  # fmt: skip
    publish("ticket.assigned", ghost)
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    try:
        queue = f"{settings.namespace}.intake.dead"
        dead = lambda: [h for h, body in dead_letters(infra.amqp_url, queue) if ghost["ticket_id"].encode() in body]  # noqa: E731
        (headers,) = wait_until(dead, timeout=30, message="the ghost's assignment did not die")
        assert headers[ATTEMPT_HEADER] == len(settings.retry_delays)

        attempts = len(settings.retry_delays) + 1
        assert _failures(worker) == attempts

        assert deadletters.replay(connection, settings, "intake") == (1, 0)
        (again,) = wait_until(dead, timeout=30, message="the replayed assignment did not die again")
        assert again[ATTEMPT_HEADER] == len(settings.retry_delays) and again[REASON_HEADER] == "failed"
        assert deadletters.REPLAYED_HEADER in again
        # every attempt again: had it kept its count, it would have died at its first failure (attempts + 1)
        assert _failures(worker) == 2 * attempts
    finally:
        connection.close()


def _failures(worker) -> int:
    return worker.log_text().count("handler for ticket.assigned failed")
