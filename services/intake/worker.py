"""intake's worker: every event onto the timeline and into intake's view; the outbox relay; auto-close."""

from __future__ import annotations

from services.intake import handlers, timers
from shared.config import load_settings
from shared.runtime import Timer, bind, configure_logging, outbox_timers, run_worker, stop_on_signals, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    svc = handlers.bootstrap(settings)
    wait_for(svc.ensure_storage, "MongoDB")
    failing: dict = {}  # the tickets auto-close could not close, left out of its rounds for a while
    worker_timers = [
        *outbox_timers(settings, handlers.SERVICE, svc.pending, [svc.tickets]),
        Timer("auto-close", settings.auto_close_interval, lambda: timers.auto_close(svc, failing)),
        Timer("expire-records", 3600, lambda: timers.expire_records(svc)),
    ]
    run_worker(settings, handlers.SERVICE, bind(handlers.HANDLERS, svc), svc.processed, worker_timers)


if __name__ == "__main__":
    main()
