"""The portal's worker: emails the links people ask for with "check status" and "Forgot your password?", new
accounts' links to set a password, notices that a password changed, and purges what expired.

It consumes no events: the portal reads the other services through their APIs.
"""

from __future__ import annotations

import logging

from services.portal import handlers, timers
from shared.config import load_settings, placeholder_addresses
from shared.runtime import Timer, configure_logging, run_timers, stop_on_signals, wait_for

log = logging.getLogger(__name__)


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    stop_on_signals(handlers.SERVICE)
    svc = handlers.bootstrap(settings)
    for said in placeholder_addresses(settings):  # its emails: sign-in links, check-status links
        log.warning(said)
    wait_for(svc.ensure_storage, "MongoDB")
    run_timers(
        settings,
        handlers.SERVICE,
        [
            Timer("status-links", timers.MAIL_INTERVAL, lambda: timers.answer_requests(svc)),
            Timer("welcome-emails", timers.MAIL_INTERVAL, lambda: timers.send_welcomes(svc)),
            Timer("password-resets", timers.MAIL_INTERVAL, lambda: timers.send_resets(svc)),
            Timer("account-notices", timers.MAIL_INTERVAL, lambda: timers.send_account_notices(svc)),
            Timer("purge", 600, lambda: timers.purge(svc)),
        ],
    )


if __name__ == "__main__":
    main()
