"""FerretDB's CPU per call, for each kind of call intake's POST /tickets makes, each kind alone in a loop.

    .venv/bin/python benchmarks/intake_store_calls.py [--calls 400]

Starts its own FerretDB (built by `make tools`) in a temporary directory, and prints, per call, FerretDB's
CPU (utime + stime from /proc), this client's CPU and the wall time. The documents are shaped like intake's:
a ticket with its outbox, in a collection with intake's six indexes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import ASCENDING, DESCENDING, MongoClient, UpdateOne  # noqa: E402

from benchmarks.meters import cpu_seconds  # noqa: E402
from ticketflow.local import free_port, start_ferretdb  # noqa: E402

INDEXES = [
    [("number", DESCENDING)],
    [("requester.email", ASCENDING), ("number", DESCENDING)],
    [("status", ASCENDING), ("number", DESCENDING)],
    [("topic", ASCENDING), ("number", DESCENDING)],
    [("status", ASCENDING), ("resolved_at", ASCENDING)],
    [("_outbox_due", ASCENDING)],
]
EMPTIED = {"$unset": {"_outbox": "", "_outbox_n": "", "_outbox_due": ""}}


def ticket(i: int, with_outbox: bool = True) -> dict:
    at = datetime.now(UTC)
    doc = {
        "_id": uuid.uuid4().hex, "number": 100001 + i, "subject": f"Printer on floor 3 will not print ({i})",
        "description": "It shows 'offline' although it is on the network. " * 4,
        "requester": {"name": "Ana Ruiz", "email": f"ana{i % 500}@example.com"}, "topic": "hardware",
        "priority": "normal", "source": "web", "status": "new", "assignee": None, "team": None,
        "sla": {"first_response_due_at": None, "resolution_due_at": None, "breached": False}, "thread": [],
        "created_at": at, "updated_at": at, "resolved_at": None, "closed_at": None, "watermarks": {}, "thread_count": 0,
    }  # fmt: skip
    if with_outbox:
        entry = {"type": "ticket.created", "body": json.dumps(doc, default=str), "at": at.isoformat(), "seq": 0}
        due = at + timedelta(seconds=30)
        doc |= {"_v": 1, "_outbox": {str(uuid.uuid4()): entry}, "_outbox_n": 1, "_outbox_due": due}
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    n = parser.parse_args().calls
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-calls-"))
    port = free_port()
    server = start_ferretdb(tmp / "ferretdb", port, tmp / "ferretdb.log")
    client = MongoClient(f"mongodb://127.0.0.1:{port}", tz_aware=True)
    db = client["calls"]

    def measure(name: str, call: Callable[[int], object]) -> None:
        server_cpu, own_cpu, wall = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        for i in range(n):
            call(i)
        server_ms = 1000 * (cpu_seconds(server.pid) - server_cpu) / n
        own_ms, wall_ms = 1000 * (time.process_time() - own_cpu) / n, 1000 * (time.perf_counter() - wall) / n
        print(f"  {name:<66} FerretDB {server_ms:5.2f} ms  client {own_ms:5.2f} ms  wall {wall_ms:6.2f} ms", flush=True)

    try:
        db.counters.insert_one({"_id": "ticket_number", "value": 0})
        db.rate_limits.create_index([("expires_at", ASCENDING)])
        for spec in INDEXES:
            db.tickets.create_index(spec, unique=spec == INDEXES[0])
        ends = datetime.now(UTC) + timedelta(hours=1)
        inserted: list[str] = []
        print(f"per call, {n} calls of each kind:")
        measure("findAndModify $inc: the number counter", lambda i: db.counters.find_one_and_update(
            {"_id": "ticket_number"}, {"$inc": {"value": 1}}, return_document=True))  # fmt: skip
        measure("findAndModify upsert $inc: a rate-limit window (new, then 1 in 2)", lambda i: (
            db.rate_limits.find_one_and_update({"_id": f"k{i // 2}"}, {"$inc": {"count": 1}, "$setOnInsert": {
                "expires_at": ends}}, upsert=True, return_document=True)))  # fmt: skip
        measure("insert: bare (no index, no outbox)", lambda i: db.bare.insert_one(ticket(i, with_outbox=False)))
        measure("insert: a ticket with its outbox (six indexes)", lambda i: (
            inserted.append((doc := ticket(i))["_id"]), db.tickets.insert_one(doc)))  # fmt: skip
        measure("update: the outbox clear", lambda i: db.tickets.update_one(
            {"_id": inserted[i], "_v": 1, "_outbox_n": 1}, EMPTIED))  # fmt: skip
        for i in range(n):
            db.tickets.insert_one(doc := ticket(n + i))
            inserted.append(doc["_id"])
        measure(
            "update: the outbox clears, ten in one bulk write",
            lambda i: (
                i % 10 == 9
                and db.tickets.bulk_write(
                    [UpdateOne({"_id": inserted[n + j], "_v": 1, "_outbox_n": 1}, EMPTIED) for j in range(i - 9, i + 1)]
                )
            ),
        )
        measure("find_one by _id", lambda i: db.tickets.find_one({"_id": inserted[i]}, {"_id": 1}))
    finally:
        client.close()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
