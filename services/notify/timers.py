"""The notify worker's dispatcher: due notifications go to a pool of sender threads.

Each pass reads, through the `next_attempt_at` index, the notifications due within the look-ahead,
claims the due ones (a version-checked write that moves `next_attempt_at` a lease ahead, so no other
worker takes them) and hands them to the pool; it sleeps until the soonest other one falls due, or
until a new notification is recorded or a send finishes. A notification recorded while a sender is free
needs no pass: the handler stores it claimed and hands it over (`take`, `taken`). No more than half the
senders (at least one) work for one endpoint (the SMTP server, or a webhook's host) at a time, so one
slow or dead server never holds up the others: when the soonest due are all for endpoints whose senders are
busy (a dead webhook's backlog), the pass reads again for each other endpoint, the SMTP server's first.

`export_backlog`, a timer of its own, sets the gauges of pending notifications notify's worker scales on.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlsplit

from services.notify.domain import Notification
from services.notify.handlers import Notify, claim, lease, send
from shared import metrics
from shared.clock import now
from shared.runtime import next_wake, seconds_until

log = logging.getLogger(__name__)
# A notification due this long ago and still waiting for a sender stops the hand-off of new ones (`take`) until
# a pass has started it: under a sustained load the new ones would otherwise take every sender that frees up.
OVERDUE = timedelta(seconds=5)


class Dispatcher:
    def __init__(self, svc: Notify, wakeup: threading.Event, senders: int, lookahead: float = 1.0) -> None:
        """`wakeup` is what notify's handlers set (their `on_recorded`) when they record notifications."""
        self.svc, self.wakeup, self.senders, self.lookahead = svc, wakeup, senders, lookahead
        self.per_endpoint = max(senders // 2, 1)
        self.pool = ThreadPoolExecutor(senders, thread_name_prefix="notify-send") if senders else None
        self._busy: Counter[str] = Counter()  # sends in flight per endpoint
        self._in_flight: set[str] = set()
        self._held = False  # a due notification waited for a free sender: a finished send wakes the next pass
        self._waiting: set[str] = set()  # endpoints whose overdue notifications the last pass left unstarted
        self._lock = threading.Lock()

    def run_once(self) -> float:
        """Start what is due and can start; the seconds until the next notification falls due."""
        if self.pool is None:
            return self.lookahead  # this worker only records notifications (TICKETFLOW_NOTIFY_SENDERS=0)
        started = now()
        horizon, limit = started + timedelta(seconds=self.lookahead), 4 * self.senders
        due = self.svc.notifications.due(horizon, limit)
        later, waiting, blocked = self._start_due(due, started)
        if len(due) == limit and blocked and self._has_room(None):  # the batch may hide other endpoints' due ones
            for endpoint in self._endpoints():  # behind the busy ones': each has its own read
                if endpoint not in blocked and self._has_room(endpoint):
                    found = self.svc.notifications.due(horizon, limit, endpoint)
                    more_later, more_waiting, _ = self._start_due(found, started)
                    later, waiting = later + more_later, waiting | more_waiting
        self._waiting = waiting
        return seconds_until(next_wake(later, horizon), now())

    def _start_due(self, due: list[Notification], started) -> tuple[list, set[str], set[str]]:
        """Start what of `due` is due and has a free sender: (the later ones' times, the endpoints of those that
        waited OVERDUE for a sender, the endpoints whose senders were all busy)."""
        # read before any send starts: a sender sets a started record's next_attempt_at (None once sent)
        later = [record.next_attempt_at for record in due if record.next_attempt_at > started]
        overdue, waiting, blocked = started - OVERDUE, set(), set()
        for record in due:
            if record.next_attempt_at > started:
                continue
            if self._may_start(record.id, record.endpoint):
                self._start(record)
                continue
            if not self._has_room(record.endpoint):
                blocked.add(record.endpoint)
            if record.next_attempt_at <= overdue:
                waiting.add(record.endpoint)
        return later, waiting, blocked

    def _endpoints(self) -> list[str]:
        """The endpoints a pass may read for on its own: the SMTP server first, then each webhook's host."""
        hosts = {urlsplit(hook["url"]).netloc for hook in self.svc.webhooks.all()}
        return ["smtp", *sorted(hosts - {"smtp"})]

    def _has_room(self, endpoint: str | None) -> bool:
        """Whether a sender is free, for `endpoint` (None: for any endpoint)."""
        with self._lock:
            free = len(self._in_flight) < self.senders
            return free and (endpoint is None or self._busy[endpoint] < self.per_endpoint)

    def take(self, record: Notification) -> bool:
        """A notification notify's handler is about to insert: claimed for a free sender of its endpoint (its lease
        from now: the insert stores the claim), so that no pass reads it and no claim writes it. False when no
        sender is free for it: it is stored due, and a pass takes it once one is."""
        if self.pool is None or record.endpoint in self._waiting or not self._may_start(record.id, record.endpoint):
            return False  # `_waiting`: older ones of its endpoint waited OVERDUE for a sender: they go first, in order
        record.next_attempt_at = now() + lease(self.svc.settings)
        return True

    def taken(self, record: Notification, stored: bool) -> None:
        """After the insert of what `take` claimed: send it; one stored already (a redelivered event) is left."""
        if not stored:
            self._finished(record.id, record.endpoint)
            return
        try:
            self.pool.submit(self._send, record)
        except Exception:  # the pool is shut down (the worker stops): the lease runs out and a pass sends it
            self._finished(record.id, record.endpoint)
            raise

    def _start(self, due: Notification) -> None:
        try:
            record = claim(self.svc, due.id, due)
            if record is not None:
                self.pool.submit(self._send, record)
                return
        except Exception:
            self._finished(due.id, due.endpoint)
            raise
        self._finished(due.id, due.endpoint)  # not due any more: another worker took it

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _may_start(self, notification_id: str, endpoint: str) -> bool:
        with self._lock:
            if len(self._in_flight) >= self.senders or self._busy[endpoint] >= self.per_endpoint:
                self._held = True
                return False
            if notification_id in self._in_flight:
                return False
            self._in_flight.add(notification_id)
            self._busy[endpoint] += 1
            return True

    def _finished(self, notification_id: str, endpoint: str) -> None:
        with self._lock:
            self._in_flight.discard(notification_id)
            self._busy[endpoint] -= 1
            held, self._held = self._held, False
        if held:  # a sender is free: what waited for it may start (otherwise no pass is needed: none waits)
            self.wakeup.set()

    def _send(self, record: Notification) -> None:
        try:
            send(self.svc, record)
        except Exception:  # the lease runs out and the next pass tries again; the pool thread lives on
            log.exception("sending notification %s failed", record.id)
        finally:
            self._finished(record.id, record.endpoint)


PENDING_GAUGE_INTERVAL = 15.0  # seconds: KEDA polls Prometheus every 15 s (deploy/k8s/notify.yaml)


def export_backlog(svc: Notify) -> None:
    """Set the gauges KEDA scales the worker on: how many notifications wait, and how long the most overdue has."""
    pending, oldest = svc.notifications.backlog(now())
    metrics.NOTIFY_PENDING.set(pending)
    metrics.NOTIFY_OLDEST_PENDING.set(oldest)
