"""Fixtures every test folder shares: the session's broker and database, and real processes.

The session gets its own namespace (`tftest_<8 hex>`), JWT secret and short retry delays,
set in os.environ before any test runs, so code under test and spawned processes agree.

No test sees what another left behind: each test module works in a namespace of its own
(`<session>_m<n>`: its own databases and queues, dropped after the module), and each test that
starts a process gets one more of its own (`<session>_t<n>`), so a worker meets only the events of
its test, whatever ran before it and in whatever order.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ticketflow import local
from ticketflow.cli import api_command, worker_command

LOCAL_AMQP_URL = local.DEFAULT_AMQP_URL
MONGO_IMAGE = "mongo:7.0"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
# Property tests are judged by what their examples give, never by how long one takes: Hypothesis's default
# deadline (200 ms an example) failed a run on a machine busy with other work. In CI (CI set) the examples
# are the same every run, so that a run's verdict is the code's; elsewhere they vary, to find new faults.
hypothesis_settings.register_profile(
    "ticketflow", deadline=None, derandomize=os.environ.get("CI", "").lower() in ("1", "true", "yes")
)
hypothesis_settings.load_profile("ticketflow")
_saved_env: dict[str, str | None] = {}
_spawned_key = pytest.StashKey[list]()
_namespace_numbers = itertools.count(1)
_saved_namespace: dict[str, str] = {}


def _set_env(**values: str | None) -> None:
    """Set (or with None, remove) variables for the session; pytest_unconfigure restores them."""
    for name, value in values.items():
        _saved_env.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_configure(config: pytest.Config) -> None:
    _saved_namespace["session"] = f"tftest_{secrets.token_hex(4)}"
    _set_env(
        TICKETFLOW_NAMESPACE=_saved_namespace["session"],
        TICKETFLOW_JWT_SECRET=secrets.token_urlsafe(32),  # PyJWT warns about HMAC keys under 32 bytes
        TICKETFLOW_RETRY_DELAYS="0.2,0.4,0.8",
        TICKETFLOW_DEV=None,
        TICKETFLOW_AUTO_CLOSE_HOURS=None,
        PROMETHEUS_MULTIPROC_DIR=None,
        TICKETFLOW_SIMILAR_MODEL=None,  # similar re-ranked by meaning, as shipped (tests that want it off say so)
        TOKENIZERS_PARALLELISM="false",  # WordLlama's own embed (a test compares with it) starts no thread pool
        # the tests' webhook receivers listen on this host: admit loopback (only loopback) as a webhook target
        TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
        # every test's browser is 127.0.0.1: the per-client cap of failed sign-ins would count across tests (the
        # test of the cap sets its own)
        TICKETFLOW_PORTAL_FAILED_SIGN_INS_PER_CLIENT_HOUR="1000000",
    )


@pytest.fixture(autouse=True)
def _webhook_names_resolve_on_this_host_only(monkeypatch):
    """No test asks a DNS server (outside 127.0.0.0/8) for a webhook's host: IP literals are themselves,
    localhost is 127.0.0.1, every other name is not found (registration accepts it; a delivery fails).
    A test that wants a name to resolve replaces `webhook_sender.resolve` itself."""
    import ipaddress
    import socket

    from services.notify import webhook_sender

    def resolve(host: str, port: int) -> list[str]:
        if host.lower().rstrip(".") == "localhost":
            return ["127.0.0.1"]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: not resolved in the tests") from None

    monkeypatch.setattr(webhook_sender, "resolve", resolve)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_env.clear()


@dataclass(frozen=True)
class Infra:
    amqp_url: str
    mongo_url: str
    namespace: str
    description: str


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """RabbitMQ and MongoDB for the session: TEST_*_URL, else containers if Docker answers, else local."""
    namespace = session_namespace()
    amqp_url, mongo_url = os.environ.get("TEST_AMQP_URL"), os.environ.get("TEST_MONGO_URL")
    with contextlib.ExitStack() as stack:
        if not (amqp_url and mongo_url) and _docker_answers():
            amqp_url = amqp_url or stack.enter_context(_rabbitmq_container())
            mongo_url = mongo_url or stack.enter_context(_mongo_container())
            how = "testcontainers"
        else:
            how = "local RabbitMQ and FerretDB"
        amqp_url = amqp_url or _local_rabbitmq()
        mongo_url = mongo_url or stack.enter_context(_ferretdb(tmp_path_factory.mktemp("ferretdb")))
        _set_env(AMQP_URL=amqp_url, MONGO_URL=mongo_url)
        stack.callback(_clean_up, request.config, amqp_url, mongo_url, namespace)  # runs before containers stop
        yield Infra(amqp_url=amqp_url, mongo_url=mongo_url, namespace=namespace, description=how)


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        # The docker client leaks its socket when the engine does not answer: no ResourceWarning for that.
        warnings.simplefilter("ignore")
        try:
            import docker

            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:  # no docker module, no engine: both mean "no"
            return False
        finally:
            gc.collect()


def _container_class(module: str, name: str):
    """testcontainers >= 4.14 moved the modules under testcontainers.community."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            mod = __import__(f"testcontainers.community.{module}", fromlist=[name])
        except ImportError:
            mod = __import__(f"testcontainers.{module}", fromlist=[name])
    return getattr(mod, name)


