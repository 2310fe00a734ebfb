"""notify's worker: events become notifications; the dispatcher sends them, with retries."""

from __future__ import annotations

from services.notify import handlers
from services.notify.dispatcher import Dispatcher
from shared.config import load_settings
from shared.runtime import Timer, configure_logging, outbox_timers, run_worker, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    app = handlers.bootstrap(settings)
    wait_for(app.ensure_storage, "MongoDB")
    dispatcher = Dispatcher(app, settings.notify_senders)
    timers = [
        *outbox_timers(settings, handlers.SERVICE, app.pending, [app.notifications.collection]),
        Timer("dispatch", 1.0, dispatcher.run_once, wakeup=dispatcher.wakeup),
        Timer("expire-records", 3600, app.processed.expire),
    ]
    try:
        run_worker(settings, handlers.SERVICE, handlers.handlers(app), app.processed, timers)
    finally:
        dispatcher.close()


if __name__ == "__main__":
    main()
