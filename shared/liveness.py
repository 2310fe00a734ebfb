"""A worker's own small HTTP server on its metrics port: /metrics for Prometheus, /livez for the orchestrator.

/livez tells the truth about the parts a worker cannot do without: it fails (503, with the reasons)
once the consumer has had no broker connection for longer than the bound, or its handler has held one
message longer than that, or when a timer thread has died or one run of a timer hangs, and it answers
200 again once they are back. A dead timer is
not restarted in the process: a timer ends only through what its loop does not catch, which may
leave its state (the dispatcher's count of sends in flight...) wrong, and a hung one cannot be
stopped; a fresh process, which the orchestrator starts when /livez fails, is the state we know.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

if TYPE_CHECKING:
    from shared.consumer import Consumer
    from shared.runtime import Timer

log = logging.getLogger(__name__)


class Liveness:
    """What /livez reports: the reasons the worker is not live (none: it is)."""

    def __init__(
        self,
        bound: float,
        consumer: Consumer | None,
        timers: list[tuple[Timer, threading.Thread]],
        stopping: threading.Event,
    ):
        self.bound, self.consumer, self.timers, self.stopping = bound, consumer, timers, stopping

    def reasons(self) -> list[str]:
        found = []
        if self.consumer is not None and (offline := self.consumer.offline_for()) > self.bound:
            missing = self.consumer.missing  # connected, but the broker lacks one of its queues
            found.append(f"not consuming: {missing}" if missing else f"no broker connection for {offline:.0f} s "
                         f"(bound {self.bound:g} s)")  # fmt: skip
        if self.consumer is not None and (handling := self.consumer.handling_for()) > self.bound:
            found.append(f"one message in hand for {handling:.0f} s (bound {self.bound:g} s)")
        for timer, thread in self.timers:
            since = timer.running_since
            allowed = max(self.bound, timer.interval)  # a run may take as long as the pause between two runs
            if thread.ident is not None and not thread.is_alive() and not self.stopping.is_set():
                found.append(f"timer {timer.name} died")
            elif since is not None and (running := time.monotonic() - since) > allowed:
                found.append(f"timer {timer.name} has not ticked for {running:.0f} s (bound {allowed:g} s)")
        return found


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = self.path.split("?", 1)[0]
        if path == "/livez":
            reasons = self.server.liveness.reasons()
            body = {"status": "not live", "reasons": reasons} if reasons else {"status": "live"}
            self._answer(503 if reasons else 200, json.dumps(body).encode(), "application/json")
        elif path == "/metrics":
            self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        else:
            self._answer(404, b'{"status": "not found"}', "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - a probe every few seconds is no news
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    liveness: Liveness


def serve(port: int, liveness: Liveness) -> _Server:
    """Serve /metrics and /livez on every interface at `port`, from a daemon thread."""
    server = _Server(("0.0.0.0", port), _Handler)
    server.liveness = liveness
    threading.Thread(target=server.serve_forever, name="liveness-http", daemon=True).start()
    return server
