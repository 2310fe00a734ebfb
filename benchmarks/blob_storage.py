"""Attachments' bytes on FerretDB: intake's BlobStore (chunks by _id) against pymongo's gridfs (GridFSBucket).

    .venv/bin/python benchmarks/blob_storage.py [--sizes 5,10] [--runs 5] [--others 20] [--keep]

Starts its own FerretDB (.tools/bin/ferretdb, data in a temporary directory) unless MONGO_URL is set; each
way stores into a database of its own (`tfbench_<hex>_chunks`, `..._gridfs`), dropped at the end.

For each way and each size (MiB of random bytes): `--runs` writes of a new blob, then `--runs` reads of it,
each timed (wall, the CPU of this process and of FerretDB from /proc). Then `--others` more blobs of 5 MiB
go into each store (other tickets' files) and the reads are timed again: what a read costs once the store
holds more than the one file. Prints one table (medians).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gridfs  # noqa: E402 - pymongo's
from pymongo import MongoClient  # noqa: E402

from services.intake.store import BlobStore  # noqa: E402
from ticketflow.local import free_port, start_ferretdb  # noqa: E402

MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 for none."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Chunks:
    name = "chunks (BlobStore)"

    def __init__(self, db) -> None:
        self.store = BlobStore(db)
        self.store.ensure_indexes()

    def put(self, blob_id: str, data: bytes) -> None:
        self.store.put(blob_id, data, {"benchmark": True})

    def read(self, blob_id: str) -> bytes:
        return self.store.read(blob_id)


class GridFs:
    name = "gridfs (GridFSBucket)"

    def __init__(self, db) -> None:
        self.bucket = gridfs.GridFSBucket(db)

    def put(self, blob_id: str, data: bytes) -> None:
        self.bucket.upload_from_stream_with_id(blob_id, blob_id, data, metadata={"benchmark": True})

    def read(self, blob_id: str) -> bytes:
        return self.bucket.open_download_stream(blob_id).read()


def timed(action: Callable[[], object], ferretdb: int | None) -> tuple[float, float, float]:
    """(wall ms, this process's CPU ms, FerretDB's CPU ms) of one call."""
    wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(ferretdb)
    action()
    return (
        (time.perf_counter() - wall) * 1000,
        (time.process_time() - cpu) * 1000,
        (cpu_seconds(ferretdb) - server) * 1000,
    )


def medians(samples: list[tuple[float, float, float]]) -> str:
    wall, cpu, server = (statistics.median(column) for column in zip(*samples, strict=True))
    return f"{wall:8.0f} | {cpu:8.0f} | {server:8.0f}"


def measure(way, sizes: list[int], runs: int, others: int, ferretdb: int | None) -> list[str]:
    rows = []
    stored = {}
    for size in sizes:
        data = os.urandom(size * MIB)
        writes, reads = [], []
        for run in range(runs):
            blob_id = f"b{size}-{run}"
            writes.append(timed(lambda b=blob_id, d=data: way.put(b, d), ferretdb))
        for run in range(runs):
            blob_id = f"b{size}-{run}"
            reads.append(timed(lambda b=blob_id, d=data: assert_same(way.read(b), d), ferretdb))
        stored[size] = data
        rows.append(f"| {way.name} | write {size} MiB | {medians(writes)} |")
        rows.append(f"| {way.name} | read {size} MiB | {medians(reads)} |")
    if others:
        filler = os.urandom(5 * MIB)
        for n in range(others):
            way.put(f"other-{n}", filler)
        for size, data in stored.items():
            reads = [
                timed(lambda r=run, s=size, d=data: assert_same(way.read(f"b{s}-{r}"), d), ferretdb)
                for run in range(runs)
            ]
            rows.append(f"| {way.name} | read {size} MiB, {others} x 5 MiB more stored | {medians(reads)} |")
    return rows


def assert_same(got: bytes, want: bytes) -> None:
    if got != want:
        raise AssertionError("read back other bytes than were written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,10", help="MiB, comma-separated (default 5,10)")
    parser.add_argument("--runs", type=int, default=5, help="writes and reads per size (default 5)")
    parser.add_argument("--others", type=int, default=20, help="5 MiB blobs added before reading again (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (FerretDB's log)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-blob-bench-"))
    namespace = f"tfbench_{secrets.token_hex(4)}"
    server, url = None, os.environ.get("MONGO_URL")
    if not url:
        port = free_port()
        server = start_ferretdb(tmp / "ferretdb", port, tmp / "ferretdb.log")
        url = f"mongodb://127.0.0.1:{port}"
    client = MongoClient(url)
    rows = []
    try:
        for kind, way in (("chunks", Chunks), ("gridfs", GridFs)):
            rows += measure(way(client[f"{namespace}_{kind}"]), sizes, args.runs, args.others, server and server.pid)
    finally:
        for kind in ("chunks", "gridfs"):
            client.drop_database(f"{namespace}_{kind}")
        client.close()
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]
    print(f"\nmedians of {args.runs} runs; load average {load}; {'FerretDB' if server else url}\n")
    print("| way | what | wall ms | client CPU ms | FerretDB CPU ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
