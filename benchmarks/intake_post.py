"""POST /tickets throughput: intake under gunicorn vs. a bare Flask+pymongo endpoint, same server, same run.

    .venv/bin/python benchmarks/intake_post.py [--seconds 15] [--clients 16] [--workers 4]

Uses MONGO_URL / AMQP_URL when set; otherwise starts its own FerretDB (built by `make tools`) and
uses the local RabbitMQ. Both servers run with the same gunicorn settings; the load generator runs
in two processes of --clients/2 threads each. Prints requests per second, latencies and the ratio;
the CPU per POST of each server's gunicorn master and workers and of FerretDB (utime + stime from
/proc: on a machine shared with others a steadier figure than req/s); then, over the measured seconds
(not the warm-up), the store calls per POST answered 201 by command (the server's own counters,
serverStatus `metrics.commands`: benchmarks/meters.py), bare endpoint beside intake, and the peak RSS
of each server's gunicorn master and workers (VmRSS each second) and of FerretDB, with PASS / FAIL
against 100 MB for intake's api.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.meters import (  # noqa: E402
    LIMIT_MB,
    RssPeaks,
    StoreCommands,
    command_deltas,
    cpu_seconds,
    finish,
    kinds_of,
    print_rss,
    print_store_calls,
)
from shared.auth import issue_token  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, start_ferretdb, wait_for_port  # noqa: E402

SECRET = secrets.token_urlsafe(32)
LABELS = {"benchmarks.bare_app:app": "bare endpoint", "services.intake.api:create_app()": "intake api"}


def body(i: int) -> bytes:
    return json.dumps(
        {
            "subject": f"Printer on floor 3 will not print ({i})",
            "description": "It shows 'offline' although it is on the network. " * 4,
            "requester": {"name": "Ana Ruiz", "email": f"ana{i % 500}@example.com"},
            "topic": "hardware",
            "priority": "normal",
            "source": "web",
        }
    ).encode()


def _client_thread(port: int, deadline: float, headers: dict, out: list, expected: int) -> None:
    i = 0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/tickets", body(i), headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        out.append((response.status == expected, time.perf_counter() - start))
        i += 1


def _load_process(port: int, seconds: float, threads: int, headers: dict, expected: int, queue) -> None:
    deadline = time.monotonic() + seconds
    results: list = []
    workers = [
        threading.Thread(target=_client_thread, args=(port, deadline, headers, results, expected))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(results)


def drive(port: int, seconds: float, clients: int, headers: dict, expected: int, meters: Meters) -> dict:
    _load_process(port, 2.0, clients // 2, headers, expected, multiprocessing.Queue())  # warm-up
    commands, rss = meters.store.read(), RssPeaks(meters.kinds).start()
    kinds = meters.kinds()
    cpu = {kind: sum(cpu_seconds(pid) for pid in pids) for kind, pids in kinds.items()}
    queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_load_process, args=(port, seconds, clients // 2, headers, expected, queue))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in queue.get()]
    for proc in procs:
        proc.join()
    store_calls, rss_mb = command_deltas(commands, meters.store.read()), rss.stop()
    cpu = {kind: sum(cpu_seconds(pid) for pid in pids) - cpu[kind] for kind, pids in kinds.items()}
    ok = [latency for good, latency in results if good]
    latencies = sorted(ok)
    return {
        "requests": len(ok),
        "store_calls": store_calls,
        "rss_mb": rss_mb,
        "cpu_ms": {kind: 1000 * seconds / max(len(ok), 1) for kind, seconds in cpu.items()},
        "requests_per_second": len(ok) / seconds,
        "errors": len(results) - len(ok),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


@dataclass
class Meters:
    """The store's command counters and the processes whose RSS is sampled while the load runs."""

    store: StoreCommands
    kinds: Callable[[], dict[str, list[int]]]


def gunicorn(app: str, port: int, env: dict, workers: int, log) -> subprocess.Popen:
    cmd = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        "python:shared.gunicorn_conf",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        app,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    if not wait_for_port("127.0.0.1", port, 30):
        raise RuntimeError(f"{app} did not start")
    return proc


