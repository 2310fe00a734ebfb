"""sla's what-if over 10,000 tickets: POST /policies/{priority}/what-if under gunicorn, timed.

    .venv/bin/python benchmarks/sla_whatif.py [--tickets 10000] [--runs 7] [--priority normal] [--seed N]

Uses MONGO_URL / AMQP_URL when set; otherwise starts its own FerretDB (built by `make tools`, data in
a temporary directory) and uses the local RabbitMQ. Everything lives under a fresh namespace
`tfbench_<hex>`, removed at the end (api, exchange, database, FerretDB), also on Ctrl-C.

How:
1. `--tickets` tickets of `--priority`, created over the last 29 days, go through the domain's own
   event methods (TicketClocks, default policies, 24x7) with varied histories: a first reply (late or
   not), a wait on the requester and back, a requester message and the answer (next_response), a
   priority change into the priority (from high), resolved, closed, or still open. Their documents, as
   ClockStore writes them (with each clock's history), are written straight into `<ns>_sla.clocks`, and
   the compact copies of their histories (HistoryStore) into `<ns>_sla.clock_histories`, by insert_many
   in batches of 1000, after the api's own indexes (`Sla.ensure_storage`).
2. sla's api runs under gunicorn (`shared.gunicorn_conf`, one worker: one request at a time is what is
   timed). One request warms it up; then `--runs` requests, one after the other, each with a draft that
   halves all three targets (so every clock is replayed under it) and `since` 30 days back. Each answer
   must have replayed every ticket and skipped none.
3. Prints each run's wall time as the client saw it, p50 and max, the CPU seconds the api's worker
   and FerretDB spent on it (from /proc: FerretDB is not measured when MONGO_URL is given), the load
   average (others' work on the machine slows the runs), and the answer's figures once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson  # noqa: E402 - pymongo's

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sla_deadlines import _delete_topology, _drop_database, finish  # noqa: E402
from services.sla import handlers  # noqa: E402
from services.sla.business_time import Calendar  # noqa: E402
from services.sla.domain import ALWAYS, TicketClocks, default_policies  # noqa: E402
from services.sla.store import ClockStore, HistoryStore  # noqa: E402
from shared import events, mongo  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.config import load_settings  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, store_for_benchmark, wait_for_port  # noqa: E402

BATCH = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")
CALENDARS = {ALWAYS: Calendar.always()}
SECRET = secrets.token_urlsafe(32)
DRAFT = {  # normal's defaults are 240 / 480 / 1440 minutes
    "first_response_minutes": 120,
    "next_response_minutes": 240,
    "resolution_minutes": 960,
    "warn_at_percent": [75, 90],
    "calendar": ALWAYS,
}


def ms(moment: datetime) -> datetime:
    """Truncated to the millisecond, as event times are."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def ticket(priority: str, now: datetime, rng: random.Random) -> dict:
    """One ticket's clocks through a random history ending before `now`, as ClockStore stores them."""
    policies = default_policies()
    clocks = TicketClocks(str(uuid.uuid4()), calendars=CALENDARS)
    at = ms(now - timedelta(days=29) + timedelta(seconds=rng.uniform(0, 28 * 86400)))
    escalated = rng.random() < 0.1
    clocks.created("high" if escalated else priority, at, policies)

    def later(low: float, high: float) -> datetime:
        nonlocal at
        at = ms(at + timedelta(minutes=rng.uniform(low, high)))
        return at

    if escalated:
        clocks.priority_changed(priority, later(5, 120), policies)
    clocks.status_changed("in_progress", later(1, 30))
    if rng.random() < 0.9:
        clocks.replied(later(1, 480))
        if rng.random() < 0.4:
            clocks.status_changed("waiting_on_requester", later(1, 60))
            clocks.status_changed("in_progress", later(10, 1440))
        if rng.random() < 0.3:
            clocks.message_added(later(10, 600), policies)
            clocks.replied(later(1, 900))
    if rng.random() < 0.85:
        clocks.resolved(later(10, 1800))
        if rng.random() < 0.5:
            clocks.closed(later(60, 4320))
    clocks.due_alerts(now)  # what the deadline timer has announced by now
    return {**ClockStore._doc(clocks, None), "_v": 1}


def post(port: int, path: str, body: dict) -> tuple[float, int, dict]:
    """(seconds, status, answer) of one POST on a new connection."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {issue_token(SECRET, 'admin')}"}
    conn.request("POST", path, json.dumps(body).encode(), headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return time.perf_counter() - started, response.status, json.loads(raw)


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 for none."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def worker_pid(master: int) -> int:
    """The gunicorn master's one worker."""
    with open(f"/proc/{master}/task/{master}/children") as children:
        return int(children.read().split()[0])


def load_average() -> float:
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


