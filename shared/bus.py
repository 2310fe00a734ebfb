"""RabbitMQ plumbing: connection parameters and a publisher with confirms and the mandatory flag.

A BlockingConnection is not thread-safe: each thread that talks to the broker owns its own
connection (shared/consumer.py consumes; shared/relay.py's flusher and relay publish).
"""

from __future__ import annotations

import logging
import os
import time

import pika
from pika.exceptions import AMQPError, NackError, UnroutableError

from shared import metrics
from shared.config import Settings
from shared.topology import declare_topology

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (AMQPError, OSError, ConnectionError)


class PublishError(Exception):
    """The broker did not take the event (down, nacked, or nobody bound to its type)."""


class Unroutable(PublishError):
    """No queue is bound to the event's type yet: it stays in the outbox."""


def parameters(settings: Settings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    params.connection_attempts = 1
    params.client_properties = {"connection_name": f"{settings.namespace}.{name}"}
    return params


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

    @property
    def connected(self) -> bool:
        """Whether the last publish left an open channel (False once the broker was found unavailable)."""
        return self._channel is not None and self._channel.is_open

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


class BrokerProbe:
    """/readyz's broker check: one connection per process, kept and looked at, not one opened per probe.

    A look also answers the broker's heartbeats. A connection the broker dropped meanwhile (a restart,
    probes further apart than the heartbeat) is replaced at once, and the new one's opening is the answer.
    """

    def __init__(self, settings: Settings, timeout: float = 1.0) -> None:
        self.settings, self.timeout = settings, timeout
        self._connection = None
        self._pid = os.getpid()

    def answers(self) -> bool:
        if self._pid != os.getpid():  # a forked gunicorn process: the parent's socket is not ours
            self._connection, self._pid = None, os.getpid()
        if self._connection is not None:
            try:
                self._connection.process_data_events(0)
                return True
            except CONNECTION_ERRORS:
                self.close()
        params = parameters(self.settings, "readyz")
        params.socket_timeout = self.timeout
        params.blocked_connection_timeout = self.timeout
        try:
            self._connection = pika.BlockingConnection(params)
            return True
        except CONNECTION_ERRORS:
            return False

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass
