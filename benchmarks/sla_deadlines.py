"""sla's deadline timer under 100,000 running clocks: alert lag, and the worker's CPU while nothing is due.

    .venv/bin/python benchmarks/sla_deadlines.py [--clocks 100000] [--due 300] [--window 60] [--idle 20] [--workers 1]

Uses MONGO_URL / AMQP_URL when set; otherwise starts its own FerretDB (built by `make tools`, data in
a temporary directory) and uses the local RabbitMQ. Everything lives under a fresh namespace
`tfbench_<hex>`, removed at the end (worker, queues, exchange, database, FerretDB), also on Ctrl-C.

How:
1. The clocks are written straight into `<ns>_sla.clocks`, in the documents ClockStore writes
   (`ClockStore._doc` + `_v: 1`, no outbox), by insert_many in batches of 1000, after the worker's
   own indexes (`Sla.ensure_storage`, the outbox relay's). `--clocks` tickets are created "now" (up
   to 2 minutes back) under the default policies: their first warning is at least 10 minutes away.
   `--due` more tickets get one threshold each at a moment spread uniformly over 10 .. 10+window s
   after the worker starts: half an 80 % warning of first_response (its breach comes long after the
   run), half a first_response breach (its warning already announced, as the worker would have), by
   an emergency policy of their own whose target and creation moment put the threshold there.
2. An exclusive queue bound to `<ns>.events` for `sla.warning` and `sla.breached` is in place before `--workers` sla
   workers (`python -m services.sla.worker`) start. For each alert received, lag = receive time
   minus the moment it fell due: the envelope's `occurred_at` for sla.warning (the threshold
   moment), `data.breached_at` for sla.breached (the deadline), so a breach's lag includes the
   breach grace (TICKETFLOW_SLA_BREACH_GRACE, 0.1 s by default) on purpose. Both are checked against
   the moments the benchmark constructed; every expected alert must arrive exactly once (by event
   id and by ticket, clock, instance and type), and nothing from the far-future clocks.
3. CPU time (utime + stime from /proc/<pid>/stat) of the worker(s) and of FerretDB is read at the
   phase boundaries: start-up (launch to "worker started"), the due window, and --idle seconds
   after the last alert with nothing due; shown as % of one core (CPU seconds per wall second).
   Before the worker starts, the timer's own query (`ClockStore.due`, nothing due) is timed and
   FerretDB's explain of it shown: a full collection scan per timer pass shows up there first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.sla import handlers  # noqa: E402
from services.sla.business_time import Calendar  # noqa: E402
from services.sla.domain import ALWAYS, Policy, TicketClocks, default_policies  # noqa: E402
from services.sla.store import ClockStore  # noqa: E402
from shared import events, mongo  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.events import PRIORITIES  # noqa: E402
from shared.relay import OutboxRelay  # noqa: E402
from ticketflow.cli import worker_command  # noqa: E402
from ticketflow.local import broker_for_benchmark, store_for_benchmark  # noqa: E402

BATCH = 1000
LEAD = 10.0  # seconds from the worker's launch to the first possible due moment
CALENDARS = {ALWAYS: Calendar.always()}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU of other processes --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """CPU seconds of a group of processes between marks, as % of one core over the wall time."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.mark()

    def mark(self) -> None:
        self.cpu, self.wall = self._total(), time.monotonic()

    def percent(self) -> float:
        return 100 * (self._total() - self.cpu) / max(time.monotonic() - self.wall, 1e-9)

    def _total(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


# --- the clocks -------------------------------------------------------------------------------------


def ms(moment: datetime) -> datetime:
    """Truncated to the millisecond, as BSON stores it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def document(clocks: TicketClocks, at: datetime, grace: timedelta) -> dict:
    """What ClockStore.insert writes for clocks with nothing to publish (outbox.insert_with_events adds `_v`)."""
    return {**ClockStore._doc(clocks, clocks.next_due(at, grace)), "_v": 1}


def far_future_batch(n: int, grace: timedelta, rng: random.Random) -> tuple[list[dict], datetime]:
    """n tickets created within the last 2 minutes under the default policies; (documents, soonest next_due)."""
    now, policies = datetime.now(UTC), default_policies()
    docs = []
    for _ in range(n):
        clocks = TicketClocks(str(uuid.uuid4()), calendars=CALENDARS)
        clocks.created(rng.choice(PRIORITIES), ms(now - timedelta(seconds=rng.uniform(0, 120))), policies)
        docs.append(document(clocks, now, grace))
    return docs, min(doc["next_due"] for doc in docs)


def due_tickets(
    n: int, start: datetime, window: float, keep_clear: float, grace: timedelta, rng: random.Random
) -> tuple[list[dict], dict[tuple, datetime]]:
    """n tickets with one threshold each in start+LEAD .. start+LEAD+window; (documents, {alert key: due moment}).

    Nothing else of theirs falls due within `keep_clear` seconds after the window.
    """
    docs, expected = [], {}
    for i in range(n):
        due = ms(start + timedelta(seconds=LEAD + rng.uniform(0, window)))
        # A target long enough that the other threshold of first_response (20 % of it away) is clear.
        target = timedelta(milliseconds=5 * round(rng.uniform(1, 2) * max(5 * keep_clear, 600) * 200))
        policy = Policy("emergency", 1, target.total_seconds() / 60, 30.0, 1440.0, (80,), ALWAYS)
        clocks = TicketClocks(str(uuid.uuid4()), calendars=CALENDARS)
        if i % 2 == 0:  # its 80 % warning falls due in the window
            clocks.created("emergency", due - target * 0.8, {"emergency": policy})
            expected[(clocks.ticket_id, "first_response", 0, "sla.warning")] = due
        else:  # its breach falls due in the window; the warning went out long ago
            clocks.created("emergency", due - target, {"emergency": policy})
            announced = clocks.due_alerts(start, grace)
            assert [alert.type for alert in announced] == ["sla.warning"], announced
            expected[(clocks.ticket_id, "first_response", 0, "sla.breached")] = due
        docs.append(document(clocks, start, grace))
    return docs, expected


# --- the run ----------------------------------------------------------------------------------------


class Alerts:
    """The benchmark's exclusive queue on `<ns>.events` for the alerts: each with its receive time."""

    def __init__(self, amqp_url: str, settings) -> None:
        import pika

        from shared.topology import declare_exchange

        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = self.connection.channel()
        declare_exchange(channel, settings)
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for kind in ("sla.warning", "sla.breached"):  # the alerts (not sla.deadlines_changed)
            channel.queue_bind(queue, settings.exchange, routing_key=kind)
        channel.basic_consume(queue, self._received, auto_ack=True)
        self.received: list[tuple[float, dict]] = []

    def _received(self, _channel, _method, _props, body: bytes) -> None:
        self.received.append((time.time(), json.loads(body)))

    def pump(self, seconds: float) -> None:
        """Receive for `seconds` (returns early never: callbacks run as messages arrive)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.connection.process_data_events(time_limit=min(left, 0.05))

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def marks(*meters: CpuMeter | None) -> None:
    for meter in meters:
        if meter is not None:
            meter.mark()


def timer_query_diagnostics(app: handlers.Sla) -> tuple[float, float, str]:
    """(median ms of the timer's query when nothing is due, ms of one when every clock is due (a backlog,
    as after an outage: limit 200), FerretDB's explain of the first in brief)."""
    horizon = handlers.now() + timedelta(seconds=1)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        app.clocks.due(horizon, 200)
        times.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    app.clocks.due(horizon + timedelta(days=3650), 200)
    backlog_ms = 1000 * (time.perf_counter() - started)
    try:
        plan = app.clocks.collection.database.command(
            "explain",
            {"find": "clocks", "filter": {"next_due": {"$lte": horizon}}, "limit": 200},
        )
        brief = ", ".join(f"{key}={plan[key]}" for key in sorted(plan) if "ushdown" in key) or "no pushdown fields"
        steps = plan.get("queryPlanner", {}).get("Plan") or []
        details = [str(step).split("detail=", 1)[-1] for step in steps]
        if details:
            brief += f"; SQLite plan: {' / '.join(details)}"
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        brief = f"explain failed: {exc!r}"
    return statistics.median(times), backlog_ms, brief


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def wait_started(workers: list[subprocess.Popen], log_path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(proc.poll() is not None for proc in workers):
            raise RuntimeError(f"an sla worker exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        if log_path.read_text(errors="replace").count("sla worker started") >= len(workers):
            return
        time.sleep(0.01)
    raise RuntimeError(f"the sla workers did not start in {timeout} s")


def run(args: argparse.Namespace, tmp: Path, state: dict) -> None:
    rng = random.Random(args.seed)
    mongo_url, ferretdb = store_for_benchmark(tmp)
    state["ferretdb"] = ferretdb
    env = {
        **os.environ,
        "MONGO_URL": mongo_url,
        "AMQP_URL": broker_for_benchmark(),
        "TICKETFLOW_NAMESPACE": state["namespace"],
        "PYTHONPATH": str(ROOT),
    }
    if not env.get("TICKETFLOW_JWT_SECRET"):
        env["TICKETFLOW_DEV"] = "1"
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TICKETFLOW_METRICS_PORT"):
        env.pop(name, None)
    settings = load_settings(env)
    state["settings"] = settings
    grace = timedelta(seconds=settings.sla_breach_grace)
    keep_clear = LEAD + args.window + args.idle + 120  # seconds after the launch in which nothing else falls due

    # 1. the clocks, with the worker's indexes
    started = time.perf_counter()
    app = handlers.bootstrap(settings)
    app.ensure_storage()
    OutboxRelay(settings, handlers.SERVICE, app.pending, [app.clocks.collection]).ensure_indexes()
    build = insert = 0.0
    soonest = None
    for done in range(0, args.clocks, BATCH):
        t = time.perf_counter()
        docs, first = far_future_batch(min(BATCH, args.clocks - done), grace, rng)
        build += time.perf_counter() - t
        t = time.perf_counter()
        app.clocks.collection.insert_many(docs, ordered=False)
        insert += time.perf_counter() - t
        soonest = min(soonest or first, first)
    load_seconds = time.perf_counter() - started
    print(
        f"loaded {args.clocks} clocks in {load_seconds:.1f} s (build {build:.1f} s, insert_many {insert:.1f} s)",
        flush=True,
    )
    query_ms, backlog_ms, plan = timer_query_diagnostics(app)
    print(f"timer query (nothing due), median of 20: {query_ms:.1f} ms; explain: {plan}", flush=True)

    # 2. the listener, the clocks due during the run, the workers
    alerts = Alerts(settings.amqp_url, settings)
    state["alerts"] = alerts
    launch = datetime.now(UTC)
    if soonest is not None and soonest < launch + timedelta(seconds=keep_clear):
        raise RuntimeError(f"a far-future clock falls due at {soonest} (loading took too long)")
    docs, expected = due_tickets(args.due, launch, args.window, keep_clear, grace, rng)
    if docs:
        app.clocks.collection.insert_many(docs, ordered=False)
    mongo.close_client()  # the benchmark's own client goes: it would poll FerretDB too
    log_path = tmp / "workers.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed by the children's exit / at the end
    state["log"] = log
    launched_at = time.monotonic()
    workers = [
        subprocess.Popen(worker_command("sla"), cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        for _ in range(args.workers)
    ]
    state["workers"] = workers
    worker_cpu = CpuMeter([proc.pid for proc in workers])
    server_cpu = CpuMeter([ferretdb.pid]) if ferretdb else None
    wait_started(workers, log_path)
    ready_seconds = time.monotonic() - launched_at
    startup = worker_cpu.percent()
    startup_server = server_cpu.percent() if server_cpu else None
    marks(worker_cpu, server_cpu)

    # 3. the due window: until every expected alert is in (or 10 s after the last moment)
    last_due = max(expected.values(), default=launch) + grace
    give_up = last_due + timedelta(seconds=10)
    keys = set(expected)

    def seen() -> set:
        return {alert_key(env) for _, env in alerts.received}

    while datetime.now(UTC) < give_up and not keys <= seen():
        alerts.pump(0.2)
    window_wall = time.monotonic() - worker_cpu.wall
    window_cpu = worker_cpu.percent()
    window_server = server_cpu.percent() if server_cpu else None
    alerts.pump(2.0)  # settle: the flusher clears the outbox, the worker records its breaches

    # 4. idle: nothing is due until well after this
    marks(worker_cpu, server_cpu)
    alerts.pump(args.idle)
    idle_cpu = worker_cpu.percent()
    idle_server = server_cpu.percent() if server_cpu else None

    # 5. the figures
    lags: dict[str, list[float]] = {"sla.warning": [], "sla.breached": []}
    construction_error = 0.0
    by_id = Counter(env["event_id"] for _, env in alerts.received)
    by_key = Counter(alert_key(env) for _, env in alerts.received)
    for received, envelope in alerts.received:
        key = alert_key(envelope)
        due = due_moment(envelope)
        lags[envelope["type"]].append(1000 * (received - due.timestamp()))
        if key in expected:
            construction_error = max(construction_error, abs((due - expected[key]).total_seconds()) * 1000)
    missing = keys - set(by_key)
    unexpected = set(by_key) - keys
    duplicates = sum(n - 1 for n in by_id.values() if n > 1)
    duplicate_keys = sum(n - 1 for key, n in by_key.items() if n > 1)
    everything = lags["sla.warning"] + lags["sla.breached"]

    def stats(values: list[float]) -> str:
        if not values:
            return "n/a"
        return f"median {statistics.median(values):7.1f}  p99 {percentile(values, 99):7.1f}  max {max(values):7.1f}"

    def pct(value: float | None) -> str:
        return "n/a (MONGO_URL given)" if value is None else f"{value:6.2f} %"

    warnings = sum(key[3] == "sla.warning" for key in keys)
    print()
    print(f"  clocks (tickets) total       {args.clocks + args.due}  ({args.clocks} far-future + {args.due} due)")
    print(f"  due during run               {len(keys)}  ({warnings} warnings, {len(keys) - warnings} breaches)")
    print(f"                               at {LEAD:.0f} .. {LEAD + args.window:.0f} s after launch")
    print(
        f"  alerts received              {len(alerts.received)}  (missing {len(missing)}, unexpected "
        f"{len(unexpected)}, duplicate event ids {duplicates}, duplicate keys {duplicate_keys})"
    )
    print(f"  lag, all (ms)                {stats(everything)}")
    print(f"  lag, sla.warning (ms)        {stats(lags['sla.warning'])}")
    print(
        f"  lag, sla.breached (ms)       {stats(lags['sla.breached'])}  (incl. breach grace "
        f"{1000 * settings.sla_breach_grace:.0f} ms)"
    )
    print(f"  due moments vs construction  max {construction_error:.1f} ms apart")
    print(f"  workers                      {args.workers}, ready {ready_seconds:.1f} s after launch")
    print(f"  worker CPU, start-up         {pct(startup)}   FerretDB {pct(startup_server)}")
    print(f"  worker CPU, due window       {pct(window_cpu)}   FerretDB {pct(window_server)}  ({window_wall:.0f} s)")
    print(
        f"  worker CPU, idle             {pct(idle_cpu)}   FerretDB {pct(idle_server)}  ({args.idle:.0f} s, "
        "% of one core)"
    )
    print(f"  load {args.clocks} clocks            {load_seconds:.1f} s  (build {build:.1f} s, insert {insert:.1f} s)")
    print(f"  timer query, nothing due     {query_ms:.1f} ms  ({os.cpu_count()} cores)")
    print(f"  timer query, all {args.clocks} due   {backlog_ms:.0f} ms  (limit 200: one catch-up pass after an outage)")
    if missing or unexpected or duplicates or duplicate_keys:
        print("  FAILED: the alerts are not exactly the expected ones", file=sys.stderr)
        state["failed"] = True


def alert_key(envelope: dict) -> tuple:
    data = envelope["data"]
    return envelope["ticket_id"], data["clock"], data["instance"], envelope["type"]


def due_moment(envelope: dict) -> datetime:
    """When the alert fell due: the threshold moment of a warning, the deadline of a breach."""
    if envelope["type"] == "sla.breached":
        return events.parse_time(envelope["data"]["breached_at"])
    return events.parse_time(envelope["occurred_at"])


def cleanup(state: dict, tmp: Path) -> None:
    """Everything the run started or created; each step on its own, so one failure does not stop the rest."""
    for proc in state.get("workers", []):
        if proc.poll() is None:
            proc.terminate()
    for proc in state.get("workers", []):
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    steps = []
    if "alerts" in state:
        steps.append(state["alerts"].close)
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


def finish(state: dict, tmp: Path) -> None:
    """The last of a cleanup: FerretDB stopped, the client closed, the temporary directory gone (or kept)."""
    ferretdb = state.get("ferretdb")
    if ferretdb is not None and ferretdb.poll() is None:
        ferretdb.terminate()
        try:
            ferretdb.wait(15)
        except subprocess.TimeoutExpired:
            ferretdb.kill()
            ferretdb.wait()
    mongo.close_client()
    if state.get("keep"):
        print(f"kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _delete_topology(settings) -> None:
    from ticketflow.cleanup import delete_topology

    delete_topology(settings.amqp_url, settings.namespace)


def _drop_database(settings) -> None:
    from pymongo import MongoClient

    client = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
    try:
        client.drop_database(settings.database_name(handlers.SERVICE))
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clocks", type=int, default=100_000, help="far-future tickets (default 100000)")
    parser.add_argument("--due", type=int, default=300, help="tickets with a threshold during the run (default 300)")
    parser.add_argument("--window", type=float, default=60, help="seconds over which those fall due (default 60)")
    parser.add_argument("--idle", type=float, default=20, help="seconds of idle CPU measurement (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="sla worker processes (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    if args.clocks < 0 or args.due < 0 or args.workers < 1 or args.window <= 0 or args.idle <= 0:
        parser.error("--clocks and --due must be >= 0, --workers >= 1, --window and --idle > 0")
    state: dict = {"namespace": f"tfbench_{secrets.token_hex(4)}", "keep": args.keep}
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-sla-bench-"))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a background job)
    print(f"namespace {state['namespace']}, FerretDB {ferretdb_stamp()}", flush=True)
    try:
        run(args, tmp, state)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup(state, tmp)
    return 1 if state.get("failed") else 0


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def ferretdb_stamp() -> str:
    if os.environ.get("MONGO_URL"):
        return "not started (MONGO_URL given)"
    from ticketflow.local import ferretdb_binary

    binary = ferretdb_binary()
    try:
        modified = datetime.fromtimestamp(binary.stat().st_mtime, UTC)
    except OSError:
        return f"{binary} (missing)"
    return f"{binary} modified {modified.isoformat(timespec='seconds')}"


if __name__ == "__main__":
    sys.exit(main())