@contextlib.contextmanager
def _container(module: str, class_name: str, image: str) -> Iterator:
    container = _container_class(module, class_name)(image)
    with warnings.catch_warnings():  # testcontainers deprecates its own helpers as it goes
        warnings.simplefilter("ignore", DeprecationWarning)
        container.start()
    try:
        yield container
    finally:
        container.stop()


@contextlib.contextmanager
def _rabbitmq_container() -> Iterator[str]:
    with _container("rabbitmq", "RabbitMqContainer", RABBITMQ_IMAGE) as rabbit:
        params = rabbit.get_connection_params()
        yield f"amqp://{rabbit.username}:{rabbit.password}@{params.host}:{params.port}/%2F"


@contextlib.contextmanager
def _mongo_container() -> Iterator[str]:
    with _container("mongodb", "MongoDbContainer", MONGO_IMAGE) as mongo:
        yield mongo.get_connection_url()


def _local_rabbitmq() -> str:
    if local.amqp_answers(LOCAL_AMQP_URL):
        return LOCAL_AMQP_URL
    script = local.REPO_ROOT / "scripts" / "ensure-rabbitmq.sh"
    result = subprocess.run(
        [str(script)], env={**os.environ, "AMQP_URL": LOCAL_AMQP_URL}, capture_output=True, text=True
    )
    if result.returncode != 0 or not local.amqp_answers(LOCAL_AMQP_URL):
        pytest.fail(
            f"no RabbitMQ for the tests: {result.stderr.strip() or 'ensure-rabbitmq.sh failed'} (or set TEST_AMQP_URL)",
            pytrace=False,
        )
    return LOCAL_AMQP_URL


@contextlib.contextmanager
def _ferretdb(data_dir: Path) -> Iterator[str]:
    if not local.ferretdb_binary().is_file():
        build = subprocess.run([str(local.REPO_ROOT / "scripts" / "build-ferretdb.sh")], capture_output=True, text=True)
        if build.returncode != 0:
            pytest.fail(f"cannot build FerretDB: {build.stderr.strip()} (or set TEST_MONGO_URL)", pytrace=False)
    port = local.free_port()
    try:
        proc = local.start_ferretdb(data_dir, port, data_dir / "ferretdb.log")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _clean_up(config: pytest.Config, amqp_url: str, mongo_url: str, namespace: str) -> None:
    """Drop the session's databases and broker objects; report problems without failing the session."""
    try:
        import pymongo

        with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
            for name in client.list_database_names():
                if name.startswith(f"{namespace}_"):
                    client.drop_database(name)
    except Exception as exc:
        _report(config, f"could not drop the test databases {namespace}_*: {exc!r}")
    from ticketflow.cleanup import delete_topology  # imports prometheus_client: not before pytest_configure

    try:
        delete_topology(amqp_url, namespace)
    except Exception as exc:
        _report(config, f"could not delete the broker objects of {namespace}: {exc!r}")


