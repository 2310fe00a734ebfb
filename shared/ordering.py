"""Out-of-order events: a field set by an event remembers when (its watermark); only a newer event moves it."""

from __future__ import annotations

from datetime import datetime


def newer(watermarks: dict[str, datetime], name: str, at: datetime) -> bool:
    """Whether an event at `at` is newer than what last set `name`; if so it becomes the watermark."""
    mark = watermarks.get(name)
    if mark is not None and at <= mark:
        return False
    watermarks[name] = at
    return True
