"""`ticketflow dead-letters`: read a service's dead letters, and move them back to its queue once the cause is fixed.

A dead letter is the event as it was published, with the headers the consumer (or the broker) added on its way to
`<ns>.<service>.dead`: why (`x-ticketflow-reason`, `x-ticketflow-error`), when, and how many attempts it had. Moved
back, it starts afresh: those headers are dropped, so the consumer gives it every retry again (a message that kept
its attempt count would go straight back to the dead-letter queue at its first failure). The consumers are
idempotent: moving back a message that was in fact handled does no harm.

Reading takes each message without acknowledging it, and gives them all back when it is done (the broker puts
them back where they were). Moving publishes each one to the service's queue with the broker's confirmation, and
only then acknowledges it on the dead-letter queue: a move cut short leaves a message in both places at worst,
never in neither. It needs only what the service's own broker user may do (read its queues, write to the default
exchange), so it runs inside the service's worker container as well as beside `make run`.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import events
from shared.config import Settings
from shared.consumer import ATTEMPT_HEADER, ERROR_HEADER, REASON_HEADER, copy_props
from shared.topology import SUBSCRIPTIONS, queue_name, requeue_exchange_name

REPLAYED_HEADER = "x-ticketflow-replayed-at"  # when the message was last moved back (kept for whoever reads it later)
# what a message picked up on its way to the dead-letter queue: dropped when it is moved back
DROPPED = frozenset(
    {
        ATTEMPT_HEADER,
        REASON_HEADER,
        ERROR_HEADER,
        "x-ticketflow-service",
        "x-ticketflow-dead-at",
        "x-death",  # the broker's, on a message that reached its delivery limit
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)


class DeadLetterError(Exception):
    """What stops a command: said to the operator in one line."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as the operator reads it."""

    event_type: str
    event_id: str
    ticket_id: str
    reason: str
    error: str
    dead_at: str

    def matches(self, reason: str | None, event_id: str | None) -> bool:
        return (reason is None or self.reason == reason) and (event_id is None or self.event_id == event_id)

    @classmethod
    def of(cls, props, body: bytes) -> DeadLetter:
        headers = dict(props.headers or {})
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        envelope = envelope if isinstance(envelope, dict) else {}
        reason = _text(headers.get(REASON_HEADER)) or ("delivery_limit" if headers.get("x-death") else "")
        return cls(
            event_type=_text(envelope.get("type")) or _text(props.type) or "(not an event)",
            event_id=_text(envelope.get("event_id")) or _text(props.message_id),
            ticket_id=_text(envelope.get("ticket_id")),
            reason=reason or "(none given)",
            error=_text(headers.get(ERROR_HEADER)),
            dead_at=_text(headers.get("x-ticketflow-dead-at")),
        )


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split()) if value is not None else ""


def dead_queue(settings: Settings, service: str) -> str:
    return f"{queue_name(settings, service)}.dead"


def check_service(service: str) -> None:
    if service not in SUBSCRIPTIONS:
        known = ", ".join(sorted(SUBSCRIPTIONS))
        raise DeadLetterError(f"no service {service!r} consumes events; one of: {known}")


ACCESS_REFUSED = 403


def read(connection, settings: Settings, service: str, limit: int) -> tuple[int, list[DeadLetter] | None]:
    """(how many dead letters the service has, the first `limit` of them, oldest first); none is taken away. None
    for the letters when the broker user may not read them: another service's (its user reads its own only)."""
    from pika.exceptions import ChannelClosedByBroker

    check_service(service)
    channel = connection.channel()
    try:
        total = _count(channel, dead_queue(settings, service))  # a passive declare: any user may count
        letters = []
        for _ in range(min(total, limit)):
            method, props, body = channel.basic_get(dead_queue(settings, service), auto_ack=False)
            if method is None:
                break
            letters.append(DeadLetter.of(props, body))
        return total, letters
    except ChannelClosedByBroker as exc:
        if exc.reply_code != ACCESS_REFUSED:
            raise
        return total, None
    finally:
        if channel.is_open:
            channel.close()  # every message taken goes back where it was