def _report(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"tests/conftest.py: {message}", yellow=True)
    else:
        print(f"tests/conftest.py: {message}", file=sys.__stderr__)


def session_namespace() -> str:
    """The namespace pytest_configure chose for the session (module and test namespaces start with it)."""
    return _saved_namespace["session"]


@contextlib.contextmanager
def own_namespace(kind: str) -> Iterator[str]:
    """TICKETFLOW_NAMESPACE set to a new `<session>_<kind><n>` inside; its databases and queues deleted after."""
    previous = os.environ["TICKETFLOW_NAMESPACE"]
    namespace = f"{session_namespace()}_{kind}{next(_namespace_numbers)}"
    os.environ["TICKETFLOW_NAMESPACE"] = namespace
    try:
        yield namespace
    finally:
        os.environ["TICKETFLOW_NAMESPACE"] = previous
        _delete_namespace(namespace)


def _delete_namespace(namespace: str) -> None:
    """Drop a namespace's databases and delete its exchange and service queues (when the session has infra)."""
    mongo_url, amqp_url = os.environ.get("MONGO_URL"), os.environ.get("AMQP_URL")
    if not (mongo_url and amqp_url):
        return  # no test of this namespace asked for the broker or the database: nothing was made
    import pika
    import pymongo

    from shared.config import load_settings
    from shared.topology import SUBSCRIPTIONS, exchange_names, queue_name, retry_queue_name

    with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
        for name in client.list_database_names():
            if name.startswith(f"{namespace}_"):
                client.drop_database(name)
    settings = load_settings({**os.environ, "TICKETFLOW_NAMESPACE": namespace})
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for service in SUBSCRIPTIONS:
            base = queue_name(settings, service)
            retries = [retry_queue_name(settings, service, delay) for delay in settings.retry_delays]
            for name in [base, f"{base}.dead", *retries]:
                channel.queue_delete(name)  # RabbitMQ answers delete-ok for a queue that does not exist
        for exchange in exchange_names(settings):
            channel.exchange_delete(exchange)
    finally:
        connection.close()


@pytest.fixture(scope="module", autouse=True)
def module_namespace() -> Iterator[str]:
    """Each test module's own databases and queues: data does not pile up across the suite."""
    with own_namespace("m") as namespace:
        yield namespace


