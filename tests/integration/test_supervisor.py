"""`ticketflow run`'s supervisor with tiny Python processes: restarts, their backoff, and the stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.harness import wait_until
from ticketflow import local
from ticketflow.supervisor import Supervisor

SLEEPS = "import os, time\nprint('pid', os.getpid())\ntime.sleep(1000)"
FAILS = "print('failing'); raise SystemExit(3)"
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready')\ntime.sleep(1000)"


class Output:
    """What the supervisor printed, as one text."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def delays(self, name: str) -> list[float]:
        return [float(s) for s in re.findall(rf"\| {name} exited with code 3; restarting in ([\d.]+) s", self.text)]


@pytest.fixture
def supervise() -> Iterator[Callable[..., tuple[Supervisor, Output, threading.Thread]]]:
    """supervise({name: python code}, **options): a supervisor running them in a thread; stopped afterwards."""
    running: list[tuple[Supervisor, threading.Thread]] = []

    def start(programs: dict[str, str], **options) -> tuple[Supervisor, Output, threading.Thread]:
        out = Output()
        supervisor = Supervisor(out=out, **options)
        for name, code in programs.items():
            supervisor.add(name, [sys.executable, "-c", code], env=dict(os.environ))
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        running.append((supervisor, thread))
        return supervisor, out, thread

    yield start
    for supervisor, thread in running:
        supervisor.stop()
        thread.join(timeout=60)


def pids(out: Output, name: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"\| {name} (?:started|is back) \(pid (\d+)\)", out.text)]


def group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_process_that_exits_is_started_again_after_saying_so(supervise):
    _, out, _ = supervise({"quits": FAILS}, first_delay=0.05)

    wait_until(lambda: len(pids(out, "quits")) >= 2, timeout=30)

    assert re.search(r"\d\d:\d\d:\d\d quits  \| failing\n", out.text), out.text  # its lines, its name in front
    assert "system | quits exited with code 3; restarting in 0.05 s\n" in out.text
    assert out.text.index("restarting in") < out.text.index("quits is back (pid")


def test_a_killed_process_is_started_again(supervise):
    _, out, _ = supervise({"sleeps": SLEEPS}, first_delay=0.05)
    wait_until(lambda: re.search(r"sleeps \| pid \d+", out.text), timeout=30)
    first = pids(out, "sleeps")[0]

    os.kill(first, signal.SIGKILL)

    wait_until(lambda: len(pids(out, "sleeps")) == 2 and out.text.count("sleeps | pid") == 2, timeout=30)
    assert "sleeps exited with signal SIGKILL; restarting in 0.05 s" in out.text
    assert pids(out, "sleeps")[1] != first
    wait_until(lambda: group_gone(first), timeout=30)


def test_the_backoff_doubles_up_to_its_bound_while_a_process_fails_at_once(supervise):
    _, out, _ = supervise({"fails": FAILS}, first_delay=0.01, max_delay=0.04, steady_after=1000)

    wait_until(lambda: len(out.delays("fails")) >= 5, timeout=60)

    assert out.delays("fails")[:5] == [0.01, 0.02, 0.04, 0.04, 0.04]


def test_the_backoff_starts_over_after_a_steady_run(supervise):
    _, out, _ = supervise({"fails": FAILS}, first_delay=0.01, steady_after=0)  # every run counts as steady

    wait_until(lambda: len(out.delays("fails")) >= 3, timeout=60)

    assert set(out.delays("fails")) == {0.01}


def test_the_stop_ends_every_group_and_restarts_nothing(supervise):
    # a child in its group that stops only at its own SIGTERM, and a parent that waits for it, as gunicorn does
    child = "import signal, sys, time\ndef bye(*_):\n    print('child got SIGTERM'); sys.exit(0)\n"
    child += "signal.signal(signal.SIGTERM, bye)\nprint('ready')\ntime.sleep(1000)"
    parent = f"import signal, subprocess, sys, time\nchild = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
    parent += "signal.signal(signal.SIGTERM, lambda *_: sys.exit(child.wait()))\ntime.sleep(1000)"
    programs = {"sleeps": SLEEPS, "parent": parent, "fails": FAILS}
    supervisor, out, thread = supervise(programs, first_delay=1000)  # fails waits for its restart meanwhile
    wait_until(lambda: "| ready" in out.text and "sleeps | pid" in out.text and "fails exited" in out.text, timeout=30)
    groups = [pid for name in programs for pid in pids(out, name)]

    supervisor.stop()

    thread.join(timeout=60)
    assert not thread.is_alive()
    after = out.text.partition("stop received: stopping every process")[2]
    assert "sleeps stopped (signal SIGTERM)" in after
    assert re.search(r"parent +\| child got SIGTERM", after) and "parent stopped (code 0)" in after
    assert after.endswith("every process stopped\n") and "SIGKILL" not in after
    assert "restarting" not in after and "is back" not in after and len(pids(out, "fails")) == 1
    wait_until(lambda: all(group_gone(pid) for pid in groups), timeout=30)


