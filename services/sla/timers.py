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

from services.sla import handlers
from shared.errors import Conflict, NotFound
from shared.runtime import next_wake, seconds_until

log = logging.getLogger(__name__)


class DeadlineTimer:
    def __init__(self, app: handlers.Sla, lookahead: float = 1.0, batch: int = 200) -> None:
        self.app, self.lookahead, self.batch = app, lookahead, batch
        self.wakeup = threading.Event()
        self._next_wake: datetime | None = None
        app.on_saved = self.saw

    def saw(self, next_due: datetime | None) -> None:
        """A clock of this process was saved: wake now if it falls due before the planned wake-up."""
        planned = self._next_wake
        if next_due is not None and (planned is None or next_due < planned):
            self.wakeup.set()

    def run_once(self) -> float:
        """Announce what is due; the seconds to sleep until the next clock falls due (at most the look-ahead)."""
        now = handlers.now()
        horizon = now + timedelta(seconds=self.lookahead)
        due = self.app.clocks.due(horizon, self.batch)
        for ticket_id, at in due:
            if at <= now:
                self._announce(ticket_id)
        later = [at for _, at in due if at > now]
        if len(due) == self.batch and not later:
            wake = handlers.now()  # a full batch, all due: there may be more
        else:
            wake = next_wake(later, horizon)
        self._next_wake = wake
        return seconds_until(wake, handlers.now())

    def _announce(self, ticket_id: str) -> None:
        try:
            handlers.announce_due(self.app, ticket_id)
        except (Conflict, NotFound) as exc:  # busy or gone: the next pass looks again
            log.info("deadline of ticket %s: %s", ticket_id, exc)
