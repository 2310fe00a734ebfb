"""FerretDB's backends side by side, with ticketflow's own query shapes: the patched SQLite backend (what `make run`
starts) against the PostgreSQL one, plain and with --test-enable-nested-pushdown (issue 16: measure, then choose).

    scripts/ensure-postgresql.sh       # Debian's PostgreSQL on 127.0.0.1, role and database `ferretdb`
    .venv/bin/python benchmarks/store_backends.py [--docs 20000] [--repeat 10] [--ops 1000] [--postgresql-url URL]

Each backend gets a FerretDB of its own (the same binary, .tools/bin/ferretdb; on its own port, with
ticketflow/local.py's flags), measured one after the other so they never share the cores, in a database of its
own: `tfbench_<hex>_<backend>` (for PostgreSQL a schema in the URL's database; for SQLite files in a temporary
directory). All of it is removed at the end, also on Ctrl-C: the databases, the FerretDBs, the directory.
PostgreSQL itself is not started or stopped here (FERRETDB_POSTGRESQL_URL, else the script's default URL).

For each backend:
1. the exactness checks of /work/shared/tools/store_check.py: 8 threads x 100 `$inc` of one document,
   800 findAndModify `$inc` calls (all distinct), 8 threads of version-checked updates (wins = final version);
2. `--docs` ticket-like documents (intake's fields and assignment's queue keys in one document: most closed,
   some open, 8 teams, 500 requesters, a thread of 1..4 entries) under the indexes that intake's and
   assignment's TicketStore.ensure_indexes create; a second collection with the same indexes holds only the
   one ticket the writes address ("empty");
3. the median of `--repeat` runs, in ms, of each query shape on both collections, and FerretDB's `explain` of
   each list (its pushdown flags and the backend's own plan);
4. the CPU time (utime + stime from /proc) FerretDB and PostgreSQL (the postmaster and all its processes, the
   ones ended included) spend on `--ops` insert_one, find_one by _id and version-checked update_one, one at a
   time from one client, into / from the full collection; and their memory afterwards (RSS; PostgreSQL's also
   as PSS, which counts its shared buffers once).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.assignment.store import QUEUE_ORDER  # noqa: E402
from services.intake.domain import DEFAULT_TOPICS  # noqa: E402
from shared.events import BY_URGENCY, OPEN_STATUSES  # noqa: E402
from ticketflow.local import (  # noqa: E402
    ferretdb_binary,
    ferretdb_command,
    free_port,
    log_tail,
    masked,
    wait_for_port,
)

DEFAULT_PG_URL = "postgres://ferretdb:ferretdb-local-only@127.0.0.1:5432/ferretdb"  # scripts/ensure-postgresql.sh's
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = 51  # the APIs ask for limit + 1 (shared/cursors.py)
TEAMS = [f"team-{n}" for n in range(8)]
TOPICS = [topic for topic, _ in DEFAULT_TOPICS]
QUEUE = [(key, direction) for key, direction in QUEUE_ORDER.order]
NEWEST = [("number", DESCENDING)]
BACKENDS = {  # --backends: name -> Backend(title, flags beyond ticketflow/local.py's, on PostgreSQL)
    "sqlite": ("SQLite (patched)", [], False),
    "postgresql": ("PostgreSQL", [], True),
    "postgresql-nested": ("PostgreSQL, nested pushdown", ["--test-enable-nested-pushdown"], True),
}
STOPPING = threading.Event()  # set on the way out: the exactness checks' threads end their loops
THREADS: list[threading.Thread] = []


@dataclass
class Backend:
    """One FerretDB to measure: its name in the tables, its flags beyond the local ones, what it runs on."""

    name: str
    flags: list[str]
    postgres: bool
    proc: subprocess.Popen | None = None
    client: MongoClient | None = None
    database: str = ""
    address: str = ""
    results: dict = field(default_factory=dict)


# --- processes and their CPU and memory -----------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a process (all its threads); with `children`, also of its children it has reaped."""
    fields = proc_stat(pid)
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / CLK_TCK


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def parent(pid: int) -> int:
    return int(proc_stat(pid)[1])


