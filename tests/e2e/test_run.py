"""`ticketflow run` as a developer starts it: a worker killed under it comes back, Ctrl-C ends everything.

The command runs at ports of its own (`--base-port`) against the session's broker and database and the
test's SMTP server, so it starts no FerretDB and no mail sink: the apis, the workers and intake's mail.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import sys

import pytest

from tests.harness import wait_until
from ticketflow import status
from ticketflow.cli import run_ports

pytestmark = pytest.mark.slow


def test_a_killed_worker_comes_back_and_ctrl_c_stops_everything(spawn, infra, smtp_server):
    base = _free_ports_in_a_row(7)  # the six of `run` and, after them, the one its mail process listens on
    env = {"SMTP_URL": smtp_server[1], "TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{base + 6}", "WEB_CONCURRENCY": "1"}
    run = spawn([sys.executable, "-m", "ticketflow.cli", "run", "--base-port", str(base)], env=env, name="run")
    urls = {service: f"http://127.0.0.1:{port}" for service, port in run_ports(base).items() if service != "portal"}
    portal = f"http://127.0.0.1:{run_ports(base)['portal']}"
    try:
        wait_until(lambda: status.collect(urls).ready, timeout=120, message=run.log_text())
        wait_until(lambda: status.readiness(portal) == "ready", timeout=60, message=run.log_text())
        killed = _pids(run.log_text(), "intake-worker")[0]

        os.kill(killed, signal.SIGKILL)

        wait_until(lambda: len(_pids(run.log_text(), "intake-worker")) == 2, timeout=60, message=run.log_text())
        assert re.search(r"system +\| intake-worker exited with signal SIGKILL; restarting in 1 s\n", run.log_text())
        wait_until(lambda: status.collect(urls).ready, timeout=60, message=run.log_text())  # consuming again

        run.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends it (its processes are in groups of their own)

        assert run.proc.wait(timeout=60) == 0
        log = run.log_text()
        stopping = log.partition("SIGINT received: stopping every process")[2]
        assert stopping.endswith("every process stopped\n") and "restarting" not in stopping, log
        assert "Traceback" not in log
        groups = _pids(log)
        assert len(groups) == 2 * 6 + 1 + 1  # an api and a worker per service and the portal, intake-mail, again
        wait_until(lambda: not any(_group_alive(pid) for pid in groups), timeout=30, message=log)
    finally:
        for pid in _pids(run.log_text()):  # whatever a failed test left running
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _free_ports_in_a_row(count: int) -> int:
    """The first of `count` ports in a row that nothing listens on, below the range free_port() draws from."""
    for _ in range(200):
        base = random.SystemRandom().randrange(20000, 30000)  # pytest-randomly seeds `random` alike everywhere
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.create_server(("127.0.0.1", port)))
            except OSError:
                continue
        return base
    raise AssertionError(f"no {count} free ports in a row")


def _pids(log: str, name: str = r"[\w-]+") -> list[int]:
    """The pid of each start of the named process (of every process), as the supervisor logged them."""
    return [int(pid) for pid in re.findall(rf"\| {name} (?:started|is back) \(pid (\d+)\)", log)]


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
