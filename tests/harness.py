"""Test helpers that need no fixture: polling, a breakable TCP proxy, tokens, rabbitmqctl."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from shared.auth import issue_token
from ticketflow.local import free_port, is_local_host

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, message: str = "") -> T:
    """Poll predicate until it returns something truthy and return that; AssertionError on timeout.

    An exception raised by the predicate counts as "not yet"; the last one is shown on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # e.g. a server still starting; reported on timeout
            result, last_error = None, exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout} s: {message or predicate!r}{detail}") from last_error
        time.sleep(interval)


def flushed(flusher) -> None:
    """Wait until an outbox flusher has tried to publish everything it was given (a busy machine's first publish
    connects to the broker first); AssertionError if it has not within 30 s."""
    assert flusher.drain(30.0), "the outbox flusher did not finish publishing within 30 s"


def token(role: str, **claims) -> str:
    """A bearer token signed with the session's TICKETFLOW_JWT_SECRET (set by tests/conftest.py); `claims` as
    shared.auth.issue_token takes them (agent_id, ttl, sub, requester_email, ticket_id)."""
    return issue_token(os.environ["TICKETFLOW_JWT_SECRET"], role, **claims)


def auth_header(
    role: str, agent_id: str | None = None, requester_email: str | None = None, ticket_id: str | None = None
) -> dict[str, str]:
    bearer = token(role, agent_id=agent_id, requester_email=requester_email, ticket_id=ticket_id)
    return {"Authorization": f"Bearer {bearer}"}


def requester_header(email: str, ticket_id: str | None = None) -> dict[str, str]:
    """A requester-scoped portal token: it acts for `email` only (and only for `ticket_id` when given)."""
    return auth_header("portal", requester_email=email, ticket_id=ticket_id)


@cache
def rabbitmqctl_available() -> bool:
    """True when rabbitmqctl can talk to the broker these tests use (a local one, not a container)."""
    path = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/sbin")
    host = urlsplit(os.environ.get("AMQP_URL", "amqp://127.0.0.1")).hostname or "127.0.0.1"
    if not path or not is_local_host(host):
        return False
    try:
        return subprocess.run([path, "-q", "status"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class TcpProxy:
    """A TCP proxy on 127.0.0.1:url_port that forwards to target_host:target_port.

    stop() closes the listener and every open connection, so clients see the server go away
    and new connects are refused; start() listens again on the same port ("the broker is back").
    While stopped the port stays bound, not listening (a connect is refused as before): on a busy
    machine another process's bind(0) or outgoing connection would otherwise take it in the meantime.
    close() (the end of a `with`) lets it go.
    """

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.url_port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._holder: socket.socket | None = None  # the port, bound and not listening, while stopped
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        if self._listener is not None:
            return
        self._release()
        listener = _bound(self.url_port)
        listener.listen(64)
        listener.settimeout(0.1)
        self._stopping.clear()
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        if self._listener is None:
            return
        self._stopping.set()
        self._listener.close()
        self._listener = None
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)
        self._holder = _bound(self.url_port)

    def close(self) -> None:
        """Stop, and give the port back."""
        self.stop()
        self._release()

    def _release(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def rewrite(self, url: str) -> str:
        """The URL with its host and port replaced by this proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.url_port}" if userinfo else f"127.0.0.1:{self.url_port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                if self._stopping.is_set():
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # One side ended: end the other too, so neither end waits on a half-open connection.
        for sock in (src, dst):
            _close(sock)
        with self._lock:
            self._sockets.difference_update((src, dst))


def _bound(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:port (past the TIME_WAIT of closed connections); closed if that fails, so
    no socket is left for the garbage collector to warn about in some later test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def walk_pages(client, path: str, params: dict, headers: dict[str, str], max_pages: int = 50) -> list[dict]:
    """Every page of a cursor-paginated list (Flask test client), following next_cursor until it is null."""
    pages, cursor = [], None
    while True:
        response = client.get(path, query_string={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert set(page) == {"items", "next_cursor"}
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < max_pages, "the cursor never ends"


def consumers_on(amqp_url: str, queue: str) -> int:
    """How many consumers the broker counts on a queue (0 while it does not exist)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def dead_letters(amqp_url: str, queue: str) -> list[tuple[dict, bytes]]:
    """(headers, body) of every message in a dead-letter queue, left there (unacked, they go back)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel, found = connection.channel(), []
    try:
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return found
            found.append((props.headers or {}, body))
    finally:
        connection.close()
