"""Local infrastructure helpers for the CLI and the tests: ports, FerretDB, a RabbitMQ probe.

Pure standard library, so `python3 ticketflow/local.py ...` also works before the venv exists.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
# What a broker sends first after the client's protocol header: a method frame on channel 0.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


# scheme://user:password@ anywhere in a text; the password runs to the URL's last @ (a raw @ in it is masked too)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)


def masked(text: str) -> str:
    """The text with the password of every URL in it (AMQP, Mongo, SMTP...) shown as ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


LISTEN_FROM = 10_000  # the ports handed out start here (below: the well-known and registered services')
# not `random`'s: pytest-randomly seeds that alike in every test process, which then drew the same ports (and two
# mail-in processes, which bind with SO_REUSEPORT, shared one)
_PORTS = random.SystemRandom()


def _first_ephemeral() -> int:
    """The first port of the kernel's ephemeral range, which it gives to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (see free_ports)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports on 127.0.0.1 that nothing listens on right now, for servers about to start.

    Taken below the kernel's ephemeral range, at random: a port from bind(0) is one the kernel may hand to any
    outgoing connection (a worker's to the broker, an api's to the store) between our choice and the server's
    bind, which then fails. Held together while chosen, so that the ports are different."""
    held: list[socket.socket] = []
    first_ephemeral = max(_first_ephemeral(), LISTEN_FROM + count + 1)
    try:
        for attempt in range(200 + count):
            if len(held) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                # after many taken ones (a crowded range): any free port, as the kernel chooses it
                sock.bind(("127.0.0.1", _PORTS.randrange(LISTEN_FROM, first_ephemeral) if attempt < 200 else 0))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Poll until something accepts TCP connections at host:port; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if port_answers(host, port, timeout=min(0.5, max(timeout, 0.05))):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def amqp_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    return parts.hostname or "127.0.0.1", parts.port or default_port


def amqp_vhost(url: str) -> str:
    """The URL's virtual host, as pika reads it: "/" when the path is empty ("%2F" is "/")."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def amqp_answers(url: str, timeout: float = 2.0) -> bool:
    """True when an AMQP broker answers at the URL's host and port.

    A bare TCP connect is not proof enough: some networks accept every outbound connect,
    so for plain amqp:// we send the protocol header and expect the broker's first frame.
    """
    host, port = amqp_host_port(url)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if urlsplit(url).scheme == "amqps":
                return True
            sock.sendall(_AMQP_HEADER)
            first = sock.recv(8)
    except OSError:
        return False
    # 0x01 = method frame (connection.start); "AMQP" = the broker proposes another version.
    return first[:1] == b"\x01" or first.startswith(b"AMQP")


def is_local_host(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def ferretdb_binary() -> Path:
    """FERRETDB_BIN if set, else the repo's own build at .tools/bin/ferretdb."""
    override = os.environ.get("FERRETDB_BIN")
    return Path(override) if override else REPO_ROOT / ".tools" / "bin" / "ferretdb"


def ferretdb_command(data_dir: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        str(ferretdb_binary()),
        "--handler=sqlite",
        f"--sqlite-url=file:{data_dir}/?_pragma=synchronous(normal)",
        f"--listen-addr={host}:{port}",
        "--debug-addr=-",  # no debug listener: two instances would clash on :8088
        f"--state-dir={data_dir}",
        "--telemetry=disable",
        "--log-level=warn",
        # Conditions on dotted fields (requester.email) are pushed down to SQLite as well: the patch's
        # pushdown selects a superset that the handler filters again, exactly as for top-level fields.
        "--test-enable-nested-pushdown",
    ]


def start_ferretdb(data_dir: Path, port: int, log_path: Path, timeout: float = 30.0) -> subprocess.Popen:
    """Start FerretDB on 127.0.0.1:port with SQLite files in data_dir; return once it accepts connections."""
    binary = ferretdb_binary()
    if not binary.is_file():
        raise RuntimeError(f"FerretDB is not built at {binary}; run `make tools` (needs Go)")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ferretdb_command(data_dir, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if wait_for_port("127.0.0.1", port, timeout=0.2):
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError(f"FerretDB did not start on port {port} (exit {proc.returncode}):\n{log_tail(log_path)}")


def store_for_benchmark(tmp: Path) -> tuple[str, subprocess.Popen | None]:
    """MONGO_URL when set, else a FerretDB of our own on a free port with its data and log in `tmp`: (the URL,
    that FerretDB or None). The benchmarks' way to a store."""
    url = os.environ.get("MONGO_URL")
    if url:
        return url, None
    port = free_port()
    return f"mongodb://127.0.0.1:{port}", start_ferretdb(tmp / "ferretdb", port, tmp / "ferretdb.log")


def broker_for_benchmark() -> str:
    """AMQP_URL when set, else the machine's RabbitMQ, started (installed if need be) by scripts/ensure-rabbitmq.sh
    when it does not answer, as `make run` does. The benchmarks' way to a broker."""
    url = os.environ.get("AMQP_URL")
    if url:
        return url
    if not amqp_answers(DEFAULT_AMQP_URL):
        script = REPO_ROOT / "scripts" / "ensure-rabbitmq.sh"
        subprocess.run([str(script)], check=True, env={**os.environ, "AMQP_URL": DEFAULT_AMQP_URL})
    return DEFAULT_AMQP_URL


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _main(argv: list[str]) -> int:
    """`python3 ticketflow/local.py amqp-answers URL` (used by scripts/ensure-rabbitmq.sh)."""
    if len(argv) == 2 and argv[0] == "amqp-answers":
        return 0 if amqp_answers(argv[1]) else 1
    if len(argv) == 2 and argv[0] == "amqp-host-port":
        print(*amqp_host_port(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "amqp-vhost":
        print(amqp_vhost(argv[1]))
        return 0
    print("usage: local.py amqp-answers URL | amqp-host-port URL | amqp-vhost URL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
