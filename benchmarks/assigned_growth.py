"""created -> assigned inside assignment, on an empty store and on a grown one, without the system around it.

    .venv/bin/python benchmarks/assigned_growth.py [--open 4000] [--total 20000] [--tickets 40] [--reconcile]
        [--json PATH]

The growth benchmark (benchmarks/growth.py) needs ten minutes to grow a desk; this one seeds assignment's
own database directly and times what its worker does with one `ticket.created`: handlers.on_created
(route, insert, choose, reserve the agent's slot, save with ticket.assigned), the consumer's
processed-event record, then the outbox clear that the flusher makes after publishing (here in the same
thread, with no broker: publishing is no store work). Every store command is counted and timed by a pymongo
listener and attributed to its call site (the innermost function of the project's code that sent it).

The desk is growth_seed's: six teams routing their own topic, three agents of capacity 1000 each and an
unavailable lead. The grown store gets --total tickets copied from a few driven through the handlers
(created, assigned, most resolved and closed), --open of them still open and assigned, spread over the
agents, and counted in their agents' loads as growth_seed does. Then --tickets new tickets to
`network`, one after another; p50 and p90 of the handling, and the store calls per ticket by call site.
Also timed once per size: the worker's timers that read the store (the reconciler, the outbox sweep);
--reconcile measures the handling again with the reconciler running back to back beside it.

Uses MONGO_URL when set; otherwise starts its own FerretDB (built by `make tools`) in a temporary
directory. Each size lives under its own namespace `tfbench_<hex>`, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import MongoClient, monitoring  # noqa: E402

from benchmarks import growth_seed as seed  # noqa: E402
from services.assignment import handlers  # noqa: E402
from services.assignment.timers import Reconciler  # noqa: E402
from shared import events, outbox  # noqa: E402
from shared.auth import Principal  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.relay import OutboxRelay  # noqa: E402
from ticketflow.local import store_for_benchmark  # noqa: E402

TEAMS = ("network", "hardware", "software", "access", "email", "printing")
AGENTS_PER_TEAM = 3
SOURCES_PER_TEAM = 6  # tickets driven through the handlers per team, the copies' models
ADMIN = Principal("bench", "admin")


class Calls(monitoring.CommandListener):
    """Every store command of the counting thread while `on`: (call site, command) -> [count, seconds]."""

    def __init__(self) -> None:
        self.on, self.lock, self.sites, self.stats, self.thread = False, threading.Lock(), {}, {}, None

    def started(self, event) -> None:
        if self.on and threading.get_ident() == self.thread:
            self.sites[(event.connection_id, event.request_id)] = (_call_site(), event.command_name)

    def succeeded(self, event) -> None:
        self._done(event)

    def failed(self, event) -> None:
        self._done(event)

    def _done(self, event) -> None:
        key = self.sites.pop((event.connection_id, event.request_id), None)
        if key is not None:
            with self.lock:
                entry = self.stats.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += event.duration_micros / 1e6

    @contextmanager
    def counting(self):
        self.stats, self.on, self.thread = {}, True, threading.get_ident()
        try:
            yield self.stats
        finally:
            self.on = False


def _call_site() -> str:
    """The innermost frame of the project's code (not pymongo's, not this file's), with its caller's name."""
    frames = [f for f in traceback.extract_stack() if "/services/" in f.filename or "/shared/" in f.filename]
    if not frames:
        return "?"
    inner = frames[-1]
    caller = f" <- {frames[-2].name}" if len(frames) > 1 else ""
    return f"{Path(inner.filename).parent.name}/{Path(inner.filename).name}:{inner.lineno} {inner.name}{caller}"


class SyncFlusher:
    """The flusher's store work, in the caller's thread: the outbox clear it makes once the events are out."""

    def submit(self, collection, doc_id, staged: dict, version: int | None) -> None:
        if staged:
            outbox.clear(collection, doc_id, list(staged), version)

    def drain(self, timeout: float = 0.0) -> None:
        pass


def service(mongo_url: str, namespace: str) -> handlers.Assignment:
    settings = load_settings({"MONGO_URL": mongo_url, "TICKETFLOW_NAMESPACE": namespace})
    svc = handlers.bootstrap(settings)
    svc.flusher = svc.agents.flusher = svc.tickets.flusher = SyncFlusher()
    svc.ensure_storage()
    for team in TEAMS:
        handlers.create_team(svc, {"id": team, "name": team.title(), "topics": [team]})
        lead = {"id": f"{team}-lead", "name": f"Lead of {team}", "email": f"{team}-lead@example.com",
                "teams": [team], "capacity": 1, "available": False, "lead": True}  # fmt: skip
        handlers.create_agent(svc, lead)
        for k in range(AGENTS_PER_TEAM):
            agent = {"id": f"{team}-agent{k}", "name": f"Agent {k} of {team}", "email": f"{team}-agent{k}@example.com",
                     "teams": [team], "capacity": 1000, "available": True}  # fmt: skip
            handlers.create_agent(svc, agent)
    return svc


def created(topic: str, number: int) -> dict:
    data = {
        "number": number,
        "subject": f"{topic.title()}: something is wrong",
        "description": "It stopped working. " * 5,
        "requester": {"name": "Ana Ruiz", "email": "ana.ruiz@example.com"},
        "topic": topic,
        "priority": "normal",
        "source": "web",
    }
    return events.make_event("ticket.created", uuid.uuid4().hex, data, producer="intake", correlation_id="bench")


def handle(svc: handlers.Assignment, envelope: dict) -> None:
    """As the consumer does: the handler (idempotent), then the processed-event record."""
    handlers.on_created(svc, envelope)
    svc.processed.mark(envelope["event_id"])


def grow(svc: handlers.Assignment, open_count: int, total: int) -> None:
    """`total` tickets copied from a few driven ones, `open_count` of them open; the agents count theirs."""
    if not total:
        return
    closed_models, open_models = [], []
    for team in TEAMS:
        for k in range(SOURCES_PER_TEAM):
            envelope = created(team, 900_000 + len(closed_models) + len(open_models))
            handle(svc, envelope)
            tid = envelope["ticket_id"]
            if k % 3:  # two in three closed, after a reply and a resolve
                handlers.reply(svc, tid, "Could you try again now?", "in_progress", ADMIN, None)
                handlers.resolve(svc, tid, "Replaced the cable.", ADMIN, None)
                closed = events.make_event("ticket.closed", tid, {"by": "requester"}, producer="intake")
                handlers.on_closed(svc, closed)
                closed_models.append(tid)
            else:
                open_models.append(tid)
    docs = {doc["_id"]: doc for doc in svc.tickets.collection.find({}, outbox.NO_OUTBOX)}
    batch, open_by_agent = [], {}
    for i in range(total):
        model = docs[open_models[i % len(open_models)] if i < open_count else closed_models[i % len(closed_models)]]
        copy = {**model, "_id": uuid.uuid4().hex, "number": 1 + i}
        batch.append(copy)
        if i < open_count:
            open_by_agent.setdefault(copy["agent_id"], []).append(copy["_id"])
        if len(batch) == 1000:
            svc.tickets.collection.insert_many(batch, ordered=False)
            batch = []
    if batch:
        svc.tickets.collection.insert_many(batch, ordered=False)
    seed.count_open(svc.agents, open_by_agent)


def reconciling(svc: handlers.Assignment, stop: threading.Event) -> threading.Thread:
    """The worst case of the worker's reconcile timer: one run after another (its own store connection)."""
    mirror = handlers.bootstrap(svc.settings)

    def loop() -> None:
        reconciler = Reconciler(mirror)
        while not stop.is_set():
            reconciler.run()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def measure(svc: handlers.Assignment, calls: Calls, tickets: int, reconcile: bool = False) -> dict:
    handle(svc, created("network", 800_000))  # warm-up: connections, caches
    times, stop = [], threading.Event()
    background = reconciling(svc, stop) if reconcile else None
    envelopes = [created("network", 800_001 + k) for k in range(tickets)]
    with calls.counting() as stats:
        for envelope in envelopes:
            started = time.perf_counter()
            handle(svc, envelope)
            times.append(time.perf_counter() - started)
    stop.set()
    if background is not None:
        background.join()
    assert all(svc.tickets.get(e["ticket_id"]).agent_id for e in envelopes), "a ticket was not assigned"
    per_site = {
        f"{site} {command}": {"calls": count / tickets, "ms": 1000 * seconds / tickets}
        for (site, command), (count, seconds) in sorted(stats.items(), key=lambda item: -item[1][1])
    }
    timers = {}
    reconciler = Reconciler(svc)
    relay = OutboxRelay(svc.settings, handlers.SERVICE, svc.pending, [svc.tickets.collection, svc.agents.collection])
    relay.ensure_indexes()  # as the worker's outbox_timers does
    try:
        for name, run in (("reconcile", reconciler.run), ("outbox sweep", relay.sweep)):
            started = time.perf_counter()
            run()
            timers[name] = 1000 * (time.perf_counter() - started)
    finally:
        relay.close()
    ms = sorted(1000 * t for t in times)
    return {
        "p50_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "calls_per_ticket": sum(site["calls"] for site in per_site.values()),
        "sites": per_site,
        "timers_ms": timers,
    }


