"""Search at scale, run by hand: indexing N tickets, searching them under concurrent load, indexing lag.

    .venv/bin/python benchmarks/search_scale.py [--tickets 100000] [--threads 8] [--seconds 20]
        [--similar 300] [--lag-seconds 30] [--rate 20] [--opensearch-url http://127.0.0.1:9200] [--json PATH]

1. Indexing: N tickets written straight into a fresh engine (services/search/engine.py's Engine in a temporary
   directory, removed at the end; or, with --opensearch-url, a new index of that cluster, deleted at the end),
   committed every --batch tickets: the time, tickets per second, and the index's size on disk.
   The tickets are made from the labelled set tests/data/similar_tickets.jsonl (24 kinds as requesters write
   them): each takes a kind's subject, sentences of two or three of that kind's tickets, sometimes a detail
   (a floor, a laptop's asset tag, an error code), a thread of one or two messages, and for resolved ones a
   resolution; random teams, statuses, agents and requesters, numbers from 1 up.
2. Search under load: --threads threads search for --seconds, each query one of the mix people type (two or
   three words of a ticket, a "phrase" of three, a ticket number, a word with a typo), half of them as an admin,
   half as an agent of one team: p50, p99 and queries per second.
3. Similar: --similar questions "similar resolved tickets" about random tickets, one at a time, as an admin:
   p50 and p99 with the re-rank by meaning (services/search/semantic.py) and with the words alone
   (TICKETFLOW_SIMILAR_MODEL=off), each asked twice in turns, and what loading the embedding added to this
   process's memory (VmRSS).
4. Indexing lag: new tickets upserted at --rate per second by a writer that commits on the worker's cadence
   (services/search/handlers.COMMIT_INTERVAL), while another engine on the same index (an api process) lists
   the newest tickets again and again (one query a round, whatever the number waiting): the time from upsert to
   findable, p50, p99 and the longest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.meters import rss_mb  # noqa: E402
from services.search import semantic  # noqa: E402
from services.search.engine import Engine, Scope  # noqa: E402
from services.search.handlers import COMMIT_INTERVAL  # noqa: E402

SET = ROOT / "tests" / "data" / "similar_tickets.jsonl"
TEAMS = ("it", "network", "apps", "facilities", "hr", "finance")
STATUSES = ("new", "assigned", "in_progress", "waiting", "resolved", "closed")
DETAILS = (
    "It happens on floor {n}.",
    "My laptop is LT-{n:05d}.",
    "The message says error 0x{n:04x}.",
    "Since {day} morning.",
    "Room {n} in building {b}.",
    "Three colleagues in {team} have it too.",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
LOOK_LIMIT = 500  # the newest tickets the lag's reader lists each round (more than are ever waiting)
SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Tickets:
    """Tickets made from the labelled set's kinds and words, varied (seeded: the same run makes the same ones)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.kinds: dict[str, list[dict]] = defaultdict(list)
        for line in SET.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ticket = json.loads(line)
                self.kinds[ticket["kind"]].append(ticket)
        self.names = list(self.kinds)

    def make(self, number: int) -> dict:
        r = self.random
        group = self.kinds[r.choice(self.names)]
        base, *others = r.sample(group, k=min(3, len(group)))
        sentences = SENTENCE.split(base["description"])
        for other in others[: r.randint(1, 2)]:
            extra = SENTENCE.split(other["description"])
            sentences.insert(r.randint(0, len(sentences)), r.choice(extra))
        if r.random() < 0.6:
            detail = r.choice(DETAILS)
            sentences.append(
                detail.format(n=r.randint(1, 60000), b=r.choice("ABCDEF"), day=r.choice(DAYS), team=r.choice(TEAMS))
            )
        status = r.choice(STATUSES)
        team = r.choice(TEAMS)
        return {
            "ticket_id": f"t{number:07d}",
            "number": number,
            "subject": r.choice(group)["subject"],
            "description": " ".join(sentences),
            "messages": [m for m in r.choice(group)["messages"][: r.randint(0, 2)]],
            "resolution": r.choice(group)["resolution"] if status in ("resolved", "closed") else None,
            "status": status,
            "team": team,
            "requester_email": f"user{r.randint(1, 5000)}@example.com",
            "agent_id": f"agent-{team}-{r.randint(1, 8)}" if status != "new" else None,
            "created_at": "2026-11-27T09:30:00.000Z",
            "resolved_at": None,
        }

    def query(self, total: int) -> tuple[str, str]:
        """(kind of query, q) as people type them."""
        r = self.random
        words = [w for w in re.findall(r"[A-Za-z]+", r.choice(self.kinds[r.choice(self.names)])["description"])]
        long_words = [w for w in words if len(w) >= 6] or ["printer"]
        kind = r.choice(("words", "phrase", "number", "typo"))
        if kind == "words":
            return kind, " ".join(r.sample(long_words, k=min(len(long_words), r.randint(2, 3))))
        if kind == "phrase":
            start = r.randint(0, max(len(words) - 3, 0))
            return kind, '"' + " ".join(words[start : start + 3]) + '"'
        if kind == "number":
            return kind, f"#{r.randint(1, total)}" if r.random() < 0.5 else str(r.randint(1, total))
        word = r.choice(long_words)
        at = r.randint(1, len(word) - 2)
        return kind, word[:at] + word[at + 1] + word[at] + word[at + 2 :]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def index_tickets(engine, tickets: Tickets, count: int, batch: int) -> float:
    started = time.perf_counter()
    for number in range(1, count + 1):
        engine.upsert(tickets.make(number))
        if number % batch == 0:
            engine.commit()
    engine.commit()
    return time.perf_counter() - started