def test_the_stop_kills_what_resists_it_after_its_bound(supervise):
    supervisor, out, thread = supervise({"stubborn": STUBBORN}, stop_timeout=0.5)
    wait_until(lambda: "| ready" in out.text, timeout=30)

    supervisor.stop()

    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "stubborn is still running: SIGKILL" in out.text and "stubborn stopped (signal SIGKILL)" in out.text
    wait_until(lambda: group_gone(pids(out, "stubborn")[0]), timeout=30)


def test_a_second_stop_kills_at_once_what_resists_the_first(supervise):
    supervisor, out, thread = supervise({"stubborn": STUBBORN}, stop_timeout=1000)  # only a second stop ends it
    wait_until(lambda: "| ready" in out.text, timeout=30)
    supervisor.stop()
    wait_until(lambda: "stopping every process" in out.text, timeout=30)

    supervisor.stop()  # a second Ctrl-C

    thread.join(timeout=60)
    assert not thread.is_alive() and "stubborn stopped (signal SIGKILL)" in out.text


def test_a_program_that_cannot_start_is_tried_again_with_the_backoff(tmp_path):
    out = Output()
    supervisor = Supervisor(out=out, first_delay=0.01, max_delay=0.02, steady_after=1000)
    supervisor.add("missing", [str(tmp_path / "no-such-program")], env={})
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: out.text.count("missing could not start") >= 3, timeout=30)
    finally:
        supervisor.stop()
        thread.join(timeout=60)

    delays = re.findall(r"missing could not start \(.*No such file.*\); retrying in ([\d.]+) s", out.text)
    assert delays[:3] == ["0.01", "0.02", "0.02"] and not thread.is_alive()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_everything_and_exits_0_without_a_traceback(sig):
    """In its own process, as `ticketflow run`: Ctrl-C, a kill, the terminal closed."""
    code = "from ticketflow.supervisor import Supervisor\ns = Supervisor()\n"
    code += f"s.add('sleeps', [{sys.executable!r}, '-c', {SLEEPS!r}], {{}})\nraise SystemExit(s.run())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=local.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        started = proc.stdout.readline()
        child = int(re.search(r"sleeps started \(pid (\d+)\)", started)[1])
        assert "sleeps | pid" in proc.stdout.readline()  # it runs: its signal handlers are in place

        proc.send_signal(sig)

        output = started + proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, output
        assert f"{sig.name} received: stopping every process" in output and "Traceback" not in output
        wait_until(lambda: group_gone(child), timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, NameError):
            os.killpg(child, signal.SIGKILL)


def test_when_the_supervisor_itself_fails_no_process_outlives_it():
    class Fails(Output):
        def write(self, text: str) -> None:
            if "boom" in text:
                raise RuntimeError("a bug of the supervisor's")
            super().write(text)

    out = Fails()
    supervisor = Supervisor(out=out)
    supervisor.add("sleeps", [sys.executable, "-c", SLEEPS], env=dict(os.environ))
    supervisor.add("booms", [sys.executable, "-c", "import time\ntime.sleep(0.5)\nprint('boom')"], env={})
    failed: list[BaseException] = []
    thread = threading.Thread(target=lambda: failed.append(pytest.raises(RuntimeError, supervisor.run)), daemon=True)
    thread.start()

    thread.join(timeout=60)

    assert failed and not thread.is_alive()
    wait_until(lambda: group_gone(pids(out, "sleeps")[0]), timeout=30)


def test_the_last_lines_of_a_process_are_shown_an_unfinished_one_too(supervise):
    last_words = "import sys\nsys.stdout.write('first\\nno newline')\nsys.exit(3)"
    _, out, _ = supervise({"quits": last_words}, first_delay=1000)

    wait_until(lambda: "quits exited with code 3" in out.text, timeout=30)

    assert re.search(r"quits +\| first\n.*quits +\| no newline\n", out.text), out.text
