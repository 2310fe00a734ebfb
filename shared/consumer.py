"""Consuming a service's queue: validate, handle, note its record (written with others), then ack; retry with
growing delays or dead-letter.

The handler runs on a helper thread while the consuming thread keeps pumping the connection's
I/O, so heartbeats go on during a slow handler (a BlockingConnection is not thread-safe: only the
consuming thread touches it). A retried message goes to this service's own retry queue, whose
TTL dead-letters it back into this service's queue only.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

import pika
import pika.data
import pika.exceptions
from pymongo.errors import ConnectionFailure

from shared import events, metrics, mongo
from shared.bus import CONNECTION_ERRORS, parameters
from shared.config import Settings
from shared.topology import (
    MissingTopology,
    declare_service_topology,
    queue_name,
    requeue_exchange_name,
    retry_queue_name,
)

log = logging.getLogger(__name__)

ACK_EVERY = 10  # deliveries acknowledged together at most (well under the prefetch: the broker never waits on us)
MISSING_WAIT = 30.0  # seconds between looks for a queue the broker lacks (TICKETFLOW_BROKER_TOPOLOGY=definitions)
ATTEMPT_HEADER = "x-ticketflow-attempt"
REASON_HEADER = "x-ticketflow-reason"
ERROR_HEADER = "x-ticketflow-error"


class PermanentError(Exception):
    """A handler's verdict that a message can never succeed: dead-letter it without retries."""


class _Stopping(Exception):
    """The worker stops while a message waits for the database: leave it unacked, the broker gives it again."""


Handler = Callable[[dict], None]


