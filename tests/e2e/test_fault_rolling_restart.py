"""A rolling restart while 200 tickets flow: every api and worker gets SIGTERM in turn, one every 2 seconds.

Each process is replaced as a deployment replaces it: a worker's successor starts beside it while it finishes
what it holds; an api's successor starts on the same port once it has exited (the client keeps one address). A
POST that got no answer meanwhile (refused, reset) is sent again with the same Idempotency-Key, so intake opens
its ticket once whatever the first attempt did. Afterwards every ticket was accepted once, assigned once, and
its receipt and assignment email arrived once each; every stopped process exited by itself, with status 0,
well before the harness's SIGKILL.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from shared.config import SERVICE_PORTS
from tests.conftest import Spawned, Spawner, _wait_healthy
from tests.e2e.checks import each_ticket_once
from tests.e2e.conftest import System
from tests.e2e.test_fault_broker import ROOMY
from tests.e2e.test_lifecycle import REQUESTER, help_desk
from tests.harness import auth_header

TICKETS = 200
EVERY = 2.0  # seconds between two SIGTERMs
START_AFTER = 20  # tickets accepted before the first SIGTERM
BOUNDED = {"TICKETFLOW_STOP_TIMEOUT": "20"}  # a worker's own bound (exit 1) comes before the harness's SIGKILL
STOP_WAIT = 30.0  # seconds the harness waits after SIGTERM before its SIGKILL: room for a busy machine


def post_ticket(system: System, topic: str, timeout: float = 120.0) -> tuple[int, dict]:
    """POST /tickets with an Idempotency-Key, sent again with the same key until an answer comes."""
    key = uuid.uuid4().hex
    request = {"subject": "Laptop for a new hire", "description": "Starts on Monday.", "requester": REQUESTER,
               "topic": topic, "priority": "normal", "source": "web"}  # fmt: skip
    headers = {**auth_header("portal"), "Idempotency-Key": key}
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.post(f"{system.urls['intake']}/tickets", json=request, headers=headers, timeout=15)
        except requests.RequestException:  # the api restarting: refused, reset, or no answer
            assert time.monotonic() < deadline, f"no answer to POST /tickets within {timeout} s"
            time.sleep(0.1)
            continue
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.status_code, response.json()


def processes_in_turn(system: System, spawn: Spawner) -> list[tuple[str, Spawned]]:
    """(service, process) of every api and worker, alternating, so that each service loses both in turn."""
    apis = {handle.name: handle for handle in spawn.handles if handle.name.endswith("-api")}
    order = []
    for service in SERVICE_PORTS:
        order += [(service, apis[f"{service}-api"]), (service, system.workers[service][0])]
    return order


def restart(system: System, spawn: Spawner, service: str, old: Spawned) -> Spawned:
    """SIGTERM and a successor (a worker's at once, an api's on its port once it exited); the old one returned."""
    if old.name.endswith("-worker"):
        system.start_worker(service)
        old.stop(timeout=STOP_WAIT)
    else:
        old.stop(timeout=STOP_WAIT)
        _wait_healthy(spawn.again(old), 60)
    return old


@pytest.mark.timeout(600)  # 200 tickets through one worker per service: 4 to 5 minutes on a busy 2-core machine
def test_every_process_restarted_in_turn_while_200_tickets_flow_loses_nothing_and_doubles_nothing(
    fresh_store, start_system, spawn
):
    system = start_system(workers=1, mongo_url=fresh_store, env={**ROOMY, **BOUNDED}, search=True)
    desk = help_desk(system, agents=4, capacity=60)  # 240 places for 200 tickets: every ticket gets an agent
    turn = processes_in_turn(system, spawn)
    started = threading.Event()
    stopped: list = []

    def roll() -> None:
        with ThreadPoolExecutor(len(turn)) as pool:
            for service, handle in turn:
                stopped.append(pool.submit(restart, system, spawn, service, handle))
                time.sleep(EVERY)

    roller = threading.Thread(target=roll, name="rolling-restart")
    answers, lock = [], threading.Lock()

    def one(_: int) -> dict:
        status, ticket = post_ticket(system, desk["topic"])
        with lock:
            answers.append(status)
            if len(answers) >= START_AFTER and not started.is_set():
                started.set()
                roller.start()
        return ticket

    with ThreadPoolExecutor(4) as pool:
        tickets = list(pool.map(one, range(TICKETS)))
    roller.join(timeout=len(turn) * EVERY + 120)
    assert not roller.is_alive()
    olds = [future.result() for future in stopped]
    assert len(olds) == 2 * len(SERVICE_PORTS)
    assert [(old.name, old.killed, old.proc.returncode) for old in olds] == [(old.name, False, 0) for old in olds], (
        "each process exited by itself, with status 0"
    )

    assert len({t["id"] for t in tickets}) == TICKETS  # a repeat answered 200 with the ticket of its first try
    listed = system.items("intake", "/tickets", {"topic": desk["topic"], "limit": 200})
    assert len(listed) == TICKETS, Counter(t["id"] for t in listed).most_common(3)
    each_ticket_once(system, desk, tickets)  # a notify worker stopped gracefully sends nothing twice