def gunicorn(port: int, env: dict, log) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "-c", "python:shared.gunicorn_conf"]
    cmd += ["--workers", "1", "--timeout", "120", "--bind", f"127.0.0.1:{port}", "services.sla.api:create_app()"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    if not wait_for_port("127.0.0.1", port, 60):
        raise RuntimeError("sla's api did not start")
    return proc


def run(args: argparse.Namespace, tmp: Path, state: dict) -> None:
    rng = random.Random(args.seed)
    mongo_url, state["ferretdb"] = store_for_benchmark(tmp)
    env = {
        **os.environ,
        "MONGO_URL": mongo_url,
        "AMQP_URL": broker_for_benchmark(),
        "TICKETFLOW_NAMESPACE": state["namespace"],
        "TICKETFLOW_JWT_SECRET": SECRET,
        "PYTHONPATH": str(ROOT),
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TICKETFLOW_METRICS_PORT", "WEB_CONCURRENCY", "TICKETFLOW_DEV"):
        env.pop(name, None)
    settings = load_settings(env)
    state["settings"] = settings

    # 1. the tickets
    started = time.perf_counter()
    app = handlers.bootstrap(settings)
    app.ensure_storage()
    now, build, insert, steps, sizes = datetime.now(UTC), 0.0, 0.0, 0, []
    for done in range(0, args.tickets, BATCH):
        t = time.perf_counter()
        docs = [ticket(args.priority, now, rng) for _ in range(min(BATCH, args.tickets - done))]
        build += time.perf_counter() - t
        steps += sum(len(clock["history"]) for doc in docs for clock in doc["clocks"])
        sizes += [len(bson.encode({"clocks": doc["clocks"]})) for doc in docs[:50]]
        t = time.perf_counter()
        app.clocks.collection.insert_many(docs, ordered=False)
        app.clocks.histories.collection.insert_many([HistoryStore.copy_of(doc, 1) for doc in docs], ordered=False)
        insert += time.perf_counter() - t
    mongo.close_client()
    print(
        f"loaded {args.tickets} tickets in {time.perf_counter() - started:.1f} s (build {build:.1f} s, "
        f"insert_many {insert:.1f} s); {steps / args.tickets:.1f} history steps a ticket, "
        f"clocks about {statistics.median(sizes) / 1024:.1f} KiB a ticket (BSON)",
        flush=True,
    )

    # 2. the api, warmed up, then the runs
    log = open(tmp / "api.log", "ab")  # noqa: SIM115 - closed at the end
    state["log"] = log
    port = free_port()
    state["api"] = gunicorn(port, env, log)
    since = events.format_time(now - timedelta(days=30))
    path = f"/policies/{args.priority}/what-if?since={since}"
    warm, status, answer = post(port, path, DRAFT)
    if status != 200:
        raise RuntimeError(f"what-if answered {status}: {answer}")
    api, ferretdb = worker_pid(state["api"].pid), state["ferretdb"].pid if state.get("ferretdb") else None
    times, api_cpu, server_cpu = [], [], []
    for _ in range(args.runs):
        before = cpu_seconds(api), cpu_seconds(ferretdb), load_average()
        seconds, status, answer = post(port, path, DRAFT)
        if status != 200 or answer["replayed"] != args.tickets or answer["skipped"]:
            raise RuntimeError(f"what-if answered {status}: replayed {answer.get('replayed')}, {answer}"[:2000])
        times.append(seconds)
        api_cpu.append(cpu_seconds(api) - before[0])
        server_cpu.append(cpu_seconds(ferretdb) - before[1])
        print(
            f"  run {len(times)}: {1000 * seconds:6.0f} ms   CPU: api {api_cpu[-1]:.2f} s, FerretDB "
            f"{server_cpu[-1]:.2f} s   load average {before[2]:.2f}",
            flush=True,
        )

    # 3. the figures
    def row(figures: dict, clock: str) -> str:
        r = next(item for item in figures["items"] if item["clock"] == clock)
        return f"met {r['met']:5}  breached {r['breached']:5}  open {r['open']:5}  compliance {r['compliance_percent']}"

    print()
    print(f"  tickets replayed             {answer['replayed']} (skipped {answer['skipped']})")
    for clock in ("first_response", "next_response", "resolution"):
        print(f"  {clock:<15} current      {row(answer['current'], clock)}")
        print(f"  {'':<15} draft        {row(answer['draft'], clock)}")
    print(f"  clocks whose outcome changes {len(answer['changed'])}")
    print(f"  first request (warm-up)      {1000 * warm:.0f} ms")
    print(
        f"  what-if, {args.runs} runs             p50 {1000 * statistics.median(times):.0f} ms  "
        f"max {1000 * max(times):.0f} ms  (target: under 2000 ms; {os.cpu_count()} cores)"
    )
    print(
        f"  CPU a request, median        api {statistics.median(api_cpu):.2f} s, FerretDB "
        f"{statistics.median(server_cpu):.2f} s"
    )


def cleanup(state: dict, tmp: Path) -> None:
    """Everything the run started or created; each step on its own, so one failure does not stop the rest."""
    api = state.get("api")
    if api is not None and api.poll() is None:
        api.terminate()
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
    steps = []
    if "settings" in state:
        settings = state["settings"]
        steps.append(lambda: _delete_topology(settings))
        steps.append(lambda: _drop_database(settings))
    if "log" in state:
        steps.append(state["log"].close)
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - clean up what can be cleaned up
            print(f"cleanup: {exc!r}", file=sys.stderr)
    finish(state, tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets of the priority (default 10000)")
    parser.add_argument("--runs", type=int, default=7, help="timed requests after one warm-up (default 7)")
    parser.add_argument("--priority", default="normal", choices=("emergency", "high", "normal", "low"))
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    if args.tickets < 1 or args.runs < 1:
        parser.error("--tickets and --runs must be at least 1")
    state: dict = {"namespace": f"tfbench_{secrets.token_hex(4)}", "keep": args.keep}
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-whatif-bench-"))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    print(f"namespace {state['namespace']}", flush=True)
    try:
        run(args, tmp, state)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup(state, tmp)
    return 0


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