def postmaster(port: int) -> int | None:
    """The pid of the PostgreSQL server listening on `port` (its postmaster.pid names the port), or the only one."""
    masters = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and comm(int(entry.name)) == "postgres" and comm(parent(int(entry.name))) != "postgres":
            masters.append(int(entry.name))
    for pid in masters:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        data_dir = args[args.index(b"-D") + 1].decode() if b"-D" in args else None
        try:
            lines = Path(data_dir, "postmaster.pid").read_text().splitlines() if data_dir else []
        except OSError:
            lines = []
        if len(lines) > 3 and lines[3].strip() == str(port):
            return pid
    return masters[0] if len(masters) == 1 else None


def cluster_pids(master: int) -> list[int]:
    pids = [master]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and parent(int(entry.name)) == master:
                pids.append(int(entry.name))
        except (OSError, IndexError):  # ended meanwhile
            pass
    return pids


def postgres_cpu(master: int) -> float:
    """All the server's CPU so far: the postmaster, its running processes, and those ended (reaped by it)."""
    total = cpu_seconds(master, children=True)
    for pid in cluster_pids(master)[1:]:
        try:
            total += cpu_seconds(pid)
        except OSError:  # ended between the listing and now: the postmaster's children count has it, or soon will
            pass
    return total


def memory_kib(pid: int, key: str) -> int:
    """A line of /proc/<pid>/status (VmRSS, VmHWM) or smaps_rollup (Pss), in KiB; 0 when unreadable."""
    for name in ("status", "smaps_rollup"):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
    return 0


# --- the documents --------------------------------------------------------------------------------------------


def ticket(rng: random.Random, number: int, created_at: datetime, status: str) -> dict:
    """A ticket as intake stores it, plus the fields assignment's queue sorts by (one collection for both)."""
    priority = rng.choices(BY_URGENCY, weights=(1, 10, 60, 29))[0]
    requester = rng.randrange(500)
    ended = status in ("resolved", "closed")
    resolved_at = created_at + timedelta(hours=rng.randint(1, 96)) if ended else None
    agent = f"agent-{rng.randrange(40)}" if status not in ("new",) else None
    thread = [
        {"id": f"m{n}", "author": {"type": "requester" if n % 2 == 0 else "agent"}, "visibility": "public",
         "body": "words " * rng.randint(30, 120), "at": created_at + timedelta(minutes=10 * n)}
        for n in range(rng.randint(1, 4))
    ]  # fmt: skip
    return {
        "_id": f"{rng.getrandbits(128):032x}",
        "_v": rng.randint(1, 6),
        "number": number,
        "subject": f"Ticket {number}: something does not work",
        "description": "a description of the problem " * 4,
        "requester": {"email": f"requester{requester}@example.com", "name": f"Requester {requester}"},
        "topic": rng.choice(TOPICS),
        "priority": priority,
        "priority_rank": BY_URGENCY.index(priority),
        "source": rng.choice(("web", "email", "api")),
        "status": status,
        "team": rng.choice(TEAMS),
        "agent_id": agent,
        "assignee": {"agent_id": agent, "team": None} if agent else None,
        "sla": {"first_response_due_at": created_at + timedelta(hours=4)},
        "sla_sort": created_at + timedelta(hours=rng.choice((4, 8, 24, 72))),
        "thread": thread,
        "thread_count": len(thread),
        "created_at": created_at,
        "updated_at": resolved_at or created_at,
        "resolved_at": resolved_at,
        "closed_at": resolved_at + timedelta(days=3) if status == "closed" else None,
    }


