"""How good "similar resolved tickets" is: precision at 5 on the labelled set tests/data/similar_tickets.jsonl.

    .venv/bin/python benchmarks/similar_quality.py [--part whole|tune|test|all] [--misses 8] [--json PATH]

Each ticket of the set (tests/data/README.md: 360 tickets of 24 kinds, written as requesters write) goes into a
fresh search engine (services/search/engine.py, in a temporary directory removed at the end) as the worker would
index it: subject, description, the thread's messages, the resolution, resolved or closed. Then, for every
ticket, `similar(ticket_id, limit=5)` with an admin's scope; a result counts when it is of the same kind as the
ticket asked about. A ticket's precision at 5 is the results of its kind over 5 (fewer than 5 results count as
misses); the figure is the mean over the tickets asked about. The engine must never return the ticket itself.

Parts, so that a change of the engine tuned on some tickets is not reported on the same ones: each kind's
tickets, in order of id, are dealt alternately into two halves, `tune` and `test`. A part is indexed and asked
on its own (its tickets only, 8 or 7 of each kind: at least 6 others to find, more than 5). Tune on `tune`,
report `test` and `whole` beside it. `--part all` (the default) runs the three; the kinds, the kinds most often
offered in place of another and the worst-answered tickets are shown for the last.

The engine re-ranks its lexical candidates by meaning (services/search/semantic.py) unless
TICKETFLOW_SIMILAR_MODEL=off: the first line printed says which.

`--engine MODULE` names another module with the same Engine and Scope (an experiment beside the real one).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SET = ROOT / "tests" / "data" / "similar_tickets.jsonl"
K = 5
PARTS = ("tune", "test", "whole")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(tickets: list[dict]) -> dict[str, list[dict]]:
    """The three parts: each kind's tickets in id order, dealt alternately into `tune` and `test`."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for ticket in sorted(tickets, key=lambda t: t["id"]):
        by_kind[ticket["kind"]].append(ticket)
    parts: dict[str, list[dict]] = {"tune": [], "test": [], "whole": list(tickets)}
    for group in by_kind.values():
        parts["tune"] += group[0::2]
        parts["test"] += group[1::2]
    return parts


def document(ticket: dict) -> dict:
    """The engine's document for a ticket of the set: no team (it would tell the kind), one requester each."""
    number = int(ticket["id"].lstrip("s"))
    created = START + timedelta(hours=7 * number)
    return {
        "ticket_id": ticket["id"],
        "number": number,
        "subject": ticket["subject"],
        "description": ticket["description"],
        "messages": list(ticket["messages"]),
        "resolution": ticket["resolution"],
        "status": ticket["status"],
        "team": None,
        "requester_email": f"requester{number}@example.com",
        "agent_id": None,
        "created_at": created.isoformat(),
        "resolved_at": (created + timedelta(hours=20)).isoformat(),
    }


def measure(module, tickets: list[dict], directory: Path) -> dict:
    """Index the tickets in a fresh engine, ask each one's similar tickets, count those of its kind."""
    engine = module.Engine(str(directory))
    for ticket in tickets:
        engine.upsert(document(ticket))
    engine.commit()
    scope = module.Scope(everything=True, teams=frozenset(), agent_id=None, requester_email=None)
    kind_of = {ticket["id"]: ticket["kind"] for ticket in tickets}
    asked, seconds = [], []
    for ticket in tickets:
        began = time.perf_counter()
        found = engine.similar(ticket["id"], scope=scope, limit=K)
        seconds.append(time.perf_counter() - began)
        ids = [item["ticket_id"] for item in found]
        if ticket["id"] in ids or len(ids) > K:
            raise SystemExit(f"{ticket['id']}: the engine returned the ticket itself or more than {K}: {ids}")
        hits = sum(kind_of.get(other) == ticket["kind"] for other in ids)
        asked.append({"ticket": ticket, "found": ids, "hits": hits})
    per_kind: dict[str, list[float]] = defaultdict(list)
    for row in asked:
        per_kind[row["ticket"]["kind"]].append(row["hits"] / K)
    return {
        "tickets": len(tickets),
        "precision_at_5": statistics.fmean(row["hits"] / K for row in asked),
        "first_result_right": statistics.fmean(
            bool(row["found"]) and kind_of[row["found"][0]] == row["ticket"]["kind"] for row in asked
        ),
        # what an agent sees: the results shown (the engine leaves out those far in meaning), and how many are right
        "shown_per_ticket": statistics.fmean(len(row["found"]) for row in asked),
        "precision_of_shown": sum(row["hits"] for row in asked) / max(1, sum(len(row["found"]) for row in asked)),
        "per_kind": {kind: statistics.fmean(values) for kind, values in sorted(per_kind.items())},
        "ms_per_similar": 1000 * statistics.fmean(seconds),
        "rows": asked,
        "kind_of": kind_of,
        "subject_of": {ticket["id"]: ticket["subject"] for ticket in tickets},
    }


