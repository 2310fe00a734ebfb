"""The deadline timer: wakes for the soonest warning or breach, not on a slow fixed poll.

Each pass reads, through the `next_due` index, only the clocks that pass a threshold within the
look-ahead (`TICKETFLOW_SLA_LOOKAHEAD`, 1 s), announces those already due, and sleeps until the
soonest of the rest. A save in this process with an earlier `next_due` wakes it at once, so a
deadline set by this worker never waits for the next pass; one set by another worker is seen
within the look-ahead (that worker's own timer normally gets there first). Several workers may
take the same clock: the version-checked save lets one announce, and the others find nothing due.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from services.sla.handlers import Sla, announce_due
from shared.clock import now
from shared.errors import Conflict, NotFound
from shared.runtime import next_wake, seconds_until

log = logging.getLogger(__name__)

PUT_OFF = timedelta(minutes=1)  # a ticket whose step failed waits this long before the timer tries it again


class Alarm:
    """When the deadline timer plans to look next, and the event that wakes it sooner.

    Made before sla's handlers, which are given `saw` (their `wake_timer`), and handed to the timer.
    """

    def __init__(self) -> None:
        self.wakeup = threading.Event()
        self.planned: datetime | None = None

    def saw(self, next_due: datetime | None) -> None:
        """A clock of this process was saved: wake now if it falls due before the planned wake-up."""
        planned = self.planned
        if next_due is not None and (planned is None or next_due < planned):
            self.wakeup.set()


class DeadlineTimer:
    def __init__(self, svc: Sla, alarm: Alarm, lookahead: float = 1.0, batch: int = 200) -> None:
        self.svc, self.alarm, self.lookahead, self.batch = svc, alarm, lookahead, batch

    def run_once(self) -> float:
        """Announce what is due; the seconds to sleep until the next clock falls due (at most the look-ahead)."""
        started = now()
        horizon = started + timedelta(seconds=self.lookahead)
        due = self.svc.clocks.due(horizon, self.batch)
        for ticket_id, at in due:
            if at <= started:
                self._announce(ticket_id, at)
        later = [at for _, at in due if at > started]
        if len(due) == self.batch and not later:
            wake = now()  # a full batch, all due: there may be more
        else:
            wake = next_wake(later, horizon)
        self.alarm.planned = wake
        return seconds_until(wake, now())

    def _announce(self, ticket_id: str, due: datetime) -> None:
        try:
            announce_due(self.svc, ticket_id)
        except (Conflict, NotFound) as exc:  # busy or gone: the next pass looks again
            log.info("deadline of ticket %s: %s", ticket_id, exc)
        except ConnectionFailure:
            raise  # the store is away: every ticket waits for it alike (the timer's loop backs off)
        except (ExecutionTimeout, WTimeoutError) as exc:  # a passing fault of the store: the next pass tries again
            log.warning("deadline of ticket %s: the store timed out (%r); tried again at the next pass", ticket_id, exc)
        except Exception:
            # One ticket whose step fails (a document this version cannot read, say) is looked at again later: it
            # came first in every pass and held back every deadline after it (a plumbing review's find).
            log.exception("deadline of ticket %s: its step failed; looked at again in %s", ticket_id, PUT_OFF)
            try:
                self.svc.clocks.put_off(ticket_id, due, now() + PUT_OFF)
            except PyMongoError as exc:  # the pass goes on: the others are due too
                log.warning("deadline of ticket %s: could not put it off (%r)", ticket_id, exc)
