"""What intake's worker runs on a clock: closing tickets resolved long ago, and forgetting old records."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pymongo.errors import ConnectionFailure

from services.intake.domain import Ticket
from services.intake.handlers import Intake, change_ticket
from shared.clock import now
from shared.saving import NO_CHANGE

log = logging.getLogger(__name__)


PUT_OFF = timedelta(minutes=10)  # a ticket auto-close could not close is left out of the rounds this long


def auto_close(svc: Intake, failing: dict[str, datetime] | None = None) -> int:
    """Close tickets resolved longer ago than TICKETFLOW_AUTO_CLOSE_HOURS; how many it closed. `failing` (the
    worker's, kept between rounds): the tickets it could not close, each left out until its time (a review's find:
    tried at every round, 200 of them would have filled every round's page)."""
    hours = svc.settings.auto_close_hours
    failing = {} if failing is None else failing
    for ticket_id, until in list(failing.items()):
        if until <= now():
            del failing[ticket_id]

    def close_if_due(ticket: Ticket):
        if not ticket.due_for_auto_close(now(), hours):
            return NO_CHANGE  # reopened, or closed, since it was found
        ticket.close("auto", now())

    closed = 0
    for ticket_id in svc.tickets.resolved_before(now() - timedelta(hours=hours), without=list(failing)):
        try:
            _, result = change_ticket(svc, ticket_id, close_if_due, None)
        except ConnectionFailure:
            raise  # the store is away: the round ends, and the timer's loop waits for it
        except Exception:  # one ticket that cannot be closed (a document this version cannot read) stops no other
            log.exception("auto-close of ticket %s failed; tried again in %s", ticket_id, PUT_OFF)
            failing[ticket_id] = now() + PUT_OFF
            continue
        closed += result is not NO_CHANGE
    return closed


def expire_records(svc: Intake) -> None:
    """Forget Idempotency-Keys, processed event ids and rate-limit windows older than they must be kept."""
    svc.keys.expire(now())
    svc.limits.expire(now())
    svc.processed.expire()
