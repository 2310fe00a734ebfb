"""A few settings documents read once for every event that occurred before the read.

Each ticket event makes a worker read the same small collections again: notify its webhooks, sla its policies,
assignment its teams. A worker that is behind (a backlog) handles events that occurred seconds ago, and reads
the same answer for each of them. A read begun after an event occurred sees every change stored before it, so
its answer serves that event as a read of its own would, and every event that occurred earlier too: the
settings as they were when the event happened, or newer. An event that occurred after the read began (or
within MARGIN of it: two machines' clocks differ a little) gets a new read. A worker that keeps up reads for
every event, as before.

The value is shared by the events it serves: callers read it and never change it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")
MARGIN = timedelta(seconds=2)  # how far two machines' clocks may disagree (NTP keeps them within milliseconds)


class Snapshot(Generic[T]):
    """`read()`'s answer, kept for the events that occurred before the read began (less MARGIN)."""

    def __init__(self, read: Callable[[], T], margin: timedelta = MARGIN) -> None:
        self._read, self._margin = read, margin
        self._lock = threading.Lock()
        self._value: T | None = None
        self._begun: datetime | None = None  # when the kept read began; None: nothing kept

    def as_of(self, occurred_at: datetime) -> T:
        """The answer for an event that occurred at `occurred_at` (aware): the kept one, or a new read."""
        with self._lock:
            if self._begun is not None and occurred_at <= self._begun - self._margin:
                return self._value  # type: ignore[return-value]
            begun = datetime.now(UTC)
            value = self._read()
            self._value, self._begun = value, begun
            return value

    def forget(self) -> None:
        """This process changed what is read: the next event reads again."""
        with self._lock:
            self._value, self._begun = None, None
