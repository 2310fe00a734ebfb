"""A private RabbitMQ node for the tests that stop the broker: its own node name, ports, data, logs and cookie.

The machine's broker is shared by every test and every helper on it; a test that stops a broker stops this one
instead. It is Debian's rabbitmq-server (`make test` installs it: scripts/ensure-rabbitmq.sh), run in the
foreground of its own process group from /usr/lib/rabbitmq/bin (the /usr/sbin wrapper would switch to the
rabbitmq user and its data). Everything it writes is under `root`, HOME included (so the Erlang cookie too); the
node registers its name with the machine's epmd, as any node does. It listens for AMQP on 127.0.0.1 only, with no
plugins. stop() is the clean stop SIGTERM asks of the server script; start() again takes the same data, so durable
queues and persistent messages are there again, as after a broker's restart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from ticketflow.local import free_ports, log_tail

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class RabbitNode:
    """A RabbitMQ node under `root`: start(), stop(), and the AMQP URL that reaches it."""

    def __init__(self, root: Path, server: str = SERVER) -> None:
        self.root, self.server = root, server
        self.node = f"tf-{secrets.token_hex(4)}@localhost"
        self.log_path = root / "server.log"  # the script's output: boot errors land here
        self.proc: subprocess.Popen | None = None
        for folder in ("mnesia", "log", "home"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        self._choose_ports()

    def _choose_ports(self) -> None:
        """Two ports below the machine's ephemeral range (free_ports): an outgoing connection of another test is
        never given one of them between our choice and the node's bind."""
        self.port, self.dist_port = free_ports(2)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = true\nlog.console.level = warning\nlog.file.level = info\n"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _env(self) -> dict[str, str]:
        own = {
            "HOME": str(self.root / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
        }
        keep = {name: value for name, value in os.environ.items() if not name.startswith(("RABBITMQ_", "ERL_"))}
        return {**keep, **own}

    def start(self, timeout: float = 120.0) -> None:
        """Start the node; return once it opens an AMQP connection (its queues recovered)."""
        if self.running:
            return
        self._boot(timeout)

    def start_first(self, timeout: float = 120.0, attempts: int = 3) -> None:
        """The first start: a port another process took meanwhile (eaddrinuse) is chosen again, before any client
        knows the URL. A restart (`start`) keeps its ports, as a broker's clients expect."""
        for attempt in range(attempts):
            try:
                self._boot(timeout)
                return
            except RuntimeError as exc:
                if "eaddrinuse" not in str(exc) or attempt == attempts - 1:
                    raise
                self._choose_ports()

    def _boot(self, timeout: float) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.server], env=self._env(), cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.node} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.node}: no AMQP connection within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def answers(self) -> bool:
        params = pika.URLParameters(self.url)
        params.socket_timeout = params.blocked_connection_timeout = 2
        params.connection_attempts = 1
        try:
            pika.BlockingConnection(params).close()
        except (pika.exceptions.AMQPError, AMQPConnectorException, OSError):  # e.g. a handshake that timed out
            return False
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """A clean stop: SIGTERM to the server script (it stops the Erlang VM and waits); SIGKILL after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # an Erlang helper (erl_child_setup) that outlived the VM

    def log_tail(self) -> str:
        node_log = self.root / "log" / f"{self.node}.log"
        return f"{log_tail(self.log_path)}\n--- {node_log.name}:\n{log_tail(node_log)}"


@contextlib.contextmanager
def running_rabbitmq(root: Path) -> Iterator[RabbitNode]:
    """A private node under `root` for the block; stopped and its folder removed afterwards, whatever happened."""
    node = RabbitNode(root, require_rabbitmq_server())
    try:
        try:
            node.start_first()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def require_rabbitmq_server() -> str:
    """Debian's server script; a clear failure (not a skip) when it is missing: `make test` installs it."""
    if os.access(SERVER, os.X_OK) and shutil.which("erl", path=f"{os.environ.get('PATH', '')}:/usr/bin"):
        return SERVER
    pytest.fail(
        f"no {SERVER} (Debian's rabbitmq-server) for the tests that restart a broker: "
        "`make test-rabbitmq` (scripts/ensure-rabbitmq.sh) installs it",
        pytrace=False,
    )
