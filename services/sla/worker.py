"""sla's worker: ticket events drive the clocks; the deadline timer announces warnings and breaches."""

from __future__ import annotations

import logging

from services.sla import handlers
from services.sla.timers import Alarm, DeadlineTimer
from shared.config import load_settings
from shared.runtime import STOP, Timer, bind, configure_logging, outbox_timers, run_worker, stop_on_signals, wait_for

log = logging.getLogger(__name__)
STATS_DAYS_EVERY = 5.0  # seconds between passes gathering /stats's figures per day (store.StatsDays)


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    alarm = Alarm()
    svc = handlers.bootstrap(settings, wake_timer=alarm.saw)  # a save with an earlier deadline wakes the timer
    wait_for(svc.ensure_storage, "MongoDB")
    if copied := svc.clocks.backfill_histories():
        log.info("copied the clock histories of %d tickets saved before there were copies", copied)
    deadlines = DeadlineTimer(svc, alarm, lookahead=settings.sla_lookahead)
    timers = [
        *outbox_timers(settings, handlers.SERVICE, svc.pending, [svc.clocks]),
        Timer("deadlines", deadlines.lookahead, deadlines.run_once, wakeup=alarm.wakeup),
        Timer("stats-days", STATS_DAYS_EVERY, svc.clocks.histories.roll_up),  # what GET /stats reads
        Timer("expire-records", 3600, svc.processed.expire),
        Timer("stamp-backfill", 3600, lambda: _backfill(svc)),  # once per database; /metrics answers meanwhile
        Timer("deadlines-backfill", 3600, lambda: _announce_deadlines(svc)),  # likewise
    ]
    run_worker(settings, handlers.SERVICE, bind(handlers.HANDLERS, svc), svc.processed, timers)


def _backfill(svc) -> None:
    if stamped := svc.breaches.stamps.backfill(svc.access.stamps(), STOP):
        log.info("stamped the breaches of %d tickets with their team and agent", stamped)


def _announce_deadlines(svc) -> None:
    if announced := handlers.backfill_deadlines(svc, STOP):
        log.info("the deadlines of %d tickets not closed, stored before sla.deadlines_changed: published", announced)


if __name__ == "__main__":
    main()