class Consumer:
    """Consumes the service's queue: validate, handle, note its record (written with others), then ack; retry or
    dead-letter on failure."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        handlers: dict[str, Handler],
        idempotency,
        prefetch: int = 20,
        stop: threading.Event | None = None,
    ):
        self.settings, self.service, self.handlers = settings, service, handlers
        self.idempotency = idempotency
        self.prefetch = prefetch
        self.stop = stop or threading.Event()  # the worker's: set, consuming ends after the message in hand
        self.connected = threading.Event()
        self._offline_since: float | None = time.monotonic()  # None while connected
        self._handling_since: float | None = None  # when the work on the helper thread began; None while idle
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{service}-handler")
        self._unacked = 0  # deliveries done but not acknowledged yet, the last of them `_unacked_tag` (see _ack)
        self._unacked_tag = 0
        self._republished = False  # the delivery in hand went to a retry or dead-letter queue: ack it at once
        self._requeue = requeue_exchange_name(settings, service)  # where its retries and dead letters go
        self.missing: str | None = None  # what the broker lacks that the definitions hold (shown by /livez)

    def run(self) -> None:
        """Consume until stopped, reconnecting (and re-declaring everything) whenever the broker goes away."""
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self._consume_once()
                backoff = 0.5
                if not self.stop.is_set():
                    log.warning("%s: the broker cancelled the consumer; reconnecting", self.service)
            except MissingTopology as exc:  # the broker lacks a queue the definitions hold: an operator's to mend
                self.missing = str(exc)
                log.error("%s: cannot consume: %s; looking again in %.0f s", self.service, exc, MISSING_WAIT)
                self._disconnected()
                self.stop.wait(MISSING_WAIT)
                continue
            except CONNECTION_ERRORS as exc:
                log.warning("%s: broker connection lost (%r); reconnecting in %.1fs", self.service, exc, backoff)
            except Exception:  # a fault in the plumbing itself: unacked messages return to the queue
                log.exception("%s: consumer failed; reconnecting in %.1fs", self.service, backoff)
            self._disconnected()
            self.stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        self._pool.shutdown(wait=True)

    def handling_for(self) -> float:
        """Seconds the message in hand has been handled so far: 0 while none is (for /livez: a hung handler)."""
        since = self._handling_since
        return 0.0 if since is None else time.monotonic() - since

    def offline_for(self) -> float:
        """Seconds since the consumer last had its broker connection (since it started, if never): 0 while it has."""
        since = self._offline_since
        return 0.0 if since is None else time.monotonic() - since

    def _connected(self) -> None:
        self._offline_since, self.missing = None, None
        self.connected.set()

    def _disconnected(self) -> None:
        if self._offline_since is None:
            self._offline_since = time.monotonic()
        self.connected.clear()

    def _consume_once(self) -> None:
        connection = pika.BlockingConnection(parameters(self.settings, f"{self.service}.consumer"))
        try:
            channel = connection.channel()
            queue = declare_service_topology(channel, self.settings, self.service, sorted(self.handlers))
            channel.basic_qos(prefetch_count=self.prefetch)
            republish = connection.channel()
            republish.confirm_delivery()
            self._connected()
            self._unacked = 0  # a new channel: the old one's tags are gone with it (those deliveries come again)
            log.info("%s: consuming %s", self.service, queue)
            for method, props, body in channel.consume(queue, inactivity_timeout=0.5):
                if self.stop.is_set():
                    break
                if method is None:
                    continue
                self._deliver(connection, channel, republish, method, props, body)
            try:
                self._ack_done(channel)  # what was handled before the stop (or the broker's cancel)
            except CONNECTION_ERRORS:
                pass  # the channel went with it: those deliveries come again
        finally:
            if connection.is_open:
                try:
                    connection.close()
                except CONNECTION_ERRORS:
                    pass

    def _deliver(self, connection, channel, republish, method, props, body: bytes) -> None:
        """Process one message and ack it; whatever goes wrong with this one message, the next one comes next.

        Only a broker problem (the connection or channel is gone) leaves the message unacked and
        reaches `run`, which reconnects: the message comes again, and that is right. Any other fault
        while handling, retrying or dead-lettering this message dead-letters it as it is.
        """
        self._republished = False
        try:
            self._process(connection, republish, props, body)
        except CONNECTION_ERRORS as exc:
            if not _is_encoding_error(exc):
                raise
            self._dead_letter_as_is(republish, props, body, exc)
        except _Stopping:
            self._ack_done(channel)  # those before it; this one stays unacked, to come again
            return
        except Exception as exc:  # noqa: BLE001 - one bad message must never stall the queue
            self._dead_letter_as_is(republish, props, body, exc)
        self._ack(channel, method.delivery_tag, now=self._republished)

    def _ack(self, channel, delivery_tag: int, now: bool = False) -> None:
        """Acknowledge a delivery done with; while the next one is here already (a backlog), with the next ones.

        One `basic_ack(multiple=True)` then covers up to ACK_EVERY deliveries, each handled in order on this
        one channel: one frame and one flush of the connection instead of one each. Nothing waits for it:
        the ack goes out as soon as no delivery is waiting in this process (the queue is caught up), when
        the consumer stops, and at once (`now`) for a delivery republished to a retry or dead-letter queue,
        whose copy exists already. A consumer that dies first has its unacked deliveries given again, as
        always (handlers are idempotent): up to ACK_EVERY handled ones.
        """
        self._unacked, self._unacked_tag = self._unacked + 1, delivery_tag
        if now or self._unacked >= ACK_EVERY or not channel.get_waiting_message_count():
            self._ack_done(channel)

    def _ack_done(self, channel) -> None:
        if self._unacked:
            channel.basic_ack(self._unacked_tag, multiple=True)
            self._unacked = 0

    def _process(self, connection, republish, props, body: bytes) -> None:
        headers = dict(props.headers or {})
        try:
            envelope = events.decode(body)
        except events.UnsupportedVersion as exc:
            self._dead_letter(republish, props, body, headers, "unsupported-version", str(exc))
            return
        except events.InvalidEvent as exc:
            self._dead_letter(republish, props, body, headers, "invalid", str(exc))
            return
        event_type, event_id = envelope["type"], envelope["event_id"]
        ahead = (events.parse_time(envelope["occurred_at"]) - datetime.now(UTC)).total_seconds()
        if ahead > self.settings.max_clock_skew:
            detail = (
                f"occurred_at {envelope['occurred_at']} is {ahead:.0f} s in the future "
                f"(more than TICKETFLOW_MAX_CLOCK_SKEW={self.settings.max_clock_skew:g} s): a forged or broken clock"
            )
            self._dead_letter(republish, props, body, headers, "invalid", detail)
            return
        handler = self.handlers.get(event_type)
        if handler is None:
            self._dead_letter(
                republish, props, body, headers, "unhandled", f"{self.service} has no handler for {event_type}"
            )
            return
        error = self._run(connection, handler, envelope, event_id)
        if error is not None:  # a success is counted once its record is written (_counted)
            self._retry_or_dead_letter(republish, props, body, headers, event_type, error)

    def _counted(self, event_type: str, first: bool) -> None:
        """A handled event's record is written: a first delivery, or a repeat of one handled before."""
        metrics.EVENTS_CONSUMED.labels(self.service, event_type, "ok" if first else "duplicate").inc()

    def _dead_letter_as_is(self, republish, props, body: bytes, exc: Exception) -> None:
        """The last resort for a message whose processing failed in the plumbing: dead-letter it, headers made safe."""
        log.error("%s: processing a message failed (%r); dead-lettering it", self.service, exc, exc_info=exc)
        detail = f"{type(exc).__name__}: {exc}"
        try:
            self._dead_letter(republish, props, body, _safe_headers(dict(props.headers or {})), "error", detail)
        except CONNECTION_ERRORS as again:
            if not _is_encoding_error(again):
                raise
            self._dead_letter(republish, pika.BasicProperties(message_id=props.message_id), body, {}, "error", detail)
        except Exception:  # noqa: BLE001 - then without anything copied from the message but its body
            self._dead_letter(republish, pika.BasicProperties(message_id=props.message_id), body, {}, "error", detail)

    def _run(self, connection, handler: Handler, envelope: dict, event_id: str):
        """Run the handler on the helper thread while this thread keeps the connection's I/O going.

        A handler that cannot reach the service's own database (which does not answer a ping either) is
        not retried through the retry queues: the outage is not the message's fault, and a few seconds of
        it would use up the retries of every message in flight. The message waits, unacked, until the
        database answers, then runs again (handlers are idempotent); nothing else is taken meanwhile.
        """

        def work():
            handler(envelope)  # idempotent: a redelivered event finds its effect stored and changes nothing
            self.idempotency.note(event_id, functools.partial(self._counted, envelope["type"]))

        while True:
            try:
                return self._on_helper(connection, work)
            except PermanentError as exc:
                return exc
            except ConnectionFailure as exc:
                if self._on_helper(connection, lambda: mongo.ping(self.settings)):
                    log.warning("%s: handler for %s failed: %r", self.service, envelope["type"], exc)
                    return exc  # the database answers: an ordinary failure, retried and counted
                log.warning("%s: the database is unreachable (%r); %s waits for it", self.service, exc, event_id)
                self._await_database(connection)
            except Exception as exc:  # any handler failure is retried, never acked as a success
                log.warning("%s: handler for %s failed: %r", self.service, envelope["type"], exc)
                return exc

    def _on_helper(self, connection, work: Callable[[], object]):
        """work() on the helper thread, its result or its exception; heartbeats go on meanwhile."""
        self._handling_since = time.monotonic()
        try:
            future = self._pool.submit(work)
            while not wait([future], timeout=1.0).done:
                connection.process_data_events(time_limit=0)  # heartbeats while a slow handler runs
        finally:
            self._handling_since = None
        return future.result()

    def _await_database(self, connection) -> None:
        """Return once the service's database answers a ping; _Stopping if the worker is stopped first."""
        delay = 0.5
        while not self.stop.is_set():
            connection.process_data_events(time_limit=delay)  # sleeps, the connection's I/O going on
            if self.stop.is_set():
                break
            if self._on_helper(connection, lambda: mongo.ping(self.settings)):
                log.info("%s: the database answers again", self.service)
                return
            delay = min(delay * 2, 5.0)
        raise _Stopping()

    def _retry_or_dead_letter(self, republish, props, body, headers, event_type: str, error: Exception) -> None:
        attempt = _attempt(headers.get(ATTEMPT_HEADER, 0))
        if attempt is None:
            detail = (
                f"the {ATTEMPT_HEADER} header is not a retry count (a whole number from 0): "
                f"{headers.get(ATTEMPT_HEADER)!r:.100}; the handler failed with {type(error).__name__}: {error}"
            )
            self._dead_letter(republish, props, body, headers, "invalid", detail)
            return
        delays = self.settings.retry_delays
        if isinstance(error, PermanentError) or attempt >= len(delays):
            reason = "rejected" if isinstance(error, PermanentError) else "failed"
            detail = f"{type(error).__name__}: {error} (after {attempt + 1} attempts)"
            self._dead_letter(republish, props, body, headers, reason, detail)
            return
        headers.update({ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: f"{type(error).__name__}: {error}"[:1000]})
        target = retry_queue_name(self.settings, self.service, delays[attempt])
        republish.basic_publish(self._requeue, target, body, copy_props(props, headers), mandatory=True)
        self._republished = True
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
        republish.basic_publish(self._requeue, dead, body, copy_props(props, headers), mandatory=True)
        self._republished = True
        metrics.EVENTS_DEAD_LETTERED.labels(self.service, reason).inc()


def _attempt(value) -> int | None:
    """The retry count a header holds, or None when it holds something a consumer cannot use."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def _encodable(value) -> bool:
    try:
        pika.data.encode_value([], value)
    except Exception:  # noqa: BLE001 - e.g. a float (pika cannot write one back) or an int past 64 bits
        return False
    return True


def _safe_headers(headers: dict) -> dict:
    """The headers, each one that pika cannot write back (a float, a huge number...) replaced by its repr."""
    return {str(key): value if _encodable(value) else repr(value)[:200] for key, value in headers.items()}


def _is_encoding_error(exc: Exception) -> bool:
    return isinstance(exc, pika.exceptions.UnsupportedAMQPFieldException)


def copy_props(props, headers: dict) -> pika.BasicProperties:
    headers = _safe_headers(headers)
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
