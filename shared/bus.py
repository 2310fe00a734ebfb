"""RabbitMQ plumbing: topology, a confirming publisher, and a consumer that retries and dead-letters.

pika has no automatic recovery, so the exchange, queues, bindings and QoS are declared again on
every connect. A BlockingConnection is not thread-safe: each thread that talks to the broker owns
its own connection (the consumer runs handlers on a helper thread and keeps pumping I/O itself,
so heartbeats go on while a handler runs).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

import pika
from pika.exceptions import AMQPError, NackError, UnroutableError

from shared import events, metrics
from shared.config import Settings

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-ticketflow-attempt"
REASON_HEADER = "x-ticketflow-reason"
ERROR_HEADER = "x-ticketflow-error"
CONNECTION_ERRORS = (AMQPError, OSError, ConnectionError)


class PublishError(Exception):
    """The broker did not take the event (down, nacked, or nobody bound to its type)."""


class Unroutable(PublishError):
    """No queue is bound to the event's type yet: it stays in the outbox."""


class PermanentError(Exception):
    """A handler's verdict that a message can never succeed: dead-letter it without retries."""


def parameters(settings: Settings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    params.connection_attempts = 1
    params.client_properties = {"connection_name": f"{settings.namespace}.{name}"}
    return params


def queue_name(settings: Settings, service: str) -> str:
    return f"{settings.namespace}.{service}"


def retry_queue_name(settings: Settings, service: str, delay: float) -> str:
    return f"{settings.namespace}.{service}.retry.{int(delay * 1000)}ms"


def declare_exchange(channel, settings: Settings) -> None:
    channel.exchange_declare(settings.exchange, exchange_type="topic", durable=True)


def declare_service_topology(channel, settings: Settings, service: str, types: list[str]) -> str:
    """The service's durable queue bound to its event types, its retry queues and its dead-letter queue."""
    declare_exchange(channel, settings)
    queue = queue_name(settings, service)
    channel.queue_declare(queue, durable=True)
    channel.queue_declare(f"{queue}.dead", durable=True)
    for delay in settings.retry_delays:
        args = {"x-message-ttl": int(delay * 1000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
        channel.queue_declare(retry_queue_name(settings, service, delay), durable=True, arguments=args)
    for event_type in types:
        channel.queue_bind(queue, settings.exchange, routing_key=event_type)
    return queue


def declare_topology(channel, settings: Settings) -> None:
    """Every registered service's queues and bindings (idempotent; done by each publisher on connect)."""
    from shared.topology import SUBSCRIPTIONS

    for service, types in SUBSCRIPTIONS.items():
        declare_service_topology(channel, settings, service, list(types))


class Publisher:
    """Publishes envelopes persistently, with confirms and the mandatory flag. One per thread."""

    def __init__(self, settings: Settings, service: str, retry_after: float = 1.0) -> None:
        self.settings, self.service, self.retry_after = settings, service, retry_after
        self._connection = None
        self._channel = None
        self._down_until = 0.0

    def _ensure(self):
        if self._channel is not None and self._channel.is_open:
            return self._channel
        if time.monotonic() < self._down_until:
            raise PublishError("broker unavailable (waiting before reconnecting)")
        self.close()
        try:
            self._connection = pika.BlockingConnection(parameters(self.settings, f"{self.service}.publisher"))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            declare_topology(self._channel, self.settings)
        except CONNECTION_ERRORS as exc:
            self._down_until = time.monotonic() + self.retry_after
            self.close()
            raise PublishError(f"broker unavailable: {exc!r}") from exc
        return self._channel

    def publish_entry(self, event_id: str, entry: dict) -> None:
        """Publish one outbox entry (validated when it was staged); returns once the broker confirmed it."""
        event_type = entry["type"]
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event_id,
            correlation_id=entry.get("correlation_id"),
            type=event_type,
            timestamp=int(time.time()),
            app_id=self.service,
        )
        body = entry["body"].encode()
        for attempt in (1, 2):  # a connection the broker closed since the last publish is reopened once
            channel = self._ensure()
            try:
                channel.basic_publish(self.settings.exchange, event_type, body, props, mandatory=True)
                break
            except UnroutableError as exc:
                raise Unroutable(f"no queue is bound to {event_type}") from exc
            except NackError as exc:
                raise PublishError(f"broker refused {event_type}") from exc
            except CONNECTION_ERRORS as exc:
                self.close()
                if attempt == 2:
                    raise PublishError(f"publish failed: {exc!r}") from exc
        metrics.EVENTS_PUBLISHED.labels(self.service, event_type).inc()

    def keepalive(self) -> None:
        """Answer heartbeats on an idle connection (a BlockingConnection does I/O only when called)."""
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.process_data_events(0)
            except CONNECTION_ERRORS:
                self.close()

    def ping(self) -> bool:
        try:
            self._ensure()
            self._connection.process_data_events(0)
            return True
        except (PublishError, *CONNECTION_ERRORS):
            self.close()
            return False

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass


def broker_answers(settings: Settings, timeout: float = 2.0) -> bool:
    """Whether an AMQP connection can be opened now (for /readyz)."""
    params = parameters(settings, "readyz")
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    try:
        pika.BlockingConnection(params).close()
        return True
    except CONNECTION_ERRORS:
        return False


Handler = Callable[[dict], None]


class Consumer:
    """Consumes the service's queue: validate, dedupe, handle, then ack; retry or dead-letter on failure."""

    def __init__(self, settings: Settings, service: str, handlers: dict[str, Handler], idempotency, prefetch: int = 20):
        self.settings, self.service, self.handlers = settings, service, handlers
        self.idempotency = idempotency
        self.prefetch = prefetch
        self.stop = threading.Event()
        self.connected = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{service}-handler")

    def run(self) -> None:
        """Consume until stopped, reconnecting (and re-declaring everything) whenever the broker goes away."""
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self._consume_once()
                backoff = 0.5
                if not self.stop.is_set():
                    log.warning("%s: the broker cancelled the consumer; reconnecting", self.service)
            except CONNECTION_ERRORS as exc:
                log.warning("%s: broker connection lost (%r); reconnecting in %.1fs", self.service, exc, backoff)
            except Exception:  # a fault in the plumbing itself: unacked messages return to the queue
                log.exception("%s: consumer failed; reconnecting in %.1fs", self.service, backoff)
            self.connected.clear()
            self.stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        self._pool.shutdown(wait=True)

    def _consume_once(self) -> None:
        connection = pika.BlockingConnection(parameters(self.settings, f"{self.service}.consumer"))
        try:
            channel = connection.channel()
            queue = declare_service_topology(channel, self.settings, self.service, sorted(self.handlers))
            channel.basic_qos(prefetch_count=self.prefetch)
            republish = connection.channel()
            republish.confirm_delivery()
            self.connected.set()
            log.info("%s: consuming %s", self.service, queue)
            for method, props, body in channel.consume(queue, inactivity_timeout=0.5):
                if self.stop.is_set():
                    break
                if method is None:
                    continue
                self._deliver(connection, channel, republish, method, props, body)
        finally:
            if connection.is_open:
                try:
                    connection.close()
                except CONNECTION_ERRORS:
                    pass

    def _deliver(self, connection, channel, republish, method, props, body: bytes) -> None:
        headers = dict(props.headers or {})
        try:
            envelope = events.decode(body)
        except events.InvalidEvent as exc:
            self._dead_letter(republish, props, body, headers, "invalid", str(exc))
            channel.basic_ack(method.delivery_tag)
            return
        event_type, event_id = envelope["type"], envelope["event_id"]
        handler = self.handlers.get(event_type)
        if handler is None:
            self._dead_letter(
                republish, props, body, headers, "unhandled", f"{self.service} has no handler for {event_type}"
            )
            channel.basic_ack(method.delivery_tag)
            return
        error = self._run(connection, handler, envelope, event_id)
        if error is None:
            metrics.EVENTS_CONSUMED.labels(self.service, event_type, "ok").inc()
        elif error == "duplicate":
            metrics.EVENTS_CONSUMED.labels(self.service, event_type, "duplicate").inc()
        else:
            self._retry_or_dead_letter(republish, props, body, headers, event_type, error)
        channel.basic_ack(method.delivery_tag)

    def _run(self, connection, handler: Handler, envelope: dict, event_id: str):
        """Run the handler on the helper thread while this thread keeps the connection's I/O going."""

        def work():
            if self.idempotency.seen(event_id):
                return "duplicate"
            handler(envelope)
            self.idempotency.mark(event_id)
            return None

        future = self._pool.submit(work)
        while not wait([future], timeout=1.0).done:
            connection.process_data_events(time_limit=0)  # heartbeats while a slow handler runs
        try:
            return future.result()
        except PermanentError as exc:
            return exc
        except Exception as exc:  # any handler failure is retried, never acked as a success
            log.warning("%s: handler for %s failed: %r", self.service, envelope["type"], exc)
            return exc

    def _retry_or_dead_letter(self, republish, props, body, headers, event_type: str, error: Exception) -> None:
        attempt = int(headers.get(ATTEMPT_HEADER, 0))
        delays = self.settings.retry_delays
        if isinstance(error, PermanentError) or attempt >= len(delays):
            reason = "rejected" if isinstance(error, PermanentError) else "failed"
            detail = f"{type(error).__name__}: {error} (after {attempt + 1} attempts)"
            self._dead_letter(republish, props, body, headers, reason, detail)
            return
        headers.update({ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: f"{type(error).__name__}: {error}"[:1000]})
        target = retry_queue_name(self.settings, self.service, delays[attempt])
        republish.basic_publish("", target, body, _copy_props(props, headers), mandatory=True)
        metrics.EVENTS_RETRIED.labels(self.service, event_type).inc()

    def _dead_letter(self, republish, props, body, headers, reason: str, detail: str) -> None:
        headers.update(
            {
                REASON_HEADER: reason,
                ERROR_HEADER: detail[:1000],
                "x-ticketflow-service": self.service,
                "x-ticketflow-dead-at": events.format_time(datetime.now(UTC)),
            }
        )
        log.error("%s: dead-lettering a message (%s): %s", self.service, reason, detail[:300])
        dead = f"{queue_name(self.settings, self.service)}.dead"
        republish.basic_publish("", dead, body, _copy_props(props, headers), mandatory=True)
        metrics.EVENTS_DEAD_LETTERED.labels(self.service, reason).inc()


def _copy_props(props, headers: dict) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=props.content_type or "application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=props.message_id,
        correlation_id=props.correlation_id,
        type=props.type,
        timestamp=props.timestamp,
        app_id=props.app_id,
        headers=headers,
    )


def delete_topology(amqp_url: str, namespace: str) -> None:
    """Delete the exchange and every queue of a namespace (test sessions clean up after themselves)."""
    settings = Settings(amqp_url=amqp_url, namespace=namespace)
    names = _list_queues(namespace) if shutil.which("rabbitmqctl") else None
    if names is None:
        names = []
        for service in ("intake", "assignment", "sla", "notify"):
            base = queue_name(settings, service)
            names += [base, f"{base}.dead"] + [retry_queue_name(settings, service, d) for d in settings.retry_delays]
    connection = pika.BlockingConnection(parameters(settings, "cleanup"))
    try:
        for name in names:
            channel = connection.channel()
            try:
                channel.queue_delete(name)
                channel.close()
            except AMQPError:
                pass
        connection.channel().exchange_delete(settings.exchange)
    finally:
        connection.close()


def _list_queues(namespace: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{namespace}.")]
