"""sla's worker: ticket events drive the clocks; the deadline timer announces warnings and breaches."""

from __future__ import annotations

from services.sla import handlers
from services.sla.timer import DeadlineTimer
from shared.config import load_settings
from shared.runtime import Timer, configure_logging, outbox_timers, run_worker, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    app = handlers.bootstrap(settings)
    wait_for(app.ensure_storage, "MongoDB")
    deadlines = DeadlineTimer(app, lookahead=settings.sla_lookahead)
    timers = [
        *outbox_timers(settings, handlers.SERVICE, app.pending, [app.clocks.collection]),
        Timer("deadlines", deadlines.lookahead, deadlines.run_once, wakeup=deadlines.wakeup),
        Timer("expire-records", 3600, app.processed.expire),
    ]
    run_worker(settings, handlers.SERVICE, handlers.handlers(app), app.processed, timers)


if __name__ == "__main__":
    main()