def misses(result: dict, count: int) -> list[dict]:
    """The worst-answered tickets (fewest results of their kind), with what came instead."""
    rows = sorted(result["rows"], key=lambda row: (row["hits"], row["ticket"]["id"]))[:count]
    return [
        {
            "id": row["ticket"]["id"],
            "kind": row["ticket"]["kind"],
            "subject": row["ticket"]["subject"],
            "hits": row["hits"],
            "found": [
                {"id": other, "kind": result["kind_of"][other], "subject": result["subject_of"][other]}
                for other in row["found"]
            ],
        }
        for row in rows
    ]


def confused(result: dict, count: int = 8) -> list[dict]:
    """The kinds most often offered in place of another: where the set's kinds are close, or the engine is weak."""
    pairs = Counter(
        (row["ticket"]["kind"], result["kind_of"][other])
        for row in result["rows"]
        for other in row["found"]
        if result["kind_of"][other] != row["ticket"]["kind"]
    )
    return [{"asked": asked, "offered": offered, "results": n} for (asked, offered), n in pairs.most_common(count)]


def report(results: dict[str, dict], last: str, args) -> None:
    for part, result in results.items():
        print(f"{part:>5}: P@5 {result['precision_at_5']:.3f}  first result right {result['first_result_right']:.3f}"
              f"  shown {result['shown_per_ticket']:.2f} a ticket, {result['precision_of_shown']:.3f} of them right"
              f"  ({result['tickets']} tickets, {result['ms_per_similar']:.1f} ms a similar)")  # fmt: skip
    per_kind = results[last]["per_kind"]
    print(f"\nper kind ({last}), worst first:")
    for kind, value in sorted(per_kind.items(), key=lambda item: (item[1], item[0])):
        print(f"  {value:.3f}  {kind}")
    print(f"\nkinds offered in place of another ({last}), results:")
    for pair in confused(results[last]):
        print(f"  {pair['results']:>3}  {pair['asked']} -> {pair['offered']}")
    print(f"\nmisses ({last}):")
    for miss in misses(results[last], args.misses):
        print(f"  {miss['id']} [{miss['kind']}] {miss['subject']!r}: {miss['hits']} of {K}")
        for other in miss["found"]:
            mark = "+" if other["kind"] == miss["kind"] else "-"
            print(f"      {mark} {other['id']} [{other['kind']}] {other['subject']!r}")


def as_json(results: dict[str, dict], last: str, args) -> dict:
    keep = (
        "tickets",
        "precision_at_5",
        "first_result_right",
        "shown_per_ticket",
        "precision_of_shown",
        "per_kind",
        "ms_per_similar",
    )
    return {
        "set": str(SET.relative_to(ROOT)),
        "engine": args.engine,
        "meaning": meaning(),
        "k": K,
        "parts": {part: {key: result[key] for key in keep} for part, result in results.items()},
        "confused": confused(results[last]),
        "misses": misses(results[last], args.misses),
    }


def meaning() -> str:
    """Whether services/search/semantic.py re-ranks here (what services/search/engine.py's similar does; an
    --engine of another module may use it or not)."""
    from services.search import semantic

    if semantic.embedder() is not None:
        return f"on ({semantic.CONFIG}, the first {semantic.DEPTH} re-ranked)"
    return f"off ({semantic.SWITCH}={os.environ.get(semantic.SWITCH, '')!r} or its packages missing): the words alone"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all", help="which tickets (default all three)")
    parser.add_argument("--misses", type=int, default=8, help="worst-answered tickets shown (default 8)")
    parser.add_argument("--engine", default="services.search.engine", help="module with Engine and Scope")
    parser.add_argument("--set", type=Path, default=SET, help="the labelled set (default tests/data/...)")
    parser.add_argument("--json", type=Path, help="write the figures there")
    args = parser.parse_args()
    if args.misses < 0:
        parser.error("--misses must be >= 0")
    try:
        module = importlib.import_module(args.engine)
    except ImportError as error:
        parser.error(f"--engine {args.engine}: {error}")
    parts = split(load(args.set))
    chosen = PARTS if args.part == "all" else (args.part,)
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-similar-"))
    try:
        results = {part: measure(module, parts[part], tmp / part) for part in chosen}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(as_json(results, chosen[-1], args), indent=1) + "\n")
    print(f"re-ranked by meaning: {meaning()}")
    report(results, chosen[-1], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
