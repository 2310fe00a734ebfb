"""search's worker: ticket events become documents and the index's entries; a timer commits them in rounds."""

from __future__ import annotations

from services.search import handlers
from services.search.engine import limit_malloc_arenas
from shared.config import load_settings
from shared.runtime import Timer, bind, configure_logging, run_worker, stop_on_signals, wait_for


def main() -> None:
    limit_malloc_arenas()  # before the index's threads: its merges would otherwise keep memory in arenas of their own
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    svc = handlers.bootstrap(settings)
    wait_for(svc.ensure_storage, "MongoDB")
    wait_for(svc.open_writer, "the search index")  # the only writer; indexes what the last run may not have committed
    writer = svc.writer
    timers = [
        Timer("commit", handlers.COMMIT_INTERVAL, writer.commit_round, at_stop=True),
        Timer("expire-records", 3600, svc.processed.expire),
    ]
    try:
        run_worker(settings, handlers.SERVICE, bind(handlers.HANDLERS, svc), svc.processed, timers)
    finally:
        writer.close()


if __name__ == "__main__":
    main()
