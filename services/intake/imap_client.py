"""IMAP plumbing for intake's poller: imaplib with a reader of its own, and IDLE (RFC 2177), which Python 3.11's
imaplib lacks.

imaplib reads through `socket.makefile()`, whose reader refuses to read again after one timeout, so it cannot
wait for the server a little at a time. `Session` reads from a buffer of its own instead: `wait_line(seconds)`
returns None when no whole line came in time and keeps what did arrive, and `idle()` is built on it.
"""

from __future__ import annotations

import imaplib
import itertools
import re
import ssl
import threading
import time

_CHUNK = 1 << 16
_STOP_CHECK = 0.25  # seconds between two looks at the stop event while waiting in IDLE
_LITERAL = re.compile(rb"\{(\d+)\}\r?\n$")
_EXISTS = re.compile(rb"\* \d+ EXISTS\b", re.IGNORECASE)


def connect(host: str, port: int, tls: bool, ssl_context: ssl.SSLContext, timeout: float) -> Session:
    """A connection that has read the server's greeting; `timeout` bounds the connect and every later read."""
    if tls:
        return _TlsSession(host, port, ssl_context=ssl_context, timeout=timeout)
    return _PlainSession(host, port, timeout=timeout)


class Session:
    """What imaplib.IMAP4 does, read from its own buffer; plus wait_line() and idle()."""

    sock: ssl.SSLSocket
    abort: type[Exception]
    error: type[Exception]

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        self._buffer = bytearray()
        self._idle_tags = itertools.count(1)

    def readline(self) -> bytes:
        start = 0
        while (end := self._buffer.find(b"\n", start)) < 0:
            if len(self._buffer) > imaplib._MAXLINE:
                raise self.error(f"got more than {imaplib._MAXLINE} bytes")
            start = len(self._buffer)
            self._fill(_CHUNK)
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill(min(size - len(self._buffer), 1 << 20))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def wait_line(self, seconds: float) -> bytes | None:
        """The next line, or None when none is complete after `seconds` (what arrived stays in the buffer)."""
        if b"\n" not in self._buffer:
            usual = self.sock.gettimeout()
            self.sock.settimeout(seconds)
            try:
                self._fill(_CHUNK)
            except TimeoutError:
                return None
            finally:
                self.sock.settimeout(usual)
        return self.readline() if b"\n" in self._buffer else None

    def idle(self, seconds: float, stop: threading.Event) -> None:
        """Wait in IDLE until the server reports new mail (EXISTS), `stop` is set or `seconds` pass; then leave it
        (DONE). Flag changes and expunges (other clients at work) do not end the wait."""
        tag = f"idle{next(self._idle_tags)}".encode()  # lowercase: never one of imaplib's own tags
        self.send(tag + b" IDLE\r\n")
        while not (line := self._response()).startswith(b"+"):
            if line.startswith(tag + b" "):
                raise self.error(f"IDLE refused: {one_line(line)}")
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            line = self.wait_line(min(left, _STOP_CHECK))
            if line is not None and _EXISTS.match(self._response(line)):
                break
        self.send(b"DONE\r\n")
        while not (line := self._response()).startswith(tag + b" "):
            pass
        if not line[len(tag) + 1 :].upper().startswith(b"OK"):
            raise self.error(f"IDLE ended with {one_line(line)}")

    def _response(self, line: bytes | None = None) -> bytes:
        """A whole response (its literals read and left out), from `line` on or from the next line; BYE raises."""
        line = self.readline() if line is None else line
        while found := _LITERAL.search(line):
            self.read(int(found.group(1)))
            line = line[: found.start()] + self.readline()
        if line.upper().startswith(b"* BYE"):
            raise self.abort(one_line(line))
        return line

    def _fill(self, size: int) -> None:
        chunk = self.sock.recv(max(size, 1))
        if not chunk:
            raise self.abort("socket error: EOF")
        self._buffer += chunk


class _PlainSession(Session, imaplib.IMAP4):
    pass


class _TlsSession(Session, imaplib.IMAP4_SSL):
    pass


def ok(response: tuple[str, list], what: str) -> list:
    """The data of an OK response; imaplib.IMAP4.error naming `what` for NO or BAD."""
    typ, data = response
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {typ} {one_line(data[0] if data else b'')}")
    return data


def quoted(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_line(value: object, limit: int = 200) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:limit]
