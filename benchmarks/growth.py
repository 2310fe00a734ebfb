"""Growth: every list read of every service, and created -> assigned, on an empty desk and after 20,000 tickets.

    .venv/bin/python benchmarks/growth.py [--tickets 20000] [--sources 300] [--calls 10] [--min-calls 3]
        [--read-budget 30] [--months 6] [--json PATH]

Uses MONGO_URL / AMQP_URL when set; otherwise starts its own FerretDB (built by `make tools`, data in a
temporary directory) and uses the local RabbitMQ. Everything lives under a fresh namespace
`tfbench_<hex>` with a generated JWT secret and is removed at the end, also on Ctrl-C (benchmarks/e2e.py's
processes, SMTP sink and clean-up). The five apis and one worker of each service run as in
benchmarks/e2e.py; notify's emails go to the sink.

1. empty: six teams (each routing its topic; `general` takes the rest and has no agents), three agents of
   each and an unavailable lead, the `low` SLA policy in seconds (so that breaches happen); then a handful
   of tickets, each through a story (below), three of them from one requester, whose closed ticket is the
   one the per-ticket reads read. Then every read (the table's rows), then created -> assigned.
2. grown: --sources tickets (300) driven through the running system, each through a story drawn from the
   mix: closed after replies, a requester message and a resolve (62%), the same with a reopen between
   (8%), resolved (8%), waiting on the requester (7%), in progress with a note (8%), assigned with a note
   (4%), unassigned in `general` (3%); priorities normal, high, low, emergency at 60/15/20/5%; requesters
   from 100 addresses. On this small desk, the same reads and created -> assigned again ("small": its lists
   fill their pages as the grown desk's do, so that a page of 50 is compared with a page of 50, where the
   empty desk's pages hold 3 to 7 items). Then their documents are copied, as benchmarks/growth_seed.py
   explains (why and how), into --tickets minus --sources more tickets: requesters from a pool of 1,200
   addresses with a skew and one frequent requester with a fiftieth of them, dates spread back over --months
   (closed ones). Once sla's worker has gathered /stats's figures per day past the last copy (a pass begun
   at least 5 s after it: a desk that grew over months has them; growth_seed.stats_gathered), the same reads again, with
   the same tokens and parameters, then created -> assigned with new tickets.

Each read is timed through the public HTTP API, a new connection per call as a client makes it: --calls
rounds (10) over every read in turn after one untimed warm-up round, p50 and p90 in ms. A read stops once it
has --min-calls calls (3) and has spent --read-budget seconds (30), and a warm-up call over 1 s counts as a
call (the row says how many it had): at 20,000 tickets a read that scans every document takes tens of
seconds, and its verdict is plain after one; the apis run with gunicorn's timeout at 600 s so that such a
read is timed, not killed at 30 s. Tokens: admin; an agent of the `network` team (lists scoped to its team
and its own tickets); the portal server's; a requester-scoped portal token (intake's lists, the timeline,
sla's clocks). A row passes when its grown p50 is within 1.5x of its empty p50 and under 50 ms (issue 16);
a second verdict compares it with the small desk's p50 the same way.
Interrupted (Ctrl-C, SIGTERM), it prints and writes what it has measured so far, then cleans up.

created -> assigned: 20 tickets one after another to `network`: POST, then assignment's GET /tickets/{id}
polled until it has an agent; the figure is the two events' occurred_at on intake's timeline
(ticket.assigned - ticket.created), median and p90; "seen" is POST sent -> assignment shows the agent.

Left out: POST /policies/{priority}/what-if (a replay over every clock in the window, a command that grows
with the tickets by design; benchmarks/sla_whatif.py measures it); GET /tickets/{id}/attachments/{aid}
and /metrics, /openapi.json (not lists); search (port 8005, not built); the portal's own pages (they are
these reads, made by the portal: its console's queues are the `queue` rows with limit=200 and the fields its
rows show (`fields=`; the same page of whole tickets, notes and history included, is a row of its own), check status is
`tickets requester+number`, the health page `notifications status=dead`). Mail in is not driven, so
GET /mail and a ticket's mail list read empty collections in both phases.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import growth_seed as seed  # noqa: E402
from benchmarks.e2e import Processes, call, cleanup, ok, percentile, start_sink, wait_consumers, wait_healthy  # noqa: E402
from services.portal.console import QUEUE_FIELDS  # noqa: E402  (the console's queue rows)
from shared.config import SERVICE_PORTS  # noqa: E402
from ticketflow.cli import api_command, worker_command  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, store_for_benchmark  # noqa: E402

BOUND_RATIO, BOUND_MS = 1.5, 50.0  # issue 16: within 1.5x of the empty system and under 50 ms at p50
LATENCY_TICKETS = 20
WARM_UP_COUNTS = 1.0  # seconds
REQUESTER = "ana.ruiz@example.com"  # the requester whose few tickets are read in both phases
AGENT = "network-agent0"


@dataclass
class Read:
    name: str
    service: str
    path: str
    token: str  # admin, agent, portal or requester
    ms: dict[str, list[float]] = field(default_factory=dict)  # phase -> each call's time
    errors: dict[str, str] = field(default_factory=dict)  # phase -> the first non-200 answer


def reads(ref: str, number: int, notification: str, frequent: str, clocked: list[str] = ()) -> list[Read]:
    """Every list read of the contract with its common filters, and the per-ticket reads a ticket page makes.
    `clocked`: the tickets whose clocks the console's queue asks sla for, 50 at a time (padded to 50 with ids sla
    does not know: a look-up each all the same)."""
    week = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fifty = (list(clocked) + [f"{n:032x}" for n in range(50)])[:50]
    clocks_of = "/tickets?" + "&".join(f"ticket_id={ticket_id}" for ticket_id in fifty)
    rows = [
        ("tickets", "intake", "/tickets", "admin"),
        ("tickets status=assigned", "intake", "/tickets?status=assigned&limit=50", "admin"),
        ("tickets status=closed", "intake", "/tickets?status=closed", "admin"),
        ("tickets requester (few)", "intake", f"/tickets?requester_email={REQUESTER}", "admin"),
        ("tickets requester (frequent)", "intake", f"/tickets?requester_email={frequent}", "admin"),
        ("tickets topic=network", "intake", "/tickets?topic=network", "admin"),
        (
            "tickets requester+number",
            "intake",
            f"/tickets?requester_email={REQUESTER}&number={number}&limit=1",
            "portal",
        ),
        ("tickets (agent)", "intake", "/tickets", "agent"),
        ("tickets (requester)", "intake", "/tickets", "requester"),
        ("ticket with thread", "intake", f"/tickets/{ref}", "admin"),
        ("ticket timeline", "intake", f"/tickets/{ref}/timeline?limit=200", "admin"),
        ("ticket timeline (requester)", "intake", f"/tickets/{ref}/timeline", "requester"),
        ("ticket attachments", "intake", f"/tickets/{ref}/attachments", "admin"),
        ("ticket mail", "intake", f"/tickets/{ref}/mail", "admin"),
        ("mail log", "intake", "/mail", "admin"),
        ("topics", "intake", "/topics", "portal"),
        ("queue team=network", "assignment", "/queue?team=network", "admin"),
        ("queue (all, limit=200)", "assignment", f"/queue?limit=200&fields={QUEUE_FIELDS}", "admin"),
        ("queue (all, 200 whole tickets)", "assignment", "/queue?limit=200", "admin"),
        ("queue status=waiting", "assignment", "/queue?status=waiting_on_requester", "admin"),
        ("queue agent_id= (agent)", "assignment", f"/queue?agent_id={AGENT}&limit=200&fields={QUEUE_FIELDS}", "agent"),
        ("queue unassigned (agent)", "assignment", f"/queue?unassigned=true&limit=200&fields={QUEUE_FIELDS}", "agent"),
        ("ticket", "assignment", f"/tickets/{ref}", "admin"),
        ("agents", "assignment", "/agents", "admin"),
        ("agents team=network", "assignment", "/agents?team=network", "admin"),
        ("agent", "assignment", f"/agents/{AGENT}", "agent"),
        ("teams", "assignment", "/teams", "agent"),
        ("breaches", "sla", "/breaches", "admin"),
        ("breaches priority=low", "sla", "/breaches?priority=low", "admin"),
        ("breaches clock=resolution", "sla", "/breaches?clock=resolution", "admin"),
        ("breaches since=7 days", "sla", f"/breaches?since={week}", "admin"),
        ("breaches (agent)", "sla", "/breaches", "agent"),
        ("stats (30 days)", "sla", "/stats", "admin"),
        ("policies", "sla", "/policies", "agent"),
        ("policy versions", "sla", "/policies/low/versions", "agent"),
        ("calendars", "sla", "/calendars", "agent"),
        ("ticket clocks", "sla", f"/tickets/{ref}", "admin"),
        ("ticket clocks (requester)", "sla", f"/tickets/{ref}", "requester"),
        ("clocks of 50 tickets (the console's queue)", "sla", clocks_of, "admin"),
        ("clocks of 50 tickets (agent)", "sla", clocks_of, "agent"),
        ("notifications", "notify", "/notifications", "admin"),
        ("notifications limit=50", "notify", "/notifications?limit=50", "admin"),
        ("notifications ticket_id=", "notify", f"/notifications?ticket_id={ref}", "admin"),
        ("notifications status=sent", "notify", "/notifications?status=sent", "admin"),
        ("notifications status=dead", "notify", "/notifications?status=dead&limit=200", "admin"),
        ("notifications recipient=", "notify", f"/notifications?recipient={REQUESTER}", "admin"),
        ("notifications (agent)", "notify", "/notifications", "agent"),
        ("notification", "notify", f"/notifications/{notification}", "admin"),
        ("webhooks", "notify", "/webhooks", "admin"),
    ]
    return [Read(*row) for row in rows]


def measure(desk: seed.Desk, rows: list[Read], phase: str, args) -> None:
    """--calls rounds over every read, after a warm-up round; a read stops once it has --min-calls calls and has
    spent --read-budget seconds. A warm-up call over WARM_UP_COUNTS seconds counts as a call (nothing to warm
    matters at that cost, and at 20,000 tickets a scan takes tens of seconds)."""
    tokens = {"admin": desk.admin, "agent": desk.agent(AGENT), "portal": desk.portal,
              "requester": desk.requester(REQUESTER)}  # fmt: skip
    spent = {row.name: 0.0 for row in rows}
    for round_ in range(args.calls + 1):  # round 0 warms up
        for row in rows:
            times = row.ms.setdefault(phase, [])
            if len(times) >= args.calls or (len(times) >= args.min_calls and spent[row.name] > args.read_budget):
                continue
            started = time.perf_counter()
            try:
                status, answer = call(desk.urls[row.service], "GET", row.path, tokens[row.token], timeout=600)
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, repr(exc)
            elapsed = time.perf_counter() - started
            if status != 200:
                row.errors.setdefault(phase, f"{status} {str(answer)[:120]}")
            spent[row.name] += elapsed
            if round_ or elapsed > WARM_UP_COUNTS:
                times.append(1000 * elapsed)
        print(f"  {phase}: round {round_} of {args.calls} done", flush=True)


def latency(desk: seed.Desk) -> dict[str, list[float]]:
    """created -> assigned of LATENCY_TICKETS new tickets, one after another (ms)."""
    stamped, seen = [], []
    intake, assignment = desk.urls["intake"], desk.urls["assignment"]
    for i in range(LATENCY_TICKETS):
        body = {"subject": f"Latency probe {i}", "description": "The VPN drops every hour.",
                "requester": {"name": "Probe", "email": "probe@example.com"}, "topic": "network"}  # fmt: skip
        started = time.perf_counter()
        tid = ok(intake, "POST", "/tickets", desk.portal, body)["id"]

        def assigned(tid: str = tid) -> bool:
            status, ticket = call(assignment, "GET", f"/tickets/{tid}", desk.admin)
            return status == 200 and bool(ticket.get("agent_id"))

        seed.until(assigned, f"{tid} assigned", timeout=600)
        seen.append(1000 * (time.perf_counter() - started))

        def moments(tid: str = tid) -> dict | None:
            items = ok(intake, "GET", f"/tickets/{tid}/timeline", desk.admin, timeout=600)["items"]
            found = {item["type"]: item["occurred_at"] for item in items}
            return found if {"ticket.created", "ticket.assigned"} <= found.keys() else None

        found = seed.until(moments, f"{tid} on the timeline", timeout=600)
        created, done = (datetime.fromisoformat(found[t]) for t in ("ticket.created", "ticket.assigned"))
        stamped.append((done - created).total_seconds() * 1000)
    return {"stamped": stamped, "seen": seen}


def start(env: dict, procs: Processes, smtp_url: str, secret: str) -> seed.Desk:
    """The five apis (WEB_CONCURRENCY=2) and one worker of each service, as benchmarks/e2e.py starts them."""
    service_env = {**env, "SMTP_URL": smtp_url, "WEB_CONCURRENCY": "2"}
    urls = {}
    for service in SERVICE_PORTS:
        port = free_port()
        urls[service] = f"http://127.0.0.1:{port}"
        procs.start(f"tf-{service}-api#{service}", api_command(service, port), service_env)
        procs.start(f"tf-{service}-worker#0", worker_command(service), service_env)
    for url in urls.values():
        wait_healthy(url, procs)
    ns = env["TICKETFLOW_NAMESPACE"]
    wait_consumers(env["AMQP_URL"], dict.fromkeys((f"{ns}.{service}" for service in SERVICE_PORTS), 1), procs)
    return seed.Desk(urls, secret)


def handful() -> list[tuple[str, str, str, str]]:
    """The empty phase's tickets: three of REQUESTER's (the first is the one read), one of each other story."""
    mine = [("closed", "network", "normal"), ("in-progress", "network", "high"), ("waiting", "email", "low")]
    others = [("reopened-closed", "hardware", "normal"), ("resolved", "software", "low"),
              ("assigned", "access", "normal"), ("unassigned", "general", "normal")]  # fmt: skip
    return [(s, REQUESTER, t, p) for s, t, p in mine] + [
        (s, f"bob{k}@example.com", t, p) for k, (s, t, p) in enumerate(others)
    ]


def mix(rng: random.Random, count: int) -> list[tuple[str, str, str, str]]:
    plans = []
    for _ in range(count):
        scenario = seed.pick(rng, seed.SCENARIOS)
        topic = "general" if scenario == "unassigned" else rng.choice(seed.TEAMS)
        plans.append((scenario, f"live{rng.randrange(100):03d}@example.net", topic, seed.pick(rng, seed.PRIORITIES)))
    return plans


def run(desk: seed.Desk, env: dict, args, figures: dict) -> None:
    """Both phases, filling `figures` as it goes (an interrupted run reports what it has)."""
    rng = random.Random(args.seed)
    mongo_url, ns = env["MONGO_URL"], env["TICKETFLOW_NAMESPACE"]
    seed.set_up(desk)
    first = seed.drive(desk, handful())
    seed.settle(mongo_url, ns)
    ref = first[0]
    notification = ok(desk.urls["notify"], "GET", f"/notifications?ticket_id={ref.id}", desk.admin, timeout=600)[
        "items"
    ][0]["id"]
    emails, frequent = seed.requester_pool(rng, max(args.tickets - args.sources, 0))
    rows = reads(ref.id, ref.number, notification, frequent, [ticket.id for ticket in first])
    print(f"empty: {len(first)} tickets; {len(rows)} reads x {args.calls}", flush=True)
    figures["reads"], figures["latency"] = rows, {}
    measure(desk, rows, "empty", args)
    figures["latency"]["empty"] = latency(desk)

    print(f"grown: {args.sources} tickets through the system", flush=True)
    started = time.monotonic()
    driven = seed.drive(desk, mix(rng, args.sources))
    seed.settle(mongo_url, ns)
    print(f"  driven and settled in {time.monotonic() - started:.0f} s", flush=True)
    measure(desk, rows, "small", args)  # pages as full as the grown desk's: the same reads, like for like
    figures["latency"]["small"] = latency(desk)
    from pymongo import MongoClient

    client = MongoClient(mongo_url, tz_aware=True)
    try:
        sources, untouched = seed.sources_of(client, ns, [d.id for d in driven], args.months)
        lowest = min(d.number for d in first + driven)
        copies = seed.plan_copies(sources, len(emails), emails, lowest - len(emails), rng)
        started = time.monotonic()
        written = seed.insert_copies(client, ns, copies, progress=lambda line: print(line, flush=True))
        seconds = time.monotonic() - started
        seed.check(desk, copies, client, ns)
        seed.stats_gathered(mongo_url, ns)
    finally:
        client.close()
    figures |= {"copies": len(copies), "documents": written, "collections without ticket documents": untouched}
    figures["mix"] = seed.summary(copies)
    print(f"  copies read as their sources through every api; mix: {figures['mix']}", flush=True)
    print(f"  {len(copies)} copies, {sum(written.values())} documents in {seconds:.0f} s", flush=True)
    measure(desk, rows, "grown", args)
    figures["latency"]["grown"] = latency(desk)


def verdict(row: Read, base: str = "empty") -> tuple[float, float, float, str]:
    """(base p50, grown p50, growth, verdict): grown within BOUND_RATIO of `base` (empty, or small: the desk of
    the driven tickets, whose pages are as full as the grown desk's) and under BOUND_MS."""
    before, grown = percentile(row.ms.get(base, []), 50), percentile(row.ms.get("grown", []), 50)
    growth = grown / before if before else float("nan")
    passed = grown <= BOUND_RATIO * before and grown < BOUND_MS and not row.errors
    return before, grown, growth, "PASS" if passed else "not measured" if not row.ms.get("grown") else "FAIL"


def report(figures: dict, args) -> None:
    print()
    copies = figures.get("copies", 0)
    print(f"{args.tickets} more tickets ({copies} copies of {args.sources} driven); {os.cpu_count()} cores")
    phases = ("empty", "small", "grown")
    header = (
        f"{'service':<10} {'read':<30} {'empty p50 / p90 ms':>19} {'small p50 / p90 ms':>19} "
        f"{'grown p50 / p90 ms':>19} {'n':>8} {'growth':>7} {'':<5} {'/small':>7} {'':<5}"
    )
    print(header)
    print("-" * len(header))
    for row in figures["reads"]:
        _, _, growth, result = verdict(row)
        _, _, like, like_result = verdict(row, "small")
        pairs = [f"{percentile(row.ms.get(p, []), 50):8.1f} / {percentile(row.ms.get(p, []), 90):8.1f}" for p in phases]
        n = "/".join(str(len(row.ms.get(p, []))) for p in phases)
        errors = "; ".join(f"{phase}: {error}" for phase, error in row.errors.items())
        print(
            f"{row.service:<10} {row.name:<30} {pairs[0]:>19} {pairs[1]:>19} {pairs[2]:>19} {n:>8} {growth:>6.1f}x "
            f"{result:<5} {like:>6.1f}x {like_result:<5} {errors}"
        )
    for base in ("empty", "small"):
        passed = sum(verdict(row, base)[3] == "PASS" for row in figures["reads"])
        print(
            f"{passed} of {len(figures['reads'])} reads within {BOUND_RATIO}x of {base} and under {BOUND_MS:.0f} ms "
            "at p50"
        )
    print()
    for phase, values in figures.get("latency", {}).items():
        stamped, seen = values["stamped"], values["seen"]
        print(
            f"created -> assigned, {phase}: p50 {percentile(stamped, 50):.1f} ms, p90 {percentile(stamped, 90):.1f} ms "
            f"(timeline); POST -> assignment shows the agent p50 {percentile(seen, 50):.1f} ms ({len(stamped)} tickets)"
        )
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")


def as_json(figures: dict) -> dict:
    rows = []
    for row in figures["reads"]:
        empty, grown, growth, result = verdict(row)
        small, _, like, like_result = verdict(row, "small")
        rows.append({"service": row.service, "read": row.name, "path": row.path, "token": row.token,
                     "ms": row.ms, "errors": row.errors, "empty_p50": empty, "small_p50": small, "grown_p50": grown,
                     "growth": growth, "verdict": result, "growth_from_small": like,
                     "verdict_from_small": like_result})  # fmt: skip
    return {**{k: v for k, v in figures.items() if k != "reads"}, "reads": rows, "load": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=20000, help="tickets added for the grown phase (20000)")
    parser.add_argument("--sources", type=int, default=300, help="of them, driven through the system (300)")
    parser.add_argument("--calls", type=int, default=10, help="timed calls of each read per phase (10)")
    parser.add_argument("--min-calls", type=int, default=3, help="calls a read has before --read-budget stops it (3)")
    parser.add_argument("--read-budget", type=float, default=30, help="seconds after which a read stops (30)")
    parser.add_argument("--months", type=float, default=6, help="closed copies spread back over (6)")
    parser.add_argument("--seed", type=int, default=16, help="of the random mix (16)")
    parser.add_argument("--json", type=Path, help="write the figures there")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory's logs")
    args = parser.parse_args()
    args.sources = min(args.sources, args.tickets)

    def terminate(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ns, secret = f"tfbench_{secrets.token_hex(4)}", secrets.token_urlsafe(32)
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-growth-"))
    procs, ferretdb, controller, figures = Processes(tmp), None, None, {}
    env = {**os.environ, "AMQP_URL": broker_for_benchmark(), "TICKETFLOW_NAMESPACE": ns,
           "TICKETFLOW_JWT_SECRET": secret, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "GUNICORN_CMD_ARGS": "--timeout 600"}  # fmt: skip  # a read that scans for a minute is timed, not killed
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TICKETFLOW_METRICS_PORT", "TICKETFLOW_DEV", "MONGO_URL"):
        env.pop(name, None)
    try:
        mongo_url, ferretdb = store_for_benchmark(tmp)
        env["MONGO_URL"] = mongo_url
        _sink, controller, smtp_url = start_sink()
        print(f"namespace {ns}, MongoDB {mongo_url}, logs in {tmp}", flush=True)
        run(start(env, procs, smtp_url, secret), env, args, figures)
        return 0
    except KeyboardInterrupt:
        print("interrupted: what was measured so far, then clean-up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        if figures.get("reads"):
            report(figures, args)
            if args.json:
                args.json.write_text(json.dumps(as_json(figures), indent=1, default=str) + "\n")
        cleanup(procs, env, ferretdb, controller, tmp, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