def report(name: str, result: dict) -> None:
    print(
        f"{name}: handling p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
        f"{result['calls_per_ticket']:.1f} store calls per ticket"
    )
    for site, entry in result["sites"].items():
        print(f"  {site:<96} {entry['calls']:5.2f}/ticket {entry['ms']:7.2f} ms/ticket")
    print("  timers, one run: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result["timers_ms"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=4000, help="open tickets of the grown store (4000)")
    parser.add_argument("--total", type=int, default=20000, help="tickets of the grown store (20000)")
    parser.add_argument("--tickets", type=int, default=40, help="ticket.created handled and timed per size (40)")
    parser.add_argument(
        "--reconcile", action="store_true", help="also measure with the reconciler running without pause beside"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    calls = Calls()
    monitoring.register(calls)
    with tempfile.TemporaryDirectory(prefix="tfbench-") as tmp:
        mongo_url, ferret = store_for_benchmark(Path(tmp))
        results, namespaces = {}, []
        try:
            for name, open_count, total in (("empty", 0, 0), ("grown", args.open, args.total)):
                namespaces.append(f"tfbench_{secrets.token_hex(4)}")
                svc = service(mongo_url, namespaces[-1])
                started = time.monotonic()
                grow(svc, open_count, total)
                print(f"{name}: {total} tickets, {open_count} open, seeded in {time.monotonic() - started:.0f} s")
                results[name] = measure(svc, calls, args.tickets)
                report(name, results[name])
                if args.reconcile:
                    results[f"{name}, reconciling"] = measure(svc, calls, args.tickets, reconcile=True)
                    report(f"{name}, reconciling", results[f"{name}, reconciling"])
        finally:
            client = MongoClient(mongo_url)
            for ns in namespaces:
                client.drop_database(f"{ns}_{handlers.SERVICE}")
            client.close()
            if ferret is not None:
                ferret.terminate()
                ferret.wait(30)
    grown, empty = results["grown"], results["empty"]
    print(f"grown / empty at p50: x{grown['p50_ms'] / empty['p50_ms']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
