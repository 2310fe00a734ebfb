"""intake's worker: every event onto the timeline and into intake's view; the outbox relay; auto-close."""

from __future__ import annotations

from services.intake import handlers
from shared.config import load_settings
from shared.runtime import Timer, configure_logging, outbox_timers, run_worker, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    app = handlers.bootstrap(settings)
    wait_for(app.ensure_storage, "MongoDB")
    timers = [
        *outbox_timers(settings, handlers.SERVICE, app.pending, [app.tickets.collection]),
        Timer("auto-close", settings.auto_close_interval, lambda: handlers.auto_close(app)),
        Timer("expire-records", 3600, lambda: handlers.expire_records(app)),
    ]
    run_worker(settings, handlers.SERVICE, handlers.handlers(app), app.processed, timers)


if __name__ == "__main__":
    main()
