"""shared/snapshots.py: a settings read serves the events that occurred before it began, and no others."""

from datetime import UTC, datetime, timedelta

from shared.snapshots import MARGIN, Snapshot


class Reads:
    """A read that counts itself and answers with the settings as they are now."""

    def __init__(self) -> None:
        self.count, self.settings = 0, ["first"]

    def __call__(self) -> list[str]:
        self.count += 1
        return list(self.settings)


def test_events_that_occurred_before_the_read_share_it():
    reads = Reads()
    snapshot = Snapshot(reads)
    old = datetime.now(UTC) - MARGIN - timedelta(seconds=5)  # a backlog's events
    assert snapshot.as_of(old) == ["first"]
    reads.settings = ["second"]  # stored after the events occurred: a fresh read would give it too, or not
    assert snapshot.as_of(old + timedelta(seconds=1)) == ["first"]
    assert reads.count == 1


def test_an_event_that_occurred_after_the_read_began_reads_again():
    reads = Reads()
    snapshot = Snapshot(reads)
    assert snapshot.as_of(datetime.now(UTC) - MARGIN - timedelta(seconds=5)) == ["first"]
    reads.settings = ["second"]  # a webhook added, then a ticket opened
    assert snapshot.as_of(datetime.now(UTC)) == ["second"]
    assert reads.count == 2


def test_within_the_margin_of_the_read_it_reads_again():
    reads = Reads()
    snapshot = Snapshot(reads, margin=timedelta(hours=1))  # clocks that may disagree by an hour
    snapshot.as_of(datetime.now(UTC) - timedelta(minutes=30))
    snapshot.as_of(datetime.now(UTC) - timedelta(minutes=30))
    assert reads.count == 2


def test_a_change_made_by_this_process_is_read_by_the_next_event():
    reads = Reads()
    snapshot = Snapshot(reads)
    old = datetime.now(UTC) - MARGIN - timedelta(seconds=5)
    snapshot.as_of(old)
    reads.settings = ["second"]
    snapshot.forget()
    assert snapshot.as_of(old) == ["second"]
    assert reads.count == 2