def store_url(tmp: Path, procs: list[subprocess.Popen]) -> str:
    """MONGO_URL when set; else a FerretDB of its own in `tmp` (its process appended to `procs`)."""
    if os.environ.get("MONGO_URL"):
        return os.environ["MONGO_URL"]
    port = free_port()
    (tmp / "ferretdb").mkdir()
    procs.append(start_ferretdb(tmp / "ferretdb", port, tmp / "ferretdb.log"))
    return f"mongodb://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    namespace = f"bench_{secrets.token_hex(3)}"
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-bench-"))
    procs: list[subprocess.Popen] = []
    amqp_url = broker_for_benchmark()  # first: a broker that cannot start leaves no store behind
    mongo_url = store_url(tmp, procs)
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "MONGO_URL": mongo_url,
        "TICKETFLOW_NAMESPACE": namespace,
        "TICKETFLOW_JWT_SECRET": SECRET,
        "BARE_DATABASE": f"{namespace}_bare",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp / "servers.log", "w")  # noqa: SIM115 - closed at the end
    store = StoreCommands(mongo_url)
    shared = {"ferretdb": [proc.pid for proc in procs]} if procs else {}
    try:
        _declare_intake_queue(env)  # events are routable, as when intake's worker runs (it is not started here)
        results = {}
        for name, app, headers, expected in [
            ("bare", "benchmarks.bare_app:app", {"Content-Type": "application/json"}, 201),
            (
                "intake",
                "services.intake.api:create_app()",
                {"Content-Type": "application/json", "Authorization": f"Bearer {issue_token(SECRET, 'portal')}"},
                201,
            ),
        ]:
            port = free_port()
            server = gunicorn(app, port, env, args.workers, log)
            meters = Meters(store, lambda app=app, pid=server.pid: {**kinds_of({LABELS[app]: [pid]}), **shared})
            try:
                results[name] = drive(port, args.seconds, args.clients, headers, expected, meters)
            finally:
                server.terminate()
                server.wait(15)
            print(
                f"{name:>7}: {results[name]['requests_per_second']:8.1f} req/s  p50 {results[name]['p50_ms']:6.1f} ms"
                f"  p99 {results[name]['p99_ms']:6.1f} ms  errors {results[name]['errors']}",
                flush=True,
            )
        ratio = results["intake"]["requests_per_second"] / results["bare"]["requests_per_second"]
        print(
            f"  ratio: {ratio:.2f} (intake / bare), {args.workers} gunicorn workers, {args.clients} clients, "
            f"{os.cpu_count()} cores"
        )
        print_cpu({name: result["cpu_ms"] for name, result in results.items()})
        print_store_calls(
            f"store calls per POST answered 201, by command (serverStatus of {store.label}, while the load ran; "
            "server-wide):",
            {name: (result["store_calls"], result["requests"]) for name, result in results.items()},
            unit="POST",
        )
        print_rss(
            f"RSS, peak MB (VmRSS every second while the load ran); {LIMIT_MB:.0f} MB for intake's api:",
            {name: result["rss_mb"] for name, result in results.items()},
            lambda kind: kind.startswith("intake api"),
        )
    finally:
        store.close()
        finish(lambda: _cleanup(env), procs, log)


def print_cpu(columns: dict[str, dict[str, float]]) -> None:
    """CPU per POST answered 201, by process (a machine shared with others changes req/s more than this)."""
    print()
    print("CPU, ms per POST answered 201 (utime + stime while the load ran; the load generator left out):")
    for name, cpu in columns.items():
        parts = ", ".join(f"{kind} {ms:.1f}" for kind, ms in sorted(cpu.items(), key=lambda kv: -kv[1]))
        print(f"  {name:>7}: total {sum(cpu.values()):6.1f}  ({parts})")


def _declare_intake_queue(env: dict) -> None:
    import pika

    from shared.config import load_settings
    from shared.events import EVENT_TYPES
    from shared.topology import declare_service_topology

    settings = load_settings(env)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    declare_service_topology(connection.channel(), settings, "intake", list(EVENT_TYPES))
    connection.close()


def _cleanup(env: dict) -> None:
    from pymongo import MongoClient

    from shared.config import load_settings
    from ticketflow.cleanup import delete_topology

    settings = load_settings(env)
    delete_topology(settings.amqp_url, settings.namespace)
    client = MongoClient(settings.mongo_url)
    for name in client.list_database_names():
        if name.startswith(f"{settings.namespace}_"):
            client.drop_database(name)
    client.close()


if __name__ == "__main__":
    main()
