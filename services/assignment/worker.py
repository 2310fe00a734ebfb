"""assignment's worker: routes and assigns new tickets, follows reopen/close/messages/SLA, keeps counts exact."""

from __future__ import annotations

from services.assignment import handlers
from shared.config import load_settings
from shared.runtime import Timer, configure_logging, outbox_timers, run_worker, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    app = handlers.bootstrap(settings)
    wait_for(app.ensure_storage, "MongoDB")
    reconciler = handlers.Reconciler(app)
    timers = [
        *outbox_timers(settings, handlers.SERVICE, app.pending, [app.tickets.collection]),
        Timer("reconcile", settings.reconcile_interval, reconciler.run),
        Timer("expire-records", 3600, app.processed.expire),
    ]
    run_worker(settings, handlers.SERVICE, handlers.handlers(app), app.processed, timers)


if __name__ == "__main__":
    main()
