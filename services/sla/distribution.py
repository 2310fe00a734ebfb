"""The `histogram` of each GET /stats row: the measured times in fixed buckets. No I/O.

Kept apart from reports.py (which computes the rest of a row) so that each can change on its own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping

from services.sla.reports import tally

MINUTE, HOUR, DAY = 60, 3600, 86400
# upper bounds in business seconds, inclusive: 1, 5, 15, 30 minutes, 1, 2, 4, 8 hours, 1, 3, 7 days; then beyond
BOUNDS = (MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, DAY, 3 * DAY, 7 * DAY)


def histogram(times: Iterable[float]) -> list[dict]:
    """One bucket per bound and one beyond the last (`up_to_seconds` None), each with its count."""
    counts = [0] * (len(BOUNDS) + 1)
    for seconds in times:
        counts[bisect_left(BOUNDS, seconds)] += 1
    return [{"up_to_seconds": bound, "count": count} for bound, count in zip((*BOUNDS, None), counts, strict=True)]


def with_histograms(rows: list[dict], tickets: Iterable[Mapping]) -> list[dict]:
    """The rows of reports.stats, each with the histogram of the same finished clocks its median is over."""
    return with_tallied_histograms(rows, tally(tickets))


def with_tallied_histograms(rows: list[dict], tallied: Mapping[tuple, Mapping]) -> list[dict]:
    """The rows of reports.rows(tallied), each with the histogram of its tally's times (as `with_histograms`)."""
    return [{**row, "histogram": histogram(tallied[(row["priority"], row["clock"])]["times"])} for row in rows]
