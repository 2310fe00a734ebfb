"""The test harness itself works: a real MongoDB wire server, a real broker, the proxy, processes."""

from __future__ import annotations

import socket
import sys
import threading

import pika
import pika.exceptions
import pymongo
import pytest

from shared.auth import decode_token
from tests.harness import TcpProxy, token, wait_until


def test_mongo_answers_a_ping_and_round_trips_a_document(infra):
    with pymongo.MongoClient(infra.mongo_url, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
        tickets = client[f"{infra.namespace}_harness"]["tickets"]
        inserted = tickets.insert_one({"subject": "VPN drops", "number": 100042})
        found = tickets.find_one({"_id": inserted.inserted_id})
    assert found == {"_id": inserted.inserted_id, "subject": "VPN drops", "number": 100042}


def test_broker_accepts_a_connection_and_a_queue_declare_and_delete(infra):
    queue = f"{infra.namespace}.harness-smoke"
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    try:
        channel = connection.channel()
        assert channel.queue_declare(queue, durable=False).method.queue == queue
        channel.basic_publish("", queue, b"hello")
        wait_until(lambda: channel.basic_get(queue, auto_ack=True)[2] == b"hello", message="message back")
        channel.queue_delete(queue)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            channel.queue_declare(queue, passive=True)
        assert closed.value.reply_code == 404
    finally:
        connection.close()


@pytest.fixture
def echo_server():
    """A TCP echo server on a free port; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    done.set()
    thread.join()
    listener.close()


def _echo_through(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def test_proxy_forwards_refuses_while_stopped_and_comes_back_on_the_same_port(echo_server):
    proxy = TcpProxy("127.0.0.1", echo_server)
    try:
        assert _echo_through(proxy.url_port, b"ping") == b"ping"
        open_conn = socket.create_connection(("127.0.0.1", proxy.url_port), timeout=5)
        assert _echo_through(proxy.url_port, b"warm") == b"warm"

        proxy.stop()

        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.url_port), timeout=5)
        with open_conn:  # the connection that was open is gone too
            open_conn.sendall(b"anyone?")
            assert open_conn.recv(4096) == b""

        proxy.start()
        assert _echo_through(proxy.url_port, b"back") == b"back"
    finally:
        proxy.close()


def test_a_stopped_proxy_keeps_its_port_from_everyone_else_until_it_is_closed(echo_server):
    proxy = TcpProxy("127.0.0.1", echo_server)
    proxy.stop()  # no connection was ever made: nothing but the proxy's own hold is on the port
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", proxy.url_port))
    proxy.close()
    with socket.socket() as other:
        other.bind(("127.0.0.1", proxy.url_port))  # given back


def test_a_broker_connection_through_the_proxy_drops_when_the_proxy_stops(infra):
    host, port = pika.URLParameters(infra.amqp_url).host, pika.URLParameters(infra.amqp_url).port
    with TcpProxy(host, port) as proxy:
        connection = pika.BlockingConnection(pika.URLParameters(proxy.rewrite(infra.amqp_url)))
        assert connection.is_open
        proxy.stop()

        def lost() -> bool:
            try:
                connection.process_data_events(time_limit=0.1)
            except pika.exceptions.AMQPConnectionError:
                return True
            return not connection.is_open

        wait_until(lost, timeout=10, message="pika notices the broker is gone")


def test_wait_until_returns_the_value_or_fails_with_the_message():
    values = iter([0, None, 7])
    assert wait_until(lambda: next(values), timeout=5, interval=0.01) == 7
    with pytest.raises(AssertionError, match="the ticket is assigned"):
        wait_until(lambda: False, timeout=0.1, message="the ticket is assigned")


def test_token_is_signed_with_the_session_secret():
    import os

    principal = decode_token(os.environ["TICKETFLOW_JWT_SECRET"], token("agent", agent_id="jane"))
    assert (principal.role, principal.agent_id) == ("agent", "jane")


def test_spawned_processes_log_stop_and_are_killed(spawn):
    talker = spawn(
        [sys.executable, "-c", "import os, time; print('up', os.environ['TICKETFLOW_NAMESPACE']); time.sleep(60)"]
    )
    wait_until(lambda: "up tftest_" in talker.log_text(), message="the child prints its namespace")
    talker.kill()
    assert talker.proc.returncode == -9

    stubborn = spawn(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready'); "
         "time.sleep(60)"]
    )  # fmt: skip
    wait_until(lambda: "ready" in stubborn.log_text(), message="the child ignores SIGTERM")
    assert stubborn.stop(timeout=0.5) == -9
