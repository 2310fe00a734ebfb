"""The histogram of each GET /stats row: bounds are inclusive, the last bucket holds the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sla import distribution, reports
from services.sla.domain import TicketClocks, default_policies

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def counts(histogram: list[dict]) -> dict:
    return {bucket["up_to_seconds"]: bucket["count"] for bucket in histogram if bucket["count"]}


def test_a_time_on_a_bound_counts_up_to_it_and_past_the_last_bound_beyond():
    histogram = distribution.histogram([0, 60, 61, 300, 7 * 86400, 7 * 86400 + 1, 10**9])
    assert [bucket["up_to_seconds"] for bucket in histogram] == [*distribution.BOUNDS, None]
    assert counts(histogram) == {60: 2, 300: 2, 604800: 1, None: 2}


def test_no_times_give_every_bucket_empty():
    histogram = distribution.histogram([])
    assert len(histogram) == len(distribution.BOUNDS) + 1 and counts(histogram) == {}


def _ticket(priority: str, *steps) -> dict:
    clocks = TicketClocks("t", calendars={})
    clocks.created(priority, NOW, default_policies())
    for method, minutes in steps:
        getattr(clocks, method)(NOW + timedelta(minutes=minutes))
    return clocks.to_dict()


def test_each_row_gets_the_histogram_of_the_clocks_its_median_is_over():
    tickets = [_ticket("high", ("replied", 4), ("resolved", 100)), _ticket("high", ("replied", 20)), _ticket("low")]
    rows = distribution.with_histograms(reports.stats(tickets), tickets)
    by_key = {(row["priority"], row["clock"]): row for row in rows}
    first = by_key["high", "first_response"]
    assert counts(first["histogram"]) == {300: 1, 1800: 1} and first["measured"] == 2
    assert counts(by_key["high", "resolution"]["histogram"]) == {7200: 1}  # 100 min; the open one is not measured
    assert counts(by_key["low", "first_response"]["histogram"]) == {}