@pytest.fixture(autouse=True)
def test_namespace(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A test that starts processes gets a namespace of its own: its workers meet its events only."""
    if "spawn" not in request.fixturenames:
        yield None
        return
    with own_namespace("t") as namespace:
        yield namespace


class Spawned:
    """A process started for one test, in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.url: str | None = None
        self.port: int | None = None
        self.killed = False  # stop() had to SIGKILL it: it did not exit by itself within the timeout
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=local.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to the process and its children (its whole group), as when a container is killed."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (a graceful stop), then SIGKILL to the whole group after timeout seconds."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # children that outlived their parent
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __repr__(self) -> str:
        return f"<Spawned {self.name} pid={self.proc.pid} rc={self.proc.poll()}>"


class Spawner:
    """The `spawn` fixture: spawn(argv, env=None, name=None), spawn.api(service), spawn.worker(service)."""

    def __init__(self, tmp_path: Path, handles: list[Spawned]) -> None:
        self.tmp_path, self.handles = tmp_path, handles

    def __call__(self, argv: list[str], env: dict[str, str] | None = None, name: str | None = None) -> Spawned:
        name = name or Path(argv[0]).name
        log_path = self.tmp_path / f"{name}-{len(self.handles)}.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        handle = Spawned(name, [str(arg) for arg in argv], full_env, log_path)
        self.handles.append(handle)
        return handle

    def again(self, handle: Spawned) -> Spawned:
        """The same command with the same environment (an api on the same port), as a restart starts it."""
        again = self(handle.argv, env=handle.env, name=handle.name)
        again.port, again.url = handle.port, handle.url
        return again

    def api(self, service: str, port: int | None = None, env: dict[str, str] | None = None, timeout: float = 30.0):
        """The service's gunicorn (as `ticketflow run` starts it); returns once GET /healthz answers 200."""
        port = port or local.free_port()
        handle = self(api_command(service, port), env=self._service_env(service, env), name=f"{service}-api")
        handle.port, handle.url = port, f"http://127.0.0.1:{port}"
        _wait_healthy(handle, timeout)
        return handle

    def worker(self, service: str, env: dict[str, str] | None = None) -> Spawned:
        return self(worker_command(service), env=self._service_env(service, env), name=f"{service}-worker")

    def _service_env(self, service: str, extra: dict[str, str] | None) -> dict[str, str]:
        """A service's api and worker share one Prometheus multiprocess folder, as under `ticketflow run`."""
        path = self.tmp_path / "metrics" / service
        path.mkdir(parents=True, exist_ok=True)
        env = {"PROMETHEUS_MULTIPROC_DIR": str(path)}
        if service == "search":  # the index lives and goes with the test, never in the repository's .run
            env["TICKETFLOW_SEARCH_INDEX_DIR"] = str(self.tmp_path / "search-index")
        return {**env, **(extra or {})}


def require_running(handle: Spawned) -> None:
    """Fail the test at once, with the process's log, when the process has exited (a wait for it would be vain)."""
    if not handle.running:
        pytest.fail(f"{handle.name} exited with {handle.proc.returncode}:\n{local.log_tail(handle.log_path)}")


def _wait_healthy(handle: Spawned, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        require_running(handle)
        try:
            with urllib.request.urlopen(f"{handle.url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail(
        f"{handle.name}: GET /healthz did not answer 200 within {timeout} s:\n{local.log_tail(handle.log_path)}"
    )


@pytest.fixture
def spawn(infra: Infra, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Spawner]:
    handles: list[Spawned] = []
    request.node.stash[_spawned_key] = handles
    yield Spawner(tmp_path, handles)
    for handle in handles:  # every process gets its SIGTERM at once; then each is waited for
        if handle.running:
            handle.proc.terminate()
    for handle in reversed(handles):
        handle.stop()


@pytest.fixture
def spawn_api(spawn: Spawner) -> Callable[..., Spawned]:
    return spawn.api


@pytest.fixture
def spawn_worker(spawn: Spawner) -> Callable[..., Spawned]:
    return spawn.worker


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failure, show the end of every spawned process's log in the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        for handle in item.stash.get(_spawned_key, []):
            report.sections.append((f"log of {handle.name} (pid {handle.proc.pid})", local.log_tail(handle.log_path)))


WHOLE_SYSTEM = ("tests/e2e/", "tests/integration/test_demo.py")
BROWSER = ("tests/browser/",)  # real-browser tests: the portal and the services behind it are a whole system too


# Each module of whole-system or browser tests is an xdist group of its own: its tests stay in one process (a
# module's system or browser starts once there), and the modules spread over the processes, so the slowest
# module, not the sum of them all, sets how long the run takes.
# tryfirst: pytest-xdist reads the xdist_group markers in a pytest_collection_modifyitems of its own (it appends
# "@<group>" to the test's id, which is what --dist loadgroup groups by); without it, xdist's hook ran first and
# saw no marker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).relative_to(local.REPO_ROOT).as_posix()
        if path.startswith(WHOLE_SYSTEM):
            item.add_marker(pytest.mark.e2e)
        elif path.startswith(BROWSER):
            item.add_marker(pytest.mark.browser)
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(Path(path).stem))
