"""The whole system as real processes: every service's gunicorn api and worker, an SMTP server in the test."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from shared.config import SERVICE_PORTS, load_settings
from tests.conftest import Spawned, Spawner, _wait_healthy
from tests.harness import auth_header, consumers_on, wait_until
from tests.integration.notify_servers import SmtpRecorder, smtp_server  # noqa: F401 - a fixture
from ticketflow import local
from ticketflow.cli import api_command
from ticketflow.local import free_ports

API_ENV = {"WEB_CONCURRENCY": "1"}  # one gunicorn worker per api: each costs a second of CPU to start, and the suite's
# systems start dozens; the runs of hundreds of tickets are bound by the workers, not by the apis
# Seconds each part of a system has to start: on a busy machine, with the other test processes starting theirs, a
# worker took over 60 s to consume (tests/browser/portal_system.py's STARTS_WITHIN too).
STARTS_WITHIN = 180


@dataclass
class System:
    """Base URLs of the four apis, the workers of each service, and what the SMTP server received."""

    urls: dict[str, str]
    workers: dict[str, list[Spawned]]
    smtp: SmtpRecorder
    start_worker: Callable[[str], Spawned]
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, service: str, path: str, role: str = "admin", agent_id: str | None = None, **kw):
        """(status, JSON body) of a request to a service's public API."""
        response = self.session.request(
            method, f"{self.urls[service]}{path}", headers=auth_header(role, agent_id), timeout=15, **kw
        )
        return response.status_code, response.json() if response.content else None

    def ok(self, method: str, service: str, path: str, role: str = "admin", agent_id: str | None = None, **kw):
        status, body = self.call(method, service, path, role, agent_id, **kw)
        assert status < 300, (method, service, path, status, body)
        return body

    def items(self, service: str, path: str, params: dict | None = None, role: str = "admin") -> list[dict]:
        """Every item of a paginated list, following next_cursor."""
        found, cursor = [], None
        while True:
            page = self.ok(
                "GET", service, path, role, params={**(params or {}), **({"cursor": cursor} if cursor else {})}
            )
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def emails_to(self, address: str, number: int) -> list:
        return [m for m in list(self.smtp.received) if m["To"] == address and f"[#{number}]" in m["Subject"]]


@pytest.fixture
def start_system(smtp_server, spawn: Spawner, infra) -> Iterator[Callable[..., System]]:  # noqa: F811
    """start_system(workers=1, env=None, mongo_url=None, worker_env=None, amqp_url=None, search=False): every api
    and `workers` workers of every service, all consuming; on the session's database and broker, or on the database
    at `mongo_url` (a test that stops its database) and the broker at `amqp_url` (a test's own node). `env` is for
    every process, `worker_env` for the workers only (on top of `env`).

    search's api and worker only with `search=True`: the tests of search and those of every process (faults,
    rolling restarts). The others concern the four services of a ticket's life, and search's two processes would
    take a share of the machine's two cores in each of them (its worker reads every event).

    The mail sink is set up before the processes (fixtures in the order of the arguments), so it stops after
    them: a sink stopped first would leave notify's open connections to it unclosed (a ResourceWarning)."""
    recorder, smtp_url = smtp_server
    settings = load_settings()

    def start(
        workers: int = 1,
        env: dict[str, str] | None = None,
        mongo_url: str | None = None,
        worker_env: dict[str, str] | None = None,
        amqp_url: str | None = None,
        search: bool = False,
    ) -> System:
        # short timeouts, so that a notify worker killed mid-send leaves a claim of 12 s, not 60
        timeouts = {"TICKETFLOW_WEBHOOK_TIMEOUT": "2", "TICKETFLOW_SMTP_TIMEOUT": "2"}
        database = {"MONGO_URL": mongo_url} if mongo_url else {}
        amqp_url = amqp_url or infra.amqp_url
        index = {"TICKETFLOW_SEARCH_INDEX_DIR": str(spawn.tmp_path / "search-index")}  # the system's own
        common = {"SMTP_URL": smtp_url, "AMQP_URL": amqp_url, **timeouts, **database, **index, **(env or {})}

        def start_worker(service: str) -> Spawned:
            handle = spawn.worker(service, env={**common, **(worker_env or {})})
            system.workers[service].append(handle)
            return handle

        services = [service for service in SERVICE_PORTS if search or service != "search"]
        system = System({}, {service: [] for service in services}, recorder, start_worker)
        apis = []
        for service, port in zip(services, free_ports(len(services)), strict=True):  # each its own port
            handle = spawn(api_command(service, port), env=spawn._service_env(service, {**API_ENV, **common}),
                           name=f"{service}-api")  # fmt: skip
            handle.url = system.urls[service] = f"http://127.0.0.1:{port}"
            apis.append(handle)
            for _ in range(writers(service, workers)):
                start_worker(service)
        for handle in apis:
            _wait_healthy(handle, STARTS_WITHIN)
        for service in services:
            queue = f"{settings.namespace}.{service}"
            wanted = writers(service, workers)
            consuming = lambda queue=queue, wanted=wanted: consumers_on(amqp_url, queue) >= wanted  # noqa: E731
            wait_until(consuming, timeout=STARTS_WITHIN)
        return system

    yield start


def writers(service: str, workers: int) -> int:
    """search's worker is its index's one writer (a second would wait for the first to stop): always one."""
    return 1 if service == "search" else workers


class Database:
    """A FerretDB of the test's own on its own data folder; kill() it and start() it again on the same data."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, local.free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = local.start_ferretdb(self.folder, self.port, self.folder / "ferretdb.log")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[Database]:
    """A FerretDB for this test alone (it starts in about a second): a test may kill it, and a run of hundreds of
    tickets reads from an empty store instead of one that holds every ticket the session stored so far (FerretDB's
    SQLite backend scans a collection for most reads, so those grow with it)."""
    if not local.ferretdb_binary().is_file():
        pytest.skip("FerretDB is not built (make tools): the test needs a database of its own")
    db = Database(tmp_path / "ferretdb")
    db.start()
    yield db
    db.kill()


@pytest.fixture
def fresh_store(request: pytest.FixtureRequest) -> str | None:
    """MONGO_URL of a FerretDB of the test's own (see own_database), or None, the session's store, where none is
    built (TEST_MONGO_URL pointing at a MongoDB, whose indexes keep reads flat anyway)."""
    if not local.ferretdb_binary().is_file():
        return None
    return request.getfixturevalue("own_database").url


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
