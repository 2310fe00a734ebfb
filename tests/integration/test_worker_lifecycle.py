"""A worker process's life: /livez tells whether its consumer has the broker; SIGTERM stops it cleanly, in time.

Against real worker processes (intake's, the portal's) on the session's RabbitMQ and MongoDB; a
TcpProxy between the worker and RabbitMQ cuts its broker connection and gives it back.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from shared.topology import queue_name
from tests.harness import TcpProxy, consumers_on, wait_until
from tests.integration.conftest import event_from
from tests.integration.notify_fixtures import created_event
from ticketflow.local import free_port

STOP_TIMEOUT = 30  # the worker's own bound (TICKETFLOW_STOP_TIMEOUT): past it, it exits with 1 by itself


def livez(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}  # not listening yet


def consumed(port: int, event_type: str, outcome: str) -> float:
    """ticketflow_events_consumed_total of one type and outcome, as the worker's /metrics says."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = rf'ticketflow_events_consumed_total\{{[^}}]*outcome="{outcome}"[^}}]*type="{event_type}"[^}}]*\}} (\S+)'
    return sum(float(value) for value in re.findall(pattern, text))


def test_a_worker_cut_from_the_broker_fails_liveness_within_the_bound_and_recovers(infra, settings, spawn_worker):
    amqp = urlsplit(infra.amqp_url)
    with TcpProxy(amqp.hostname, amqp.port or 5672) as proxy:
        port = free_port()
        env = {"AMQP_URL": proxy.rewrite(infra.amqp_url), "TICKETFLOW_METRICS_PORT": str(port),
               "TICKETFLOW_LIVENESS_SECONDS": "2"}  # fmt: skip
        worker = spawn_worker("intake", env=env)
        queue = queue_name(settings, "intake")
        wait_until(lambda: consumers_on(infra.amqp_url, queue) >= 1, timeout=60, message="the worker consumes")
        wait_until(lambda: livez(port)[0] == 200, timeout=30, message="the worker is live while it consumes")

        proxy.stop()  # the worker's connection is cut, and new ones are refused
        status, body = wait_until(lambda: (answer := livez(port))[0] == 503 and answer, timeout=30,
                                  message="liveness fails once the broker is gone longer than the bound")  # fmt: skip
        assert body["status"] == "not live"
        assert any(reason.startswith("no broker connection for") for reason in body["reasons"]), body

        proxy.start()  # the broker is back: the consumer reconnects (its backoff is at most 10 s)
        status, body = wait_until(lambda: (answer := livez(port))[0] == 200 and answer, timeout=60,
                                  message="liveness recovers once the consumer has the broker again")  # fmt: skip
        assert body == {"status": "live"}
        assert worker.running


def test_the_portal_worker_answers_livez_and_stops_on_sigterm(spawn_worker):
    port = free_port()
    worker = spawn_worker("portal", env={"TICKETFLOW_METRICS_PORT": str(port)})
    # the answer that said 200 is the one checked (a second call could time out on a busy machine)
    status, body = wait_until(lambda: (answer := livez(port))[0] == 200 and answer, timeout=60,
                              message="the portal worker is live")  # fmt: skip
    assert (status, body) == (200, {"status": "live"})
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=STOP_TIMEOUT + 30) == 0, worker.log_text()


def test_a_worker_under_load_stops_on_sigterm_by_itself_and_loses_or_doubles_nothing(
    infra, settings, publish, intake_db, spawn_worker
):
    env = {"TICKETFLOW_STOP_TIMEOUT": str(STOP_TIMEOUT), "TICKETFLOW_METRICS_PORT": str(free_port())}
    first = spawn_worker("intake", env=env)
    queue = queue_name(settings, "intake")
    wait_until(lambda: consumers_on(infra.amqp_url, queue) >= 1, timeout=60, message="the worker consumes")
    ids: list[str] = []

    def publish_one() -> None:
        n = len(ids)
        data = {"agent_id": f"stop-{uuid.uuid4().hex}", "name": f"A{n}", "email": f"a{n}@example.com",
                "teams": ["network"], "lead_of": [], "available": True}  # fmt: skip
        envelope = event_from("assignment", "agent.updated", data["agent_id"], data)
        publish("agent.updated", envelope)
        ids.append(envelope["event_id"])

    def handled() -> int:
        return intake_db.processed_events.count_documents({"_id": {"$in": list(ids)}})

    for _ in range(300):
        publish_one()
    wait_until(lambda: handled() >= 20, timeout=60, message="the worker is busy with the events")
    exited = threading.Event()

    def keep_publishing() -> None:
        """The load, whatever the machine's speed: events keep coming until the worker has exited (at most 3,000)."""
        while not exited.is_set() and len(ids) < 3000:
            publish_one()
            time.sleep(0.002)

    publisher = threading.Thread(target=keep_publishing, daemon=True)
    publisher.start()
    first.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = first.proc.wait(timeout=STOP_TIMEOUT + 30)
    exited.set()
    publisher.join(timeout=60)
    assert code == 0, first.log_text()  # by itself: 1 past its bound
    print(f"stopped in {time.monotonic() - signalled:.2f} s")  # measured, not asserted: a busy machine is slower
    before = handled()
    publish_one()  # one more after the exit: the next worker has at least this one to handle
    assert before < len(ids)

    port = free_port()
    spawn_worker("intake", env={"TICKETFLOW_METRICS_PORT": str(port)})
    wait_until(lambda: handled() == len(ids), timeout=120, message="every event is handled after the restart")
    wait_until(lambda: consumed(port, "agent.updated", "ok") >= len(ids) - before, timeout=30)
    assert consumed(port, "agent.updated", "duplicate") == 0  # nothing the first one handled came again


def test_a_worker_still_waiting_for_its_database_stops_on_sigterm_with_0(spawn_worker):
    dead = f"mongodb://127.0.0.1:{free_port()}"  # nothing listens there: the worker waits for MongoDB
    worker = spawn_worker("intake", env={"MONGO_URL": dead, "TICKETFLOW_MONGO_TIMEOUT_MS": "200"})
    wait_until(lambda: "waiting for MongoDB" in worker.log_text(), timeout=60, message="the worker waits")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=STOP_TIMEOUT + 30) == 0, worker.log_text()  # not killed by the signal


def test_a_stopping_worker_ends_a_send_stuck_on_its_smtp_server_in_time_to_exit_with_0(publish, spawn_worker):
    """notify's worker, its sender waiting for an SMTP server that never greets, with a send timeout (600 s) far past
    its stop's bound (30 s): the send ends at the bound's time (its exit less a send timeout: already past), its
    outcome is stored, and the worker exits cleanly instead of being cut off with the send under way."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never says a word
        smtp_url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        env = {"SMTP_URL": smtp_url, "TICKETFLOW_SMTP_TIMEOUT": "600", "TICKETFLOW_STOP_TIMEOUT": str(STOP_TIMEOUT)}
        worker = spawn_worker("notify", env=env)
        publish("ticket.created", created_event(f"stuck-{uuid.uuid4().hex}"))
        silent.settimeout(60)
        connection, _ = silent.accept()  # a sender is in the middle of a send, waiting for the greeting
        with connection:
            worker.proc.send_signal(signal.SIGTERM)
            assert worker.proc.wait(timeout=STOP_TIMEOUT + 30) == 0, worker.log_text()  # not cut off at 30 s: 1
        assert "exiting now" not in worker.log_text()
