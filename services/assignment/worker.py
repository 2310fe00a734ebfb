"""assignment's worker: routes and assigns new tickets, follows reopen/close/messages/SLA, keeps counts exact."""

from __future__ import annotations

from services.assignment import handlers
from services.assignment.timers import Reconciler
from shared.config import load_settings
from shared.runtime import Timer, bind, configure_logging, outbox_timers, run_worker, stop_on_signals, wait_for


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    svc = handlers.bootstrap(settings)
    wait_for(svc.ensure_storage, "MongoDB")
    wait_for(lambda: handlers.announce_agents(svc), "MongoDB")  # the other services learn every agent's teams
    reconciler = Reconciler(svc)
    timers = [
        *outbox_timers(settings, handlers.SERVICE, svc.pending, [svc.tickets, svc.agents]),
        Timer("reconcile", settings.reconcile_interval, reconciler.run),
        Timer("expire-records", 3600, svc.processed.expire),
    ]
    run_worker(settings, handlers.SERVICE, bind(handlers.HANDLERS, svc), svc.processed, timers)


if __name__ == "__main__":
    main()