def replay(
    connection,
    settings: Settings,
    service: str,
    *,
    reason: str | None = None,
    event_id: str | None = None,
    limit: int | None = None,
) -> tuple[int, int]:
    """Move the service's dead letters (those with `reason`, or the one `event_id`, up to `limit`) back to its
    queue, each without what it picked up on its way there; (how many moved, how many stay dead)."""
    import pika

    check_service(service)
    dead, target = dead_queue(settings, service), queue_name(settings, service)
    requeue = requeue_exchange_name(settings, service)  # the service's own way back in (its user's rights only)
    channel = connection.channel()
    try:
        channel.confirm_delivery()
        total = _count(channel, dead)
        _count(channel, target)  # the queue exists (its worker declared it): a move never publishes into nothing
        _exchange(channel, requeue)
        moved = 0
        for _ in range(total):  # as many as were there when it began: each is looked at once
            if limit is not None and moved >= limit:
                break
            try:
                method, props, body = channel.basic_get(dead, auto_ack=False)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != ACCESS_REFUSED:
                    raise
                raise DeadLetterError(  # a service's own broker user (compose, Kubernetes) reads its own only
                    f"this broker user may not read {dead}: run the command in {service}'s worker"
                ) from exc
            if method is None:
                break
            letter = DeadLetter.of(props, body)
            if not letter.matches(reason, event_id):
                continue  # held unacknowledged until the end, then given back where it was
            try:
                channel.basic_publish(requeue, target, body, _fresh(props), mandatory=True)
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                raise DeadLetterError(f"{target} did not take a message back ({type(exc).__name__}); stopped") from exc
            channel.basic_ack(method.delivery_tag)
            moved += 1
        return moved, total - moved
    finally:
        if channel.is_open:
            channel.close()


def _fresh(props):
    """The message's properties as it was published, without what the way to the dead-letter queue added."""
    headers = {key: value for key, value in (props.headers or {}).items() if key not in DROPPED}
    return copy_props(props, headers | {REPLAYED_HEADER: events.format_time(datetime.now(UTC))})


def _count(channel, queue: str) -> int:
    """The queue's ready messages, by a passive declare; DeadLetterError when the broker has no such queue."""
    from pika.exceptions import ChannelClosedByBroker

    try:
        return channel.queue_declare(queue, passive=True).method.message_count
    except ChannelClosedByBroker as exc:
        raise DeadLetterError(f"the broker has no queue {queue} (has the service's worker run yet?)") from exc


def _exchange(channel, exchange: str) -> None:
    """DeadLetterError when the broker has no such exchange (a passive declare, which needs no right)."""
    from pika.exceptions import ChannelClosedByBroker

    try:
        channel.exchange_declare(exchange, passive=True)
    except ChannelClosedByBroker as exc:
        raise DeadLetterError(
            f"the broker has no exchange {exchange} (has the service's worker run since the upgrade that added it?)"
        ) from exc


# --- the command --------------------------------------------------------------------------------------------


def connect(settings: Settings):
    import pika
    from pika.exceptions import AMQPError

    from shared.bus import parameters
    from ticketflow import local

    try:
        return pika.BlockingConnection(parameters(settings, "dead-letters"))
    except AMQPError as exc:
        raise DeadLetterError(f"RabbitMQ at {local.masked(settings.amqp_url)} does not answer: {exc!r}") from exc


def list_command(settings: Settings, services: list[str], limit: int, out=sys.stdout, connection=None) -> int:
    """Per service: how many dead letters, how many of each reason and type, and the first `limit` of them."""
    for service in services:
        check_service(service)
    connection = connection or connect(settings)
    try:
        for service in services or sorted(SUBSCRIPTIONS):
            total, letters = read(connection, settings, service, limit)
            print(f"{service}: {total} dead letter{'s' * (total != 1)} in {dead_queue(settings, service)}", file=out)
            if letters is None:  # a service's own broker user (compose, Kubernetes) reads its own queues only
                print(f"  not readable with this broker user: run the command in {service}'s worker", file=out)
                continue
            kinds = Counter((letter.reason, letter.event_type) for letter in letters)
            if len(letters) < total and kinds:
                print(f"  of the first {len(letters)}:", file=out)
            for (reason, event_type), count in sorted(kinds.items()):
                print(f"  {count:>5}  {reason:<20} {event_type}", file=out)
            for letter in letters:
                ticket = f" ticket {letter.ticket_id}" if letter.ticket_id else ""
                when = letter.dead_at or "(time unknown)"
                print(f"  - {when} {letter.event_type} {letter.event_id}{ticket}", file=out)
                print(f"    {letter.reason}: {letter.error[:300] or '(no error recorded)'}", file=out)
    finally:
        if connection.is_open:
            connection.close()
    return 0


def replay_command(
    settings: Settings, service: str, reason: str | None, event_id: str | None, limit: int | None, out=sys.stdout
) -> int:
    check_service(service)
    connection = connect(settings)
    try:
        moved, left = replay(connection, settings, service, reason=reason, event_id=event_id, limit=limit)
    finally:
        if connection.is_open:
            connection.close()
    print(
        f"{service}: {moved} moved back to {queue_name(settings, service)}, with every retry again; "
        f"{left} left in {dead_queue(settings, service)}",
        file=out,
    )
    return 0
