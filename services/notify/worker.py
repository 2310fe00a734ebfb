"""notify's worker: events become notifications; the dispatcher sends them, with retries."""

from __future__ import annotations

import logging
import threading

from services.notify import handlers
from services.notify.timers import PENDING_GAUGE_INTERVAL, Dispatcher, export_backlog
from shared.config import load_settings, placeholder_addresses
from shared.runtime import (
    STOP,
    Timer,
    bind,
    configure_logging,
    exits_at,
    outbox_timers,
    run_worker,
    stop_on_signals,
    wait_for,
)
from shared.smtp import Sessions

log = logging.getLogger(__name__)


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    settings.require_secret()  # requesters' links are signed with it: stop now, not at the first receipt
    for said in placeholder_addresses(settings):
        log.warning(said)
    wakeup = threading.Event()
    svc = handlers.bootstrap(settings, on_recorded=wakeup.set)  # a recorded notification wakes the dispatcher
    wait_for(svc.ensure_storage, "MongoDB")
    dispatcher = Dispatcher(svc, wakeup, settings.notify_senders)
    svc.sender = dispatcher  # what is recorded while a sender is free goes to it at once
    # as many kept as may send to the SMTP server at once; a send under way when the worker stops ends in time to
    # store its outcome before the process exits (otherwise its claim would run out and the email go again)
    svc.smtp = Sessions(keep=dispatcher.per_endpoint, bound=lambda: handlers.send_bound(settings, exits_at()))
    timers = [
        *outbox_timers(settings, handlers.SERVICE, svc.pending, [svc.notifications]),
        Timer("dispatch", 1.0, dispatcher.run_once, wakeup=wakeup),
        Timer("pending-gauge", PENDING_GAUGE_INTERVAL, lambda: export_backlog(svc)),
        Timer("expire-records", 3600, svc.processed.expire),
        Timer("stamp-backfill", 3600, lambda: _backfill(svc)),  # once per database; /metrics answers meanwhile
    ]
    try:
        run_worker(settings, handlers.SERVICE, bind(handlers.HANDLERS, svc), svc.processed, timers)
    finally:
        dispatcher.close()
        svc.smtp.close()  # QUIT on the kept connections


def _backfill(svc: handlers.Notify) -> None:
    if stamped := svc.notifications.stamps.backfill(svc.views.stamps(), STOP):
        log.info("stamped the notifications of %d tickets with their team and agent", stamped)


if __name__ == "__main__":
    main()
