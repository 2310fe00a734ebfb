"""A service's worker process: the consumer on the main thread, timers (outbox relay, clean-ups) beside it."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import ConnectionFailure

from shared.config import Settings
from shared.consumer import Consumer, Handler
from shared.idempotency import RECORD_EVERY

log = logging.getLogger(__name__)

STOP = threading.Event()  # the worker process stops: set by SIGTERM or SIGINT (stop_on_signals)
_exits_at: float | None = None  # once STOP is set: the time.monotonic() time the stop watch ends the process at


def exits_at() -> float | None:
    """When a stopping worker process ends at the latest (a `time.monotonic()` time); None while it runs."""
    return _exits_at


EARLY_WAKE = timedelta(milliseconds=1)  # stored times are truncated to the millisecond: never wake before


def next_wake(later: list[datetime], horizon: datetime) -> datetime:
    """When a timer that read what falls due up to `horizon` should look again: the soonest of `later`."""
    return min([*later, horizon]) + EARLY_WAKE


def seconds_until(moment: datetime, now: datetime) -> float:
    return max((moment - now).total_seconds(), 0.0)


@dataclass
class Timer:
    """`run` every `interval` seconds, or sooner: when it returns a shorter delay, or when `wakeup` is set.

    `at_stop`: run once more when the worker stops, after its thread ended (the outbox relay does).
    """

    name: str
    interval: float
    run: Callable[[], object]
    wakeup: threading.Event | None = None
    at_stop: bool = False
    running_since: float | None = field(default=None, compare=False)  # monotonic start of the run under way


def outbox_timers(settings: Settings, service: str, pending, stores: list) -> list[Timer]:
    """The relay (marked documents) and the sweep (overdue documents) of the stores' outboxes.

    The relay looks every RETRY_AFTER while it finds nothing, since a marker falls due that long after it is
    written (a poll every 0.5 s of an empty collection was most of an idle worker's store calls), and every
    0.5 s while it publishes (a backlog after an outage)."""
    from shared.relay import RETRY_AFTER, OutboxRelay

    relay = OutboxRelay(settings, service, pending, [store.collection for store in stores])
    wait_for(relay.ensure_indexes, "MongoDB")

    def relay_round() -> float | None:
        return 0.5 if relay.run_once() else None

    return [
        Timer("outbox-relay", RETRY_AFTER.total_seconds(), relay_round, at_stop=True),
        Timer("outbox-sweep", settings.outbox_sweep_interval, relay.sweep),
    ]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # shared.bus logs what matters, once


def wait_for(step: Callable[[], object], what: str, interval: float = 1.0) -> None:
    """Retry a start-up step until it succeeds (the database may start after the worker), or until STOP."""
    while not STOP.is_set():
        try:
            step()
            return
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            log.warning("waiting for %s: %r", what, exc)
            STOP.wait(interval)
    log.info("stopped while waiting for %s", what)
    raise SystemExit(0)


def stop_on_signals(service: str) -> None:
    """SIGTERM and SIGINT set STOP, from the worker's first steps on (its start-up waits honour it too)."""

    def shutdown(signum, _frame):
        log.info("%s worker: signal %s, stopping", service, signum)
        STOP.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)


def _timer_loop(timer: Timer, stop: threading.Event) -> None:
    while True:
        if timer.wakeup is not None:
            timer.wakeup.clear()  # before running: a wake-up set while it runs makes it run again at once
        if stop.is_set():  # after the clear: the wake-up that _stop_watch sets on a stop is never lost
            return
        delay = timer.interval
        timer.running_since = time.monotonic()
        try:
            asked = timer.run()
            if isinstance(asked, float) and 0 <= asked < delay:
                delay = asked
        except ConnectionFailure as exc:  # the database is away (restarting): one line, not a traceback a tick
            log.warning("timer %s: the database does not answer (%s); trying again", timer.name, type(exc).__name__)
        except Exception:  # a failing timer logs and tries again next tick; it never kills the worker
            log.exception("timer %s failed", timer.name)
        timer.running_since = None
        (timer.wakeup or stop).wait(delay)


def bind(handlers: dict[str, Callable[[Any, dict], None]], svc: Any) -> dict[str, Handler]:
    """A service's HANDLERS table as the consumer takes it: each handler given the service's container."""
    return {event_type: functools.partial(handle, svc) for event_type, handle in handlers.items()}


def run_worker(
    settings: Settings, service: str, handlers: dict[str, Handler], idempotency, timers: list[Timer]
) -> None:
    """Run until STOP: the message in hand is handled and acked, the prefetched ones go back to the queue,
    the timers end and the outbox relay runs a last time; all within settings.stop_timeout."""
    consumer = Consumer(settings, service, handlers, idempotency, stop=STOP)
    # the handled events' records, written together (ProcessedEvents.flush), a last time once the consumer stopped:
    # first of the timers that run at the stop (one insert, before the outbox relay's last round)
    timers = [Timer("processed-records", RECORD_EVERY, idempotency.flush, at_stop=True), *timers]
    threads = _start(settings, service, timers, consumer)
    consumer.run()
    _finish(settings, service, timers, threads)


def run_timers(settings: Settings, service: str, timers: list[Timer]) -> None:
    """A worker with timers and no consumer (the portal's): run until STOP."""
    threads = _start(settings, service, timers, None)
    STOP.wait()
    _finish(settings, service, timers, threads)


def _start(settings: Settings, service: str, timers: list[Timer], consumer: Consumer | None) -> list[threading.Thread]:
    """/metrics and /livez, the watch that bounds a stop, and a thread per timer, started."""
    threads = [threading.Thread(target=_timer_loop, args=(t, STOP), name=t.name, daemon=True) for t in timers]
    if settings.metrics_port is not None:
        from shared.liveness import Liveness, serve

        watched = list(zip(timers, threads, strict=True))
        serve(settings.metrics_port, Liveness(settings.liveness_seconds, consumer, watched, STOP))
    threading.Thread(target=_stop_watch, args=(settings, service, timers), name="stop-watch", daemon=True).start()
    for thread in threads:
        thread.start()
    log.info("%s worker started (namespace %s)", service, settings.namespace)
    return threads


def _stop_watch(settings: Settings, service: str, timers: list[Timer]) -> None:
    """On STOP, wake the timers that sleep on their own event; exit anyway once settings.stop_timeout has passed."""
    global _exits_at
    STOP.wait()
    _exits_at = time.monotonic() + settings.stop_timeout
    for timer in timers:
        if timer.wakeup is not None:
            timer.wakeup.set()
    time.sleep(settings.stop_timeout)
    log.error("%s worker: not stopped %g s after the signal; exiting now", service, settings.stop_timeout)
    logging.shutdown()
    os._exit(1)  # unacked messages return to the queue; events not yet published wait in the outbox for the sweep


def _finish(settings: Settings, service: str, timers: list[Timer], threads: list[threading.Thread]) -> None:
    """Let the timers end, then run a last time those that ask for it (the outbox relay: what was handled goes out).

    The timers share a quarter of the stop's bound: one hung in a call is left behind (a daemon thread; every
    timer's work survives being cut off), and the bound keeps room for the relay and the flusher's drain.
    """
    deadline = time.monotonic() + settings.stop_timeout / 4
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    for timer, thread in zip(timers, threads, strict=True):
        if timer.at_stop and not thread.is_alive():
            try:
                timer.run()
            except Exception:
                log.exception("timer %s failed on stopping", timer.name)
    log.info("%s worker stopped", service)