def search_load(engine, tickets: Tickets, total: int, threads: int, seconds: float) -> dict:
    """Latencies (ms) of every query the threads made in `seconds`, by kind of query."""
    queries = [tickets.query(total) for _ in range(20_000)]
    scopes = [Scope(everything=True)] + [Scope(teams=frozenset({t}), agent_id=f"agent-{t}-1") for t in TEAMS]
    latencies: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run(worker: int) -> None:
        r = random.Random(worker)
        mine: dict[str, list[float]] = defaultdict(list)
        while time.perf_counter() < deadline:
            kind, q = r.choice(queries)
            scope = scopes[0] if r.random() < 0.5 else r.choice(scopes[1:])
            started = time.perf_counter()
            engine.search(q, scope=scope, limit=20)
            mine[kind].append((time.perf_counter() - started) * 1000)
        with lock:
            for kind, values in mine.items():
                latencies[kind] += values

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    every = [v for values in latencies.values() for v in values]
    figures = {"queries": len(every), "qps": round(len(every) / seconds, 1)}
    figures |= {"p50_ms": round(percentile(every, 50), 2), "p99_ms": round(percentile(every, 99), 2)}
    figures["by_kind"] = {
        kind: {"p50_ms": round(percentile(v, 50), 2), "p99_ms": round(percentile(v, 99), 2)}
        for kind, v in sorted(latencies.items())
    }
    return figures


