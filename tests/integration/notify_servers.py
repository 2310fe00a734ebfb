"""Real servers for notify's tests: an SMTP server (aiosmtpd) and an HTTP server that receives webhooks."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from ticketflow.local import free_port


class SmtpRecorder:
    """What the SMTP server received; it can refuse the next N messages, or every one, with a 451."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse_next, self.refuse_all, self.refused = 0, False, 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        with self._lock:
            if self.refuse_all or self.refuse_next > 0:
                self.refuse_next = max(self.refuse_next - 1, 0)
                self.refused += 1
                return "451 4.3.0 Try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in list(self.received) if m["To"] == address]

    def with_id(self, notification_id: str) -> list[EmailMessage]:
        return [m for m in list(self.received) if str(m["Message-ID"]).strip().startswith(f"<{notification_id}+")]


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpRecorder, str]]:
    """(the recorder, its SMTP_URL)."""
    recorder, port = SmtpRecorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, f"smtp://127.0.0.1:{port}"
    controller.stop()


class HookRecorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict, bytes]] = []  # (path, headers, body)
        self.hang_seconds = 0.0
        self.release = threading.Event()  # set: /hang answers at once from then on
        self.hanging = 0  # /hang requests being held right now
        self._lock = threading.Lock()


def _handler(recorder: HookRecorder):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/hang"):
                with recorder._lock:
                    recorder.hanging += 1
                recorder.release.wait(recorder.hang_seconds)
                with recorder._lock:
                    recorder.hanging -= 1
            recorder.received.append((self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def webhook_server() -> Iterator[tuple[HookRecorder, str]]:
    """(the recorder, its base URL); POSTs to /hang... wait `hang_seconds` (or until `release`) before answering."""
    recorder = HookRecorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder, f"http://127.0.0.1:{server.server_address[1]}"
    recorder.release.set()
    server.shutdown()
    server.server_close()
