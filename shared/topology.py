"""Who consumes what, and the RabbitMQ objects that carry it: exchange, service queues, retries, dead letters.

Publishers declare the whole topology when they connect, so an event is never published before
the queues of the services that consume it exist (the mandatory flag alone only proves that some
queue took it). Each service's worker binds exactly the types it has handlers for; a unit test
keeps the two in step. Every (re)connect declares again: pika has no automatic recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.events import EVENT_TYPES

SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "intake": EVENT_TYPES,  # every event of every ticket goes on its timeline (agent.updated: who reads which)
    "assignment": (
        "ticket.created",
        "ticket.reopened",
        "ticket.closed",
        "ticket.message_added",
        "sla.warning",
        "sla.breached",
        "sla.deadlines_changed",  # the queue's order: soonest deadline first
    ),
    "sla": (
        "ticket.created",
        "ticket.assigned",  # the ticket's team and agent: who may read its clocks
        "agent.updated",  # an agent's teams: the same
        "ticket.message_added",
        "ticket.replied",
        "ticket.status_changed",
        "ticket.priority_changed",
        "ticket.resolved",
        "ticket.reopened",
        "ticket.closed",
        "sla.breached",  # its own, once published: the record behind GET /breaches
    ),
    # every ticket and sla event (emails and webhooks), agent.updated (who reads which notifications);
    # never notification.*, which a webhook would feed
    "notify": tuple(kind for kind in EVENT_TYPES if not kind.startswith("notification.")),
    # what a ticket's words are (never a note: no event carries one), its status, team and agent; agent.updated:
    # which tickets an agent may find
    "search": (
        "ticket.created",
        "ticket.message_added",
        "ticket.replied",
        "ticket.assigned",
        "ticket.status_changed",
        "ticket.resolved",
        "ticket.reopened",
        "ticket.closed",
        "agent.updated",
    ),
}


def queue_name(settings: Settings, service: str) -> str:
    return f"{settings.namespace}.{service}"


def retry_queue_name(settings: Settings, service: str, delay: float) -> str:
    return f"{settings.namespace}.{service}.retry.{int(delay * 1000)}ms"


def requeue_exchange_name(settings: Settings, service: str) -> str:
    """The service's own way back into its queues (a direct exchange; routing key: the queue's name): its
    consumer's retries and dead letters, and `ticketflow dead-letters replay`. Its broker user may write to no
    other exchange but the events one, where its topic permission names the types it may publish."""
    return f"{settings.namespace}.{service}.requeue"


def exchange_names(settings: Settings) -> list[str]:
    """Every exchange of the namespace: the events one and each service's requeue exchange (for a clean-up)."""
    return [settings.exchange, *(requeue_exchange_name(settings, service) for service in SUBSCRIPTIONS)]


def queue_arguments(settings: Settings, arguments: dict | None = None) -> dict | None:
    """A queue's declare arguments: `x-queue-type` is added for quorum queues only.

    Classic queues keep exactly the arguments they have always been declared with, so a broker that
    already holds them does not refuse the declaration (PRECONDITION_FAILED). Quorum queues need
    RabbitMQ 3.10 or later, where they honour x-message-ttl (the retry queues rely on it).
    """
    if settings.queue_type == "quorum":
        return {**(arguments or {}), "x-queue-type": "quorum"}
    return arguments


def declare_exchange(channel, settings: Settings) -> None:
    """The events exchange; with TICKETFLOW_BROKER_TOPOLOGY=definitions only checked (a passive declare, which
    needs no right: a service's user may not configure it, hence not delete it)."""
    passive = settings.broker_topology == "definitions"
    channel.exchange_declare(settings.exchange, exchange_type="topic", durable=True, passive=passive)


def declare_service_topology(channel, settings: Settings, service: str, types: list[str]) -> str:
    """The service's durable queue bound to its event types, its retry queues and its dead-letter queue, and its
    requeue exchange bound to each of them by name."""
    declare_exchange(channel, settings)
    queue = queue_name(settings, service)
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(settings))
    channel.queue_declare(f"{queue}.dead", durable=True, arguments=queue_arguments(settings))
    retries = [retry_queue_name(settings, service, delay) for delay in settings.retry_delays]
    for delay, retry in zip(settings.retry_delays, retries, strict=True):
        if settings.broker_topology == "definitions":
            _held(channel, retry)
            continue
        args = {"x-message-ttl": int(delay * 1000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
        channel.queue_declare(retry, durable=True, arguments=queue_arguments(settings, args))
    for event_type in types:
        channel.queue_bind(queue, settings.exchange, routing_key=event_type)
    requeue = requeue_exchange_name(settings, service)
    channel.exchange_declare(requeue, exchange_type="direct", durable=True)
    for own in (queue, f"{queue}.dead", *retries):
        channel.queue_bind(own, requeue, routing_key=own)
    return queue


class MissingTopology(RuntimeError):
    """A queue the definitions should hold is not on the broker (TICKETFLOW_BROKER_TOPOLOGY=definitions)."""


def _held(channel, queue: str) -> None:
    """A retry queue, with TICKETFLOW_BROKER_TOPOLOGY=definitions: only checked (a passive declare). It dead-letters
    into the default exchange, and a declare with that argument needs a right to write there, which a service's
    user has not (it would reach any queue by its name: deploy/rabbitmq/generate_definitions.py)."""
    from pika.exceptions import ChannelClosedByBroker

    try:
        channel.queue_declare(queue, passive=True)
    except ChannelClosedByBroker as exc:
        raise MissingTopology(
            f"the broker has no queue {queue}: import deploy/rabbitmq/definitions.json (written for the default "
            "TICKETFLOW_RETRY_DELAYS; other delays need the definitions written again with them)"
        ) from exc


def declare_topology(channel, settings: Settings) -> None:
    """What a publisher declares when it connects (idempotent): every registered service's queues and bindings,
    so that no event is unroutable before a worker first starts; with TICKETFLOW_BROKER_TOPOLOGY=definitions, where
    the broker holds them all from the start and a service's user may declare only its own, the exchange alone."""
    if settings.broker_topology == "definitions":
        declare_exchange(channel, settings)
        return
    for service, types in SUBSCRIPTIONS.items():
        declare_service_topology(channel, settings, service, list(types))


@dataclass(frozen=True)
class QueueCounts:
    """A service's queues as the broker counts them; None where a queue is not declared (yet)."""

    messages: int | None  # ready in `<ns>.<service>`
    consumers: int | None  # consuming from it
    retrying: int | None  # waiting in its retry queues
    dead: int | None  # in `<ns>.<service>.dead`


def queue_counts(connection, settings: Settings, service: str) -> QueueCounts:
    """Counts of a service's queues by passive declares on a pika BlockingConnection: nothing is created."""
    queue = queue_name(settings, service)
    work, dead = _passive(connection, queue), _passive(connection, f"{queue}.dead")
    retries = [_passive(connection, retry_queue_name(settings, service, delay)) for delay in settings.retry_delays]
    found = [retry for retry in retries if retry is not None]
    return QueueCounts(
        messages=work.message_count if work else None,
        consumers=work.consumer_count if work else None,
        retrying=sum(retry.message_count for retry in found) if found else None,
        dead=dead.message_count if dead else None,
    )


def _passive(connection, name: str):
    """queue_declare's answer (message_count, consumer_count), or None when the broker has no such queue."""
    from pika.exceptions import ChannelClosedByBroker

    channel = connection.channel()
    try:
        method = channel.queue_declare(name, passive=True).method
    except ChannelClosedByBroker:  # 404: the broker closes the channel
        return None
    channel.close()
    return method