def similar_questions(engine, total: int, count: int, seed: int) -> dict:
    """Latencies (ms) of `count` similar questions with the words alone and with the meaning's re-rank, each
    setting asked twice in turns (off, on, off, on: neither has the caches warm alone), and what loading the
    embedding added to this process (VmRSS just before and after its first question)."""
    asked = random.Random(seed).sample(range(1, total + 1), min(count, total))
    ids = [hit["ticket_id"] for n in asked for hit in engine.search(f"#{n}", scope=Scope(everything=True), limit=1)[0]]
    if not ids:
        return {"questions": 0}
    took: dict[str, list[float]] = {"words": [], "words_and_meaning": []}
    figures: dict = {"questions": len(ids)}
    saved = os.environ.get(semantic.SWITCH)
    try:
        for label, switch in [("words", "off"), ("words_and_meaning", "on")] * 2:
            os.environ[semantic.SWITCH] = switch
            if switch == "on" and "embedding_rss_mb" not in figures:
                before = rss_mb(os.getpid())
                engine.similar(ids[0], scope=Scope(everything=True))  # loads the embedding
                figures["embedding_rss_mb"] = round(rss_mb(os.getpid()) - before, 1)
                figures["meaning_loaded"] = semantic.embedder() is not None  # False: "words_and_meaning" was not
            for ticket_id in ids:
                started = time.perf_counter()
                engine.similar(ticket_id, scope=Scope(everything=True))
                took[label].append((time.perf_counter() - started) * 1000)
    finally:
        if saved is None:
            os.environ.pop(semantic.SWITCH, None)
        else:
            os.environ[semantic.SWITCH] = saved
    for label, values in took.items():
        figures[label] = {"p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2)}
    return figures


def indexing_lag(writer, reader, tickets: Tickets, first: int, rate: float, seconds: float) -> dict:
    """Seconds from upsert to findable by `reader`, for tickets written at `rate` per second for `seconds`."""
    written: dict[int, float] = {}  # number -> when it was upserted, until found
    sent = [0]
    give_up = [float("inf")]
    lags: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def write() -> None:
        number, started = first, time.perf_counter()
        while time.perf_counter() - started < seconds:
            doc = tickets.make(number)
            with lock:
                writer.upsert(doc)
                written[number] = time.perf_counter()
                sent[0] += 1
            number += 1
            time.sleep(max(0.0, started + (number - first) / rate - time.perf_counter()))

    def commit() -> None:  # the worker's Timer
        while not stop.wait(COMMIT_INTERVAL):
            with lock:
                writer.commit()
        with lock:
            writer.commit()

    def look() -> None:  # the newest tickets, one query a round: each written one shows there once findable
        while not stop.is_set() or (written and time.perf_counter() < give_up[0]):
            items, _ = reader.search("", scope=Scope(everything=True), limit=LOOK_LIMIT)
            seen = time.perf_counter()
            for number in {item["number"] for item in items} & set(written):
                lags.append(seen - written.pop(number))
            time.sleep(0.005)

    threads = [threading.Thread(target=f) for f in (commit, look)]
    for thread in threads:
        thread.start()
    write()
    give_up[0] = time.perf_counter() + 60  # a ticket not found a minute after the last write: counted as lost
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "tickets": sent[0],
        "found": len(lags),
        "p50_s": round(percentile(lags, 50), 3),
        "p99_s": round(percentile(lags, 99), 3),
        "max_s": round(max(lags), 3) if lags else None,
        "commit_interval_s": COMMIT_INTERVAL,
    }


def directory_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(top, name)) for top, _, names in os.walk(path) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000, help="tickets between two commits while indexing")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="of search under load")
    parser.add_argument("--similar", type=int, default=300, help="similar questions (0: none)")
    parser.add_argument("--rate", type=float, default=20.0, help="tickets per second while measuring the lag")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--opensearch-url", help="measure an OpenSearch cluster's engine instead of the embedded one")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    tickets = Tickets(args.seed)
    directory = tempfile.mkdtemp(prefix="search-scale-")
    if args.opensearch_url:
        from services.search.opensearch import OpenSearchHome, connect

        home = OpenSearchHome(connect(args.opensearch_url), f"bench-{os.getpid()}")
        engine = home.open(home.new_generation())
        reader = home.open(engine.path)
    else:
        engine = Engine(os.path.join(directory, "index"))
        reader = Engine(engine.path)
    figures: dict = {"engine": "opensearch" if args.opensearch_url else "embedded", "tickets": args.tickets}
    try:
        seconds = index_tickets(engine, tickets, args.tickets, args.batch)
        if args.opensearch_url:
            stats = engine.client.indices.stats(index=engine.path)["_all"]["primaries"]["store"]["size_in_bytes"]
        else:
            engine.close()  # the merges under way end: the size is the index's, settled
            stats = directory_size(engine.path)
        figures["indexing"] = {
            "seconds": round(seconds, 1),
            "tickets_per_second": round(args.tickets / seconds),
            "index_mb": round(stats / 1e6, 1),
        }
        print(f"indexing: {figures['indexing']}", flush=True)
        figures["search"] = search_load(reader, tickets, args.tickets, args.threads, args.seconds)
        figures["search"]["threads"] = args.threads
        print(f"search under load: {figures['search']}", flush=True)
        if args.similar:
            figures["similar"] = similar_questions(reader, args.tickets, args.similar, args.seed)
            print(f"similar: {figures['similar']}", flush=True)
        figures["lag"] = indexing_lag(engine, reader, tickets, args.tickets + 1, args.rate, args.lag_seconds)
        print(f"indexing lag at {args.rate:g}/s: {figures['lag']}", flush=True)
    finally:
        engine.close()
        shutil.rmtree(directory, ignore_errors=True)
        if args.opensearch_url:
            home.client.indices.delete(index=engine.path)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
