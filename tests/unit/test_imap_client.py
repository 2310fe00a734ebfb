"""intake's IMAP session against a scripted server on loopback: waits that time out mid-line lose nothing, IDLE."""

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from services.intake.imap_client import Session, connect


class ScriptedServer:
    """Greets, answers CAPABILITY, and in IDLE sends what the test hands to `send`; DONE ends IDLE with OK."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.in_idle = threading.Event()
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def _serve(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.sendall(b"* OK ready\r\n")
        with contextlib.suppress(OSError), self.conn.makefile("rb") as lines:
            self._answer(lines)

    def _answer(self, lines) -> None:
        idle_tag = b""
        for line in lines:
            tag, _, command = line.rstrip(b"\r\n").partition(b" ")
            if command == b"CAPABILITY":
                self.conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")
            elif command == b"IDLE":
                idle_tag = tag
                self.conn.sendall(b"+ idling\r\n")
                self.in_idle.set()
            elif tag == b"DONE":
                self.conn.sendall(idle_tag + b" OK idle done\r\n")
            else:
                self.conn.sendall(tag + b" BAD unknown\r\n")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def session(server) -> Iterator[Session]:
    imap = connect("127.0.0.1", server.port, False, ssl.create_default_context(), timeout=5)
    yield imap
    imap.shutdown()


def idle_in_thread(session: Session, seconds: float = 30.0) -> tuple[threading.Thread, threading.Event, list]:
    stop, errors = threading.Event(), []

    def idle() -> None:
        try:
            session.idle(seconds, stop)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=idle, daemon=True)
    thread.start()
    return thread, stop, errors


def test_a_wait_that_times_out_mid_line_keeps_what_arrived(server, session):
    server.send(b"* 1 EXI")
    for _ in range(3):
        assert session.wait_line(0.05) is None
    server.send(b"STS\r\n* 1 RECENT\r\n")
    assert session.wait_line(5) == b"* 1 EXISTS\r\n"
    assert session.wait_line(5) == b"* 1 RECENT\r\n"


def test_idle_returns_when_the_mailbox_changes_and_leaves_it_with_done(server, session):
    thread, _, errors = idle_in_thread(session)
    assert server.in_idle.wait(5)
    server.send(b"* OK Still here\r\n")  # a keep-alive is no change: IDLE goes on
    server.send(b"* 3 EX")
    server.send(b"ISTS\r\n")
    thread.join(timeout=5)
    assert not thread.is_alive() and errors == []
    assert session.capability()[0] == "OK"  # DONE's tagged OK was read: the session carries on


def test_idle_returns_when_stop_is_set(server, session):
    thread, stop, errors = idle_in_thread(session)
    assert server.in_idle.wait(5)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and errors == []


def test_bye_in_idle_aborts_the_session(server, session):
    thread, _, errors = idle_in_thread(session)
    assert server.in_idle.wait(5)
    server.send(b"* BYE Server shutting down.\r\n")
    thread.join(timeout=5)
    assert [type(error) for error in errors] == [session.abort]
    assert "Server shutting down" in str(errors[0])
