"""A service's worker process: the consumer on the main thread, timers (outbox relay, clean-ups) beside it."""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.config import Settings
from shared.consumer import Consumer, Handler

log = logging.getLogger(__name__)


EARLY_WAKE = timedelta(milliseconds=1)  # stored times are truncated to the millisecond: never wake before


def next_wake(later: list[datetime], horizon: datetime) -> datetime:
    """When a timer that read what falls due up to `horizon` should look again: the soonest of `later`."""
    return min([*later, horizon]) + EARLY_WAKE


def seconds_until(moment: datetime, now: datetime) -> float:
    return max((moment - now).total_seconds(), 0.0)


@dataclass
class Timer:
    """`run` every `interval` seconds, or sooner: when it returns a shorter delay, or when `wakeup` is set."""

    name: str
    interval: float
    run: Callable[[], object]
    wakeup: threading.Event | None = None


def outbox_timers(settings: Settings, service: str, pending, stores: list) -> list[Timer]:
    """The relay (marked documents, every 0.5 s) and the sweep (overdue documents) of the stores' outboxes."""
    from shared.relay import OutboxRelay

    relay = OutboxRelay(settings, service, pending, [store.collection for store in stores])
    wait_for(relay.ensure_indexes, "MongoDB")
    return [
        Timer("outbox-relay", 0.5, relay.run_once),
        Timer("outbox-sweep", settings.outbox_sweep_interval, relay.sweep),
    ]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # shared.bus logs what matters, once


def wait_for(step: Callable[[], object], what: str, interval: float = 1.0) -> None:
    """Retry a start-up step until it succeeds (the database may start after the worker)."""
    while True:
        try:
            step()
            return
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            log.warning("waiting for %s: %r", what, exc)
            time.sleep(interval)


def _timer_loop(timer: Timer, stop: threading.Event) -> None:
    while not stop.is_set():
        delay = timer.interval
        if timer.wakeup is not None:
            timer.wakeup.clear()  # before running: a wake-up set while it runs makes it run again at once
        try:
            asked = timer.run()
            if isinstance(asked, float) and 0 <= asked < delay:
                delay = asked
        except Exception:  # a failing timer logs and tries again next tick; it never kills the worker
            log.exception("timer %s failed", timer.name)
        (timer.wakeup or stop).wait(delay)


def bind(handlers: dict[str, Callable[[Any, dict], None]], svc: Any) -> dict[str, Handler]:
    """A service's HANDLERS table as the consumer takes it: each handler given the service's container."""
    return {event_type: functools.partial(handle, svc) for event_type, handle in handlers.items()}


def run_worker(
    settings: Settings, service: str, handlers: dict[str, Handler], idempotency, timers: list[Timer]
) -> None:
    """Run until SIGTERM or SIGINT; in-flight work finishes, unacked messages go back to the queue."""
    consumer = Consumer(settings, service, handlers, idempotency)
    threads = _start(settings, service, consumer.stop, timers)
    consumer.run()
    for thread in threads:
        thread.join(timeout=5)


def run_timers(settings: Settings, service: str, timers: list[Timer]) -> None:
    """A worker with timers and no consumer (the portal's): run until SIGTERM or SIGINT."""
    stop = threading.Event()
    threads = _start(settings, service, stop, timers)
    stop.wait()
    for thread in threads:
        thread.join(timeout=5)


def _start(settings: Settings, service: str, stop: threading.Event, timers: list[Timer]) -> list[threading.Thread]:
    """The metrics server, signals that set `stop`, and a thread per timer, started."""
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port)

    def shutdown(signum, _frame):
        log.info("%s worker: signal %s, stopping", service, signum)
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    threads = [threading.Thread(target=_timer_loop, args=(t, stop), name=t.name, daemon=True) for t in timers]
    for thread in threads:
        thread.start()
    log.info("%s worker started (namespace %s)", service, settings.namespace)
    return threads
