"""What intake's worker runs on a clock: closing tickets resolved long ago, and forgetting old records."""

from __future__ import annotations

import logging
from datetime import timedelta

from pymongo.errors import ConnectionFailure

from services.intake.domain import Ticket
from services.intake.handlers import Intake, change_ticket
from shared.clock import now
from shared.saving import NO_CHANGE

log = logging.getLogger(__name__)


def auto_close(svc: Intake) -> int:
    """Close tickets resolved longer ago than TICKETFLOW_AUTO_CLOSE_HOURS; how many it closed."""
    hours = svc.settings.auto_close_hours

    def close_if_due(ticket: Ticket):
        if not ticket.due_for_auto_close(now(), hours):
            return NO_CHANGE  # reopened, or closed, since it was found
        ticket.close("auto", now())

    closed = 0
    for ticket_id in svc.tickets.resolved_before(now() - timedelta(hours=hours)):
        try:
            _, result = change_ticket(svc, ticket_id, close_if_due, None)
        except ConnectionFailure:
            raise  # the store is away: the round ends, and the timer's loop waits for it
        except Exception:  # one ticket that cannot be closed (a document this version cannot read) stops no other
            log.exception("auto-close of ticket %s failed; tried again at the next round", ticket_id)
            continue
        closed += result is not NO_CHANGE
    return closed


def expire_records(svc: Intake) -> None:
    """Forget Idempotency-Keys, processed event ids and rate-limit windows older than they must be kept."""
    svc.keys.expire(now())
    svc.limits.expire(now())
    svc.processed.expire()
