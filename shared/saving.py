"""Load, change, save with a version check; when someone saved in between, read again and retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from shared.errors import Conflict
from shared.mongo import Stale

SAVE_ATTEMPTS = 20

T = TypeVar("T")
R = TypeVar("R")


class NoChange:
    """What a change function returns when there is nothing to save."""

    def __repr__(self) -> str:
        return "NO_CHANGE"


NO_CHANGE = NoChange()


def read_after_first(find: Callable[..., T | None], skip_first: bool) -> Callable[..., T | None]:
    """`find`, except that with `skip_first` its first call answers None without reading.

    For a document nearly never stored yet (a ticket's first news): `update`'s first attempt inserts without a
    read; an insert that finds the document there after all raises Stale, and the next attempt reads it.
    """
    unread = skip_first

    def reading(*args, **kwargs) -> T | None:
        nonlocal unread
        if unread:
            unread = False
            return None
        return find(*args, **kwargs)

    return reading


def back_off(attempt: int) -> None:
    """A short random pause after losing a race, so that competing writers stop colliding in step."""
    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def update(
    load: Callable[[], T],
    change: Callable[[T], R],
    save: Callable[[T, R], object],
    busy: str = "The document is changing too fast; try again.",
) -> tuple[T, R]:
    """(the object, what `change` returned); `save(object, result)` unless `change` returned NO_CHANGE.

    `save` raises Stale when the stored object moved on since `load` (or was created meanwhile):
    then everything runs again on a fresh copy, up to SAVE_ATTEMPTS times; Conflict(busy) after that.
    """
    for attempt in range(SAVE_ATTEMPTS):
        obj = load()
        result = change(obj)
        if result is NO_CHANGE:
            return obj, result
        try:
            save(obj, result)
        except Stale:
            back_off(attempt)
            continue
        return obj, result
    raise Conflict(busy)
