"""A worker's /livez verdicts (shared/liveness.py) and the timer state they read, with fakes for the consumer."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from shared.liveness import Liveness, serve
from shared.runtime import Timer, _timer_loop
from tests.harness import wait_until
from ticketflow.local import free_port


class FakeConsumer:
    def __init__(self, offline: float = 0.0, handling: float = 0.0) -> None:
        self.offline, self.handling, self.missing = offline, handling, None

    def offline_for(self) -> float:
        return self.offline

    def handling_for(self) -> float:
        return self.handling


def running(name: str = "t") -> tuple[Timer, threading.Thread]:
    """A timer whose thread is alive (it waits until the test ends)."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait, args=(5,), daemon=True)
    thread.start()
    return Timer(name, 0.5, lambda: None), thread


def test_live_while_the_consumer_has_the_broker_or_lost_it_for_less_than_the_bound():
    consumer = FakeConsumer(offline=0.0)
    liveness = Liveness(30.0, consumer, [running()], threading.Event())
    assert liveness.reasons() == []
    consumer.offline = 29.0
    assert liveness.reasons() == []
    consumer.offline = 42.4
    assert liveness.reasons() == ["no broker connection for 42 s (bound 30 s)"]
    consumer.offline = 0.0  # reconnected
    assert liveness.reasons() == []


def test_a_consumer_whose_broker_lacks_a_queue_says_which_waits_and_fails_liveness_for_that(monkeypatch, caplog):
    """A change review's find: a retry queue missing in definitions mode looped every 10 s with two tracebacks, and
    /livez said "no broker connection" while the connection was fine."""
    from shared import consumer as consuming
    from shared.config import load_settings
    from shared.topology import MissingTopology

    stop, waits = threading.Event(), []
    worker = consuming.Consumer(load_settings({}), "intake", {}, None, stop=stop)

    def consume_once():
        raise MissingTopology("the broker has no queue ticketflow.intake.retry.7000ms: import the definitions")

    def wait(seconds):  # the first look's wait, then the stop
        waits.append(seconds)
        stop.set()

    monkeypatch.setattr(worker, "_consume_once", consume_once)
    monkeypatch.setattr(stop, "wait", wait)
    worker.run()

    assert waits == [consuming.MISSING_WAIT] and "Traceback" not in caplog.text
    assert "cannot consume: the broker has no queue ticketflow.intake.retry.7000ms" in caplog.text
    monkeypatch.setattr(worker, "offline_for", lambda: 42.0)
    assert Liveness(30.0, worker, [], threading.Event()).reasons() == [
        "not consuming: the broker has no queue ticketflow.intake.retry.7000ms: import the definitions"
    ]


def test_a_handler_that_hangs_past_the_bound_fails_liveness():
    consumer = FakeConsumer(handling=12.0)
    liveness = Liveness(30.0, consumer, [running()], threading.Event())
    assert liveness.reasons() == []
    consumer.handling = 31.2
    assert liveness.reasons() == ["one message in hand for 31 s (bound 30 s)"]
    consumer.handling = 0.0  # done: the next message
    assert liveness.reasons() == []


def test_a_dead_timer_thread_fails_liveness_unless_the_worker_is_stopping():
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    stopping = threading.Event()
    liveness = Liveness(30.0, None, [running(), (Timer("outbox-relay", 0.5, lambda: None), dead)], stopping)
    assert liveness.reasons() == ["timer outbox-relay died"]
    stopping.set()  # timers end on a stop: no death
    assert liveness.reasons() == []


def test_a_timer_not_started_yet_is_no_dead_one():
    unstarted = threading.Thread(target=lambda: None)
    assert Liveness(30.0, None, [(Timer("t", 1.0, lambda: None), unstarted)], threading.Event()).reasons() == []


def test_a_timer_run_that_hangs_past_the_bound_or_its_interval_fails_liveness():
    timer, thread = running("dispatch")
    hourly, hourly_thread = running("expire-records")
    hourly.interval = 3600.0
    liveness = Liveness(30.0, None, [(timer, thread), (hourly, hourly_thread)], threading.Event())
    timer.running_since = time.monotonic() - 20
    hourly.running_since = time.monotonic() - 600  # an hourly clean-up may take longer than the bound
    assert liveness.reasons() == []
    timer.running_since = time.monotonic() - 80
    (reason,) = liveness.reasons()
    assert reason.startswith("timer dispatch has not ticked for 8") and reason.endswith("s (bound 30 s)")
    timer.running_since = None  # the run ended
    assert liveness.reasons() == []


def test_the_timer_loop_records_the_run_under_way_and_returns_on_a_stop_set_with_its_wakeup():
    seen, release = [], threading.Event()
    stop, wakeup = threading.Event(), threading.Event()
    timer = Timer("t", 3600.0, lambda: seen.append(timer.running_since) or release.wait(5), wakeup=wakeup)
    thread = threading.Thread(target=_timer_loop, args=(timer, stop), daemon=True)
    thread.start()
    wait_until(lambda: seen, timeout=30)
    assert seen[0] is not None and timer.running_since is not None
    release.set()
    wait_until(lambda: timer.running_since is None, timeout=30)
    stop.set()
    wakeup.set()  # what the worker's stop watch does: a timer sleeping on its own wake-up sees the stop
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.fixture
def server():
    consumer = FakeConsumer()
    port = free_port()
    httpd = serve(port, Liveness(10.0, consumer, [running()], threading.Event()))
    yield port, consumer
    httpd.shutdown()
    httpd.server_close()


def get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def test_the_server_answers_livez_as_json_and_metrics_as_prometheus_text(server):
    port, consumer = server
    assert get(port, "/livez") == (200, b'{"status": "live"}', "application/json")
    consumer.offline = 11.0
    status, body, content_type = get(port, "/livez?verbose=1")
    assert (status, content_type) == (503, "application/json")
    assert json.loads(body) == {"status": "not live", "reasons": ["no broker connection for 11 s (bound 10 s)"]}
    status, body, content_type = get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain") and b"ticketflow_events_consumed_total" in body
    assert get(port, "/nothing")[0] == 404