def tickets(count: int, seed: int) -> list[dict]:
    """Oldest first; the newest 7.5 % still open or resolved lately, the rest closed."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(count):
        recent = i >= count - max(1, count * 3 // 40)
        status = rng.choice((*OPEN_STATUSES, "assigned", "assigned", "resolved")) if recent else "closed"
        docs.append(ticket(rng, 100001 + i, start + timedelta(minutes=15 * i), status))
    return docs


def ensure_indexes(db: Database, name: str) -> None:
    """services/intake/store.py's and services/assignment/store.py's TicketStore.ensure_indexes, on one collection."""
    collection = db[name]
    collection.create_index([("number", DESCENDING)], unique=True)
    collection.create_index([("requester.email", ASCENDING), ("number", DESCENDING)])
    collection.create_index([("status", ASCENDING), ("number", DESCENDING)])
    collection.create_index([("topic", ASCENDING), ("number", DESCENDING)])
    collection.create_index([("status", ASCENDING), ("resolved_at", ASCENDING)])
    collection.create_index([("team", ASCENDING), ("agent_id", ASCENDING), ("status", ASCENDING)])
    collection.create_index([("agent_id", ASCENDING), ("status", ASCENDING)])
    collection.create_index([("status", ASCENDING), *QUEUE])


# --- the measurements -----------------------------------------------------------------------------------------


def exactness(db: Database) -> dict:
    """store_check.py's three checks; each result with whether it is exact."""
    counters = db["exact"]
    counters.insert_many([{"_id": "x", "n": 0}, {"_id": "seq", "n": 0}, {"_id": "v", "_v": 0}])
    lock, values, wins = threading.Lock(), [], [0]

    def inc() -> None:
        for _ in range(100):
            if STOPPING.is_set():
                return
            counters.update_one({"_id": "x"}, {"$inc": {"n": 1}})

    def find_and_modify() -> None:
        for _ in range(100):
            if STOPPING.is_set():
                return
            doc = counters.find_one_and_update({"_id": "seq"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER)
            with lock:
                values.append(doc["n"])

    def versioned() -> None:
        for _ in range(50):
            if STOPPING.is_set():
                return
            version = counters.find_one({"_id": "v"})["_v"]
            if counters.update_one({"_id": "v", "_v": version}, {"$set": {"_v": version + 1}}).matched_count:
                with lock:
                    wins[0] += 1

    for work in (inc, find_and_modify, versioned):
        threads = [threading.Thread(target=work) for _ in range(8)]
        THREADS.extend(threads)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    incs, final = counters.find_one({"_id": "x"})["n"], counters.find_one({"_id": "v"})["_v"]
    return {
        "8 threads x 100 `$inc` of one document": (f"{incs}", incs == 800),
        "800 findAndModify `$inc` calls": (f"{len(set(values))} distinct", len(set(values)) == 800),
        "8 threads x 50 version-checked updates": (f"{wins[0]} wins, version {final}", wins[0] == final),
    }


def median_ms(work, repeat: int, server_cpu) -> tuple[float, float]:
    """(median wall ms, mean server CPU ms) of a call. The CPU figure holds on a busy machine, the wall one not."""
    work()  # once unmeasured: connections, caches, plans
    times, cpu = [], server_cpu()
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, (server_cpu() - cpu) / repeat * 1000


def shapes(db: Database, name: str, target: dict, sample: dict) -> list[tuple]:
    """(label, work, find command for explain or None) of each query shape on collection `name`."""
    collection, counters = db[name], db["counters"]
    state = {"v": target["_v"], "n": 0}
    status_assigned = {"status": "assigned"}
    requester = {"requester.email": sample["requester"]["email"]}
    queue_eq = {"status": "assigned", "team": sample["team"]}
    queue_in = {"status": {"$in": list(OPEN_STATUSES)}, "team": sample["team"]}

    def listing(query: dict, order: list) -> tuple:
        return (lambda: list(collection.find(query).sort(order).limit(PAGE)), {"filter": query, "sort": dict(order)})

    def versioned_update() -> None:
        found = collection.update_one(
            {"_id": target["_id"], "_v": state["v"]}, {"$set": {"updated_at": datetime.now(UTC), "_v": state["v"] + 1}}
        )
        assert found.matched_count == 1, "the version-checked update found no document"
        state["v"] += 1

    def insert() -> None:
        state["n"] += 1
        collection.insert_one({**target, "_id": f"{name}-new-{state['n']}", "number": 10**9 + state["n"]})

    return [
        ("find_one by _id", lambda: collection.find_one({"_id": target["_id"]}), {"filter": {"_id": target["_id"]}}),
        ("{status} by number desc, limit 51", *listing(status_assigned, NEWEST)),
        ('{"requester.email"} by number desc, limit 51', *listing(requester, NEWEST)),
        ("{} by number desc, limit 51", *listing({}, NEWEST)),
        ("queue {status, team} by QUEUE_ORDER, limit 51", *listing(queue_eq, QUEUE)),
        ("queue {status: {$in: open}, team} by QUEUE_ORDER, limit 51", *listing(queue_in, QUEUE)),
        ("version-checked update_one by _id", versioned_update, None),
        ("insert_one (a ticket)", insert, None),
        (
            "find_one_and_update `$inc` (the counter)",
            lambda: counters.find_one_and_update({"_id": "ticket_number"}, {"$inc": {"value": 1}}, upsert=True),
            None,
        ),
    ]


def plan_summary(explained: dict) -> str:
    """The backend's plan in a line: PostgreSQL's node types (and index names), SQLite's EXPLAIN QUERY PLAN."""
    plan = explained.get("queryPlanner", {}).get("Plan")
    if isinstance(plan, list):  # SQLite: "id=2 parent=0 notused=0 detail=SCAN t_..."
        return "; ".join(str(row).split("detail=", 1)[-1] for row in plan)
    nodes, todo = [], [plan] if isinstance(plan, dict) else []
    while todo:
        node = todo.pop(0)
        text = node.get("Node Type", "?") + (f" using {node['Index Name']}" if "Index Name" in node else "")
        nodes.append(text + (f" [{node['Filter']}]" if "Filter" in node else ""))
        todo.extend(node.get("Plans", []))
    return " > ".join(nodes) or "?"


def explain(db: Database, name: str, command: dict) -> str:
    explained = db.command("explain", {"find": name, **command, "limit": PAGE})
    flags = "".join(
        f"{flag[0].upper()}{'+' if explained.get(flag + 'Pushdown') else '-'} " for flag in ("filter", "sort", "limit")
    )
    return f"{flags}{plan_summary(explained)}"


def cpu_per_ops(backend: Backend, db: Database, docs: list[dict], ops: int, master: int | None) -> dict:
    """CPU seconds of FerretDB and PostgreSQL, and wall seconds, for `ops` calls of each kind, one at a time."""
    collection, rng = db["tickets"], random.Random(7)
    older = docs[: len(docs) // 2]  # not the one measure() updated: these still have the _v they were written with
    targets = [dict(doc) for doc in rng.sample(older, min(ops, len(older)))]
    kinds = {
        "insert_one": lambda i: collection.insert_one({**docs[i % len(docs)], "_id": f"cpu-{i}", "number": -i}),
        "find_one by _id": lambda i: collection.find_one({"_id": targets[i % len(targets)]["_id"]}),
        "version-checked update_one": lambda i: _bump(collection, targets[i % len(targets)]),
    }
    out = {}
    for kind, work in kinds.items():
        ferret0, pg0, wall0 = cpu_seconds(backend.proc.pid), postgres_cpu(master) if master else 0.0, time.monotonic()
        for i in range(ops):
            work(i)
        wall = time.monotonic() - wall0
        out[kind] = (
            cpu_seconds(backend.proc.pid) - ferret0,
            (postgres_cpu(master) - pg0) if master else None,
            wall,
        )
    return out


def _bump(collection, target: dict) -> None:
    if not collection.update_one({"_id": target["_id"], "_v": target["_v"]}, {"$inc": {"_v": 1}}).matched_count:
        raise AssertionError(f"version-checked update of {target['_id']} found no document")
    target["_v"] += 1


def measure(backend: Backend, args: argparse.Namespace, docs: list[dict], master: int | None) -> None:
    db = backend.client[backend.database]
    results = backend.results
    results["exact"] = exactness(db)
    started = time.monotonic()
    for name in ("tickets", "empty"):
        ensure_indexes(db, name)
    for first in range(0, len(docs), 1000):
        db["tickets"].insert_many(docs[first : first + 1000])
    results["load"] = time.monotonic() - started
    print(f"  {backend.name}: {len(docs)} documents in {results['load']:.1f} s", flush=True)
    sample = docs[-1]  # a recent ticket: its requester and team have open tickets
    lone = {**docs[-2], "_id": "the-only-one", "number": 1}
    db["empty"].insert_one(lone)

    def server_cpu() -> float:
        return cpu_seconds(backend.proc.pid) + (postgres_cpu(master) if master else 0.0)

    results["ms"], results["explain"], results["rows"] = {}, {}, {}
    for collection, target in (("empty", lone), ("tickets", docs[len(docs) // 2])):
        for label, work, command in shapes(db, collection, target, sample):
            results["ms"][(label, collection)] = median_ms(work, args.repeat, server_cpu)
            if command is not None and collection == "tickets":
                results["explain"][label] = explain(db, collection, command)
                results["rows"][label] = len(list(db[collection].find(command["filter"]).limit(PAGE)))
    results["cpu"] = cpu_per_ops(backend, db, docs, args.ops, master)
    pids = cluster_pids(master) if master else []
    results["memory"] = {
        "ferretdb_rss": memory_kib(backend.proc.pid, "VmRSS"),
        "ferretdb_peak": memory_kib(backend.proc.pid, "VmHWM"),
        "postgres_rss": sum(memory_kib(pid, "VmRSS") for pid in pids),
        "postgres_pss": sum(memory_kib(pid, "Pss") for pid in pids),
        "postgres_processes": len(pids),
    }


# --- starting and stopping ------------------------------------------------------------------------------------


def start(backend: Backend, tmp: Path, pg_url: str, namespace: str) -> None:
    port = free_port()
    data_dir = tmp / backend.name.split()[0].lower()
    data_dir.mkdir(parents=True, exist_ok=True)
    command = ferretdb_command(data_dir, port)
    if backend.postgres:
        command = [arg for arg in command if not arg.startswith(("--handler=", "--sqlite-url="))]
        command += ["--handler=postgresql", f"--postgresql-url={pg_url}"]
    command += backend.flags
    log_path = tmp / f"{data_dir.name}-{port}.log"
    with open(log_path, "ab") as log:
        backend.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not wait_for_port("127.0.0.1", port, timeout=30) or backend.proc.poll() is not None:
        raise RuntimeError(f"FerretDB ({backend.name}) did not start on port {port}:\n{log_tail(log_path)}")
    backend.address = f"127.0.0.1:{port}"
    backend.client = MongoClient(f"mongodb://{backend.address}", serverSelectionTimeoutMS=10_000)
    backend.database = f"{namespace}_{secrets.token_hex(2)}"
    backend.client.drop_database(backend.database)


def stop(backend: Backend) -> None:
    """Drop the backend's database (for PostgreSQL: its schema), then stop FerretDB.

    After a Ctrl-C a write may still be under way in FerretDB (an insert_many cut off on the client's side, the
    exactness checks' threads), and a write creates its database again: so the drop is checked, and repeated."""
    if backend.client is not None:
        backend.client.close()  # its sockets, some of them maybe mid-call
        client = MongoClient(f"mongodb://{backend.address}", serverSelectionTimeoutMS=5000)
        try:
            for _ in range(5):
                client.drop_database(backend.database)
                time.sleep(1)
                if backend.database not in client.list_database_names():
                    break
            else:
                print(f"cleanup: {backend.database} on {backend.name} came back after 5 drops", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - stop the process anyway
            print(f"cleanup: dropping {backend.database} on {backend.name}: {exc!r}", file=sys.stderr)
        finally:
            client.close()
        backend.client = None
    proc = backend.proc
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the report -----------------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def report(backends: list[Backend], args: argparse.Namespace) -> None:
    names = [backend.name for backend in backends]
    first = backends[0].results
    print("\n### Exactness\n")
    table(
        ["check", *names], [[check, *(_exact(b.results["exact"][check]) for b in backends)] for check in first["exact"]]
    )
    print(f"### Latency, median of {args.repeat}, ms: empty / {args.docs:,} documents (server CPU per call, ms)\n")
    labels = list(dict.fromkeys(label for label, _ in first["ms"]))
    table(["query", *names], [[label, *(_latency(b.results["ms"], label) for b in backends)] for label in labels])
    print("### explain over the full collection (F/S/L: filter, sort, limit pushed down; the backend's plan)\n")
    for label in first["explain"]:
        print(f"- {label} ({first['rows'][label]} rows)")
        for backend in backends:
            print(f"  - {backend.name}: {backend.results['explain'][label]}")
    print(f"\n### CPU per {args.ops:,} calls, one at a time, s (FerretDB + PostgreSQL = total; wall)\n")
    table(["calls", *names], [[kind, *(_cpu(b.results["cpu"][kind]) for b in backends)] for kind in first["cpu"]])
    print("### Memory after the run, MiB\n")
    memory = [b.results["memory"] for b in backends]
    table(["process", *names], [
        ["FerretDB RSS (peak)", *(f"{m['ferretdb_rss'] / 1024:.0f} ({m['ferretdb_peak'] / 1024:.0f})" for m in memory)],
        ["PostgreSQL RSS, all processes", *(_pg(m, "postgres_rss") for m in memory)],
        ["PostgreSQL PSS, all processes", *(_pg(m, "postgres_pss") for m in memory)],
    ])  # fmt: skip
    print(f"load {backends[0].results['loadavg']} -> {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")


def _exact(result: tuple[str, bool]) -> str:
    return result[0] if result[1] else f"{result[0]} (WRONG)"


def _latency(ms: dict, label: str) -> str:
    (empty, empty_cpu), (full, full_cpu) = ms[(label, "empty")], ms[(label, "tickets")]
    return f"{empty:.1f} / {full:.1f} ({empty_cpu:.1f} / {full_cpu:.1f})"


def _cpu(figures: tuple) -> str:
    ferret, pg, wall = figures
    if pg is None:
        return f"{ferret:.2f} (wall {wall:.1f})"
    return f"{ferret:.2f} + {pg:.2f} = {ferret + pg:.2f} (wall {wall:.1f})"


def _pg(memory: dict, key: str) -> str:
    return f"{memory[key] / 1024:.0f} ({memory['postgres_processes']} processes)" if memory[key] else "-"


# --- main -----------------------------------------------------------------------------------------------------


def run(backends: list[Backend], args: argparse.Namespace, tmp: Path, namespace: str) -> None:
    docs = tickets(args.docs, args.seed)
    master = postmaster(args.port)
    if master is None and any(backend.postgres for backend in backends):
        raise RuntimeError(f"no PostgreSQL server on port {args.port} among this machine's processes (its CPU)")
    for backend in backends:
        print(f"{backend.name} ...", flush=True)
        backend.results["loadavg"] = f"{os.getloadavg()[0]:.2f}"
        start(backend, tmp, args.postgresql_url, namespace)
        measure(backend, args, docs, master if backend.postgres else None)
        stop(backend)
        print(f"  {backend.name}: done", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20_000, help="ticket-like documents (default 20000)")
    parser.add_argument("--repeat", type=int, default=10, help="runs of each query, their median shown (default 10)")
    parser.add_argument("--ops", type=int, default=1000, help="calls of each kind for the CPU figures (default 1000)")
    parser.add_argument("--seed", type=int, default=16, help="of the documents (default 16)")
    parser.add_argument(
        "--postgresql-url",
        default=os.environ.get("FERRETDB_POSTGRESQL_URL", DEFAULT_PG_URL),
        help="for the PostgreSQL backend (default FERRETDB_POSTGRESQL_URL, else scripts/ensure-postgresql.sh's)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"which, in this order, comma-separated (default {','.join(BACKENDS)})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (FerretDB's logs)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.backends.split(",") if name.strip()]
    if args.docs < 10 or args.repeat < 1 or args.ops < 1 or not chosen or not set(chosen) <= BACKENDS.keys():
        parser.error(f"--docs must be >= 10, --repeat and --ops >= 1, --backends some of {', '.join(BACKENDS)}")
    args.port = urlsplit(args.postgresql_url).port or 5432
    backends = [Backend(*BACKENDS[name]) for name in chosen]
    namespace = f"tfbench_{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-store-backends-"))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a background job)
    print(f"namespace {namespace}; FerretDB {ferretdb_stamp()}; PostgreSQL {masked(args.postgresql_url)}", flush=True)
    try:
        run(backends, args, tmp, namespace)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        STOPPING.set()
        for thread in THREADS:
            thread.join(30)
        for backend in backends:
            stop(backend)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        done = [backend for backend in backends if "memory" in backend.results]
        if done:  # what was measured, also when a later backend failed or the run was stopped
            report(done, args)
    return 0 if all(ok for b in backends for _, ok in b.results.get("exact", {}).values()) else 1


def ferretdb_stamp() -> str:
    """Which build ran: the binary's path and time (scripts/ferretdb.patch changes while issue 16 is worked on)."""
    binary = ferretdb_binary()
    try:
        built = datetime.fromtimestamp(binary.resolve().stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return f"{binary} (missing)"
    return f"{binary} built {built}"


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
