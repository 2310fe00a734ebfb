"""The consumer's per-message guard, with stand-ins for the broker that encode what is published as pika does.

Headers pika can read but not write back (a float, a 65-bit number) and faults in the consumer's own
bookkeeping dead-letter the one message; only a lost connection reaches the reconnect path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pika
import pika.exceptions
import pytest

from shared import events
from shared.config import ConfigError, load_settings
from shared.consumer import Consumer


class FakeChannel:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.published: list[tuple[str, dict]] = []
        self.acked: list[int] = []
        self.fail_with = fail_with

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        if self.fail_with is not None:
            raise self.fail_with
        properties.encode()  # what pika does on the wire: raises for a header it cannot write
        self.published.append((routing_key, dict(properties.headers or {})))

    def basic_ack(self, delivery_tag, multiple=False):
        self.acked.append(delivery_tag)

    def get_waiting_message_count(self) -> int:
        return 0


class FakeConnection:
    def process_data_events(self, time_limit=0):
        pass


class NoIdempotency:
    def note(self, event_id, recorded=None):
        if recorded is not None:
            recorded(True)


class Method:
    delivery_tag = 7


def _failing(envelope):
    raise RuntimeError("the handler fails")


def _envelope(**kwargs) -> dict:
    return events.make_event("ticket.reopened", "t-1", {"reason": "again"}, producer="intake", event_id=None, **kwargs)


def _deliver(headers: dict | None, handler=_failing, envelope: dict | None = None, channel: FakeChannel | None = None):
    settings = load_settings({"TICKETFLOW_NAMESPACE": "unit", "TICKETFLOW_RETRY_DELAYS": "1,2"})
    consumer = Consumer(settings, "intake", {"ticket.reopened": handler}, NoIdempotency())
    envelope = envelope or _envelope()
    props = pika.BasicProperties(content_type="application/json", message_id=envelope["event_id"], headers=headers)
    channel = channel or FakeChannel()
    try:
        consumer._deliver(FakeConnection(), channel, channel, Method(), props, events.encode(envelope))
    finally:
        consumer._pool.shutdown(wait=True)
    return channel


@pytest.mark.parametrize("value", [1.5, float("nan"), "abc", -100, 2**70, b"\x01", True, [1]])
def test_an_unusable_attempt_header_dead_letters_the_message_as_invalid(value):
    channel = _deliver({"x-ticketflow-attempt": value})
    ((queue, headers),) = channel.published
    assert queue == "unit.intake.dead" and channel.acked == [7]
    assert headers["x-ticketflow-reason"] == "invalid"
    assert "x-ticketflow-attempt" in headers["x-ticketflow-error"]
    assert "the handler fails" in headers["x-ticketflow-error"]


def test_a_header_pika_cannot_write_back_does_not_stop_a_retry():
    channel = _deliver({"x-ticketflow-attempt": 0, "x-from-elsewhere": 2.5, "x-big": 2**70})
    ((queue, headers),) = channel.published
    assert queue == "unit.intake.retry.1000ms" and channel.acked == [7]
    assert headers["x-ticketflow-attempt"] == 1
    assert headers["x-from-elsewhere"] == "2.5"  # kept, as text


def test_a_fault_in_the_consumers_own_bookkeeping_dead_letters_the_one_message(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("bookkeeping")

    monkeypatch.setattr(Consumer, "_retry_or_dead_letter", broken)
    channel = _deliver({})
    ((queue, headers),) = channel.published
    assert queue == "unit.intake.dead" and channel.acked == [7]
    assert headers["x-ticketflow-reason"] == "error" and "KeyError" in headers["x-ticketflow-error"]


def test_a_lost_connection_still_reaches_the_reconnect_path_unacked():
    channel = FakeChannel(fail_with=pika.exceptions.StreamLostError("gone"))
    with pytest.raises(pika.exceptions.StreamLostError):
        _deliver({}, channel=channel)
    assert channel.acked == []


def test_an_event_from_beyond_the_allowed_clock_skew_is_dead_lettered_before_its_handler_runs():
    ran = []
    ahead = _envelope(occurred_at=datetime.now(UTC) + timedelta(seconds=400))
    ((queue, headers),) = _deliver({}, handler=ran.append, envelope=ahead).published
    assert ran == [] and queue == "unit.intake.dead"
    assert headers["x-ticketflow-reason"] == "invalid" and "in the future" in headers["x-ticketflow-error"]
    slightly = _envelope(occurred_at=datetime.now(UTC) + timedelta(seconds=60))  # within 300 s: a clock a bit fast
    assert _deliver({}, handler=ran.append, envelope=slightly).published == [] and len(ran) == 1


def test_the_clock_skew_setting_is_read_and_checked():
    assert load_settings({}).max_clock_skew == 300.0
    assert load_settings({"TICKETFLOW_MAX_CLOCK_SKEW": "30"}).max_clock_skew == 30.0
    for bad in ("soon", "-5", "0", "nan", "inf"):
        with pytest.raises(ConfigError, match="TICKETFLOW_MAX_CLOCK_SKEW"):
            load_settings({"TICKETFLOW_MAX_CLOCK_SKEW": bad})


class Backlog(FakeChannel):
    """A channel with `waiting` deliveries already in this process after the one in hand."""

    def __init__(self, waiting: int) -> None:
        super().__init__()
        self.waiting = waiting
        self.acks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag, multiple=False):
        self.acks.append((delivery_tag, multiple))

    def get_waiting_message_count(self) -> int:
        return self.waiting


def _handled(channel: FakeChannel, tags: range, consumer: Consumer | None = None) -> Consumer:
    settings = load_settings({"TICKETFLOW_NAMESPACE": "unit"})
    consumer = consumer or Consumer(settings, "intake", {"ticket.reopened": lambda envelope: None}, NoIdempotency())
    body = events.encode(_envelope())
    for tag in tags:
        method = type("M", (), {"delivery_tag": tag})()
        consumer._deliver(FakeConnection(), channel, channel, method, pika.BasicProperties(headers={}), body)
    return consumer


def test_a_caught_up_consumer_acks_each_delivery_at_once():
    channel = Backlog(waiting=0)
    _handled(channel, range(1, 4))._pool.shutdown()
    assert channel.acks == [(1, True), (2, True), (3, True)]


def test_a_backlog_is_acked_together_at_most_ack_every_deliveries_a_time_and_the_rest_once_caught_up():
    from shared.consumer import ACK_EVERY

    channel = Backlog(waiting=5)
    consumer = _handled(channel, range(1, ACK_EVERY + 4))
    assert channel.acks == [(ACK_EVERY, True)]  # one frame for the first ACK_EVERY; 3 more done, not acked yet
    channel.waiting = 0
    _handled(channel, range(ACK_EVERY + 4, ACK_EVERY + 5), consumer)._pool.shutdown()
    assert channel.acks == [(ACK_EVERY, True), (ACK_EVERY + 4, True)]  # the queue is caught up: all of them


def test_a_delivery_sent_to_a_retry_queue_is_acked_at_once_even_in_a_backlog():
    channel = Backlog(waiting=5)
    settings = load_settings({"TICKETFLOW_NAMESPACE": "unit", "TICKETFLOW_RETRY_DELAYS": "1,2"})
    consumer = Consumer(settings, "intake", {"ticket.reopened": _failing}, NoIdempotency())
    method = type("M", (), {"delivery_tag": 3})()
    try:
        consumer._deliver(FakeConnection(), channel, channel, method, pika.BasicProperties(headers={}),
                          events.encode(_envelope()))  # fmt: skip
    finally:
        consumer._pool.shutdown()
    assert len(channel.published) == 1  # its copy in the retry queue, so the original goes now
    assert channel.acks == [(3, True)]
