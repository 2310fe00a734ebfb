"""A share in percent, rounded to one decimal without saying what is not so: the reports of sla and the portal."""

from __future__ import annotations

import math


def share(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent to one decimal (None for nothing to count), never 100.0 while some of the whole is
    not part, nor 0.0 while some is: 1,999 met of 2,000 is 99.9, not the 100.0 that rounding gave (it read as no
    breach at all: a reviewer's find), and 1 of 2,002 is 0.1."""
    if not whole:
        return None
    exact = 100 * part / whole
    shown = round(exact, 1)
    if shown == 100.0 and part < whole:
        return math.floor(exact * 10) / 10
    if shown == 0.0 and part > 0:
        return 0.1
    return shown
