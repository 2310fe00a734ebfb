"""`ticketflow run`'s supervisor: it keeps a set of processes running on one machine until it is stopped.

Each process runs in a process group of its own, its output lines shown with the time and its name in
front, in a colour of its own on a terminal. A process that exits or is killed is started again after a
backoff: 1 s, doubling up to 30 s, and 1 s again once it had run steadily; so a process that fails at
once (a port taken) is retried every 30 s at most, never in a hot loop. SIGINT or SIGTERM (Ctrl-C) sends
SIGTERM to every group, SIGKILL to what is left after STOP_TIMEOUT seconds (or at a second Ctrl-C), and
restarts nothing meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STEADY_AFTER = 30.0  # a process that ran this long had a good run: its next restart waits FIRST_DELAY again
STOP_TIMEOUT = 25.0  # beyond the workers' own bound (TICKETFLOW_STOP_TIMEOUT, 20 s) and gunicorn's (10 s)
SYSTEM = "system"  # the name in front of the supervisor's own lines
# cyan, yellow, green, magenta, red, blue, then their bright kinds (ANSI)
COLOURS = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")


@dataclass
class Program:
    """One supervised command and the state of its current run."""

    name: str
    argv: list[str]
    env: dict[str, str]
    colour: str
    proc: subprocess.Popen | None = None
    started: float = 0.0
    delay: float = 0.0  # the backoff of the last restart; 0 until one was needed
    due: float | None = None  # when the next start is due, while it waits
    runs: int = 0
    partial: bytes = b""  # a line whose end has not arrived yet


class Supervisor:
    def __init__(
        self,
        out: TextIO | None = None,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        steady_after: float = STEADY_AFTER,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.out = out or sys.stdout
        self.first_delay, self.max_delay, self.steady_after = first_delay, max_delay, steady_after
        self.stop_timeout = stop_timeout
        self.programs: dict[str, Program] = {}
        self._selector: selectors.BaseSelector = None  # type: ignore[assignment]  # run() opens it
        self._wake_read = self._wake_write = -1  # run()'s pipe: stop() writes to it, so that select() returns
        self._stop_requests = 0
        self._signal_name: str | None = None
        self._width = len(SYSTEM)
        try:
            self._colours = self.out.isatty()
        except (AttributeError, ValueError):
            self._colours = False

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        assert name not in self.programs, "process names must be unique"
        # unbuffered, so that a Python process's lines show as it writes them, not when a buffer fills
        env = {"PYTHONUNBUFFERED": "1", **env}
        self.programs[name] = Program(name, argv, env, COLOURS[len(self.programs) % len(COLOURS)])
        self._width = max(self._width, len(name))

    def stop(self) -> None:
        """Ask run() to stop everything (from a signal handler or another thread); a second call kills."""
        self._stop_requests += 1
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def run(self) -> int:
        """Start every process and keep each running until stop(), SIGINT or SIGTERM; then stop them all: 0."""
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        restore = self._handle_signals()
        try:
            for program in self.programs.values():
                self._start(program)
            while not self._stop_requests:
                self._wait_for_output(self._until_next_start())
                self._reap(restart=True)
                self._start_due()
            self._stop_all()
        finally:
            self._kill_leftovers()
            restore()
            self._selector.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1
        return 0

    def _kill_leftovers(self) -> None:
        """After an error of the supervisor itself: no process may outlive it, holding its ports."""
        for program in self.programs.values():
            if program.proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(program.proc.pid, signal.SIGKILL)
                program.proc.wait()
                program.proc.stdout.close()
                program.proc = None

    def _handle_signals(self):
        """SIGINT, SIGTERM and SIGHUP (the terminal closed) stop; the handler only records the signal (a print
        there could re-enter a print under way)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum, frame) -> None:
            self._signal_name = signal.Signals(signum).name
            self.stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        return lambda: [signal.signal(sig, old) for sig, old in previous.items()]

    def _start(self, program: Program) -> None:
        program.due = None
        try:
            proc = subprocess.Popen(
                program.argv, env=program.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            delay = self._schedule(program, ran=0.0)
            self._say(f"{program.name} could not start ({exc}); retrying in {delay:g} s")
            return
        program.proc, program.started = proc, time.monotonic()
        program.runs += 1
        os.set_blocking(proc.stdout.fileno(), False)
        self._selector.register(proc.stdout, selectors.EVENT_READ, program)
        self._say(f"{program.name} {'started' if program.runs == 1 else 'is back'} (pid {proc.pid})")

    def _until_next_start(self) -> float:
        """How long select may wait: until the next start is due, and at most 0.5 s to notice exits."""
        due = [program.due for program in self.programs.values() if program.due is not None]
        return max(0.0, min([0.5, *(moment - time.monotonic() for moment in due)]))

    def _wait_for_output(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 512)
            else:
                self._read(key.data)

    def _read(self, program: Program) -> bool:
        """Show every whole line the process wrote; False when there was nothing to read."""
        try:
            chunk = os.read(program.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return False
        *lines, program.partial = (program.partial + chunk).split(b"\n")
        for line in lines:
            self._show(program.name, line.decode("utf-8", "replace").rstrip("\r"), program.colour)
        if not chunk:  # the end: no process of its group holds the pipe any more
            self._close_output(program)
        return bool(chunk)

    def _close_output(self, program: Program) -> None:
        """Show what is left of an unfinished line, and stop reading the process's output."""
        if program.partial:
            self._show(program.name, program.partial.decode("utf-8", "replace"), program.colour)
        program.partial = b""
        self._selector.unregister(program.proc.stdout)
        program.proc.stdout.close()

    def _reap(self, restart: bool) -> None:
        for program in self.programs.values():
            proc = program.proc
            # WNOWAIT leaves the exited process a zombie: its group id cannot be reused while we kill the group
            if proc is None or os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                continue
            # what is left of its group (gunicorn's workers) would hold its port and its pipe: it goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
            for _ in range(16):  # what it wrote last (a pipe holds 64 KiB), bounded should a writer linger
                if proc.stdout.closed or not self._read(program):
                    break
            if not proc.stdout.closed:
                self._close_output(program)
            program.proc = None
            how = _how(code)
            if restart:
                delay = self._schedule(program, ran=time.monotonic() - program.started)
                self._say(f"{program.name} exited with {how}; restarting in {delay:g} s")
            else:
                self._say(f"{program.name} stopped ({how})")

    def _schedule(self, program: Program, ran: float) -> float:
        """The next start's backoff: doubled at each exit in a row, FIRST_DELAY after a steady run."""
        steady = ran >= self.steady_after or not program.delay
        program.delay = self.first_delay if steady else min(program.delay * 2, self.max_delay)
        program.due = time.monotonic() + program.delay
        return program.delay

    def _start_due(self) -> None:
        now = time.monotonic()
        for program in self.programs.values():
            if program.due is not None and program.due <= now and not self._stop_requests:
                self._start(program)

    def _stop_all(self) -> None:
        """SIGTERM to every group; SIGKILL to what is still there after stop_timeout or a second request."""
        self._say(f"{self._signal_name or 'stop'} received: stopping every process (Ctrl-C again kills them)")
        running = [program for program in self.programs.values() if program.proc is not None]
        for program in self.programs.values():
            program.due = None
        for program in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(program.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self._stop_requests < 2 and any(p.proc for p in running) and time.monotonic() < deadline:
            self._wait_for_output(min(0.2, max(0.0, deadline - time.monotonic())))
            self._reap(restart=False)
        for program in running:
            if program.proc is not None:
                self._say(f"{program.name} is still running: SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(program.proc.pid, signal.SIGKILL)
        while any(p.proc for p in running):
            self._wait_for_output(0.1)
            self._reap(restart=False)
        self._say("every process stopped")

    def _say(self, text: str) -> None:
        self._show(SYSTEM, text, None)

    def _show(self, name: str, text: str, colour: str | None) -> None:
        prefix = f"{datetime.now():%H:%M:%S} {name:<{self._width}} | "
        if colour and self._colours:
            prefix = f"\033[0m\033[{colour}m{prefix}\033[0m"
        with contextlib.suppress(OSError):  # output gone (a closed pipe): supervising goes on
            self.out.write(prefix + text + "\n")
            self.out.flush()


def _how(code: int) -> str:
    """'code 3' or 'signal SIGKILL', from a Popen returncode."""
    if code >= 0:
        return f"code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"
