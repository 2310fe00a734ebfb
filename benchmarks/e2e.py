"""The whole system end to end: tickets per second through the first stage, and 201 -> assignment email latency.

    .venv/bin/python benchmarks/e2e.py [--rate 20] [--seconds 20] [--clients 8] [--workers 1] [--rounds 1]

Uses MONGO_URL / AMQP_URL when set; otherwise starts its own FerretDB (built by `make tools`, data in
a temporary directory) and uses the local RabbitMQ. Everything lives under a fresh namespace
`tfbench_<hex>` with a generated JWT secret, removed at the end (processes, queues, exchanges,
databases, FerretDB, the temporary directory), also on Ctrl-C.

What runs: an SMTP server (aiosmtpd) inside this process records, for every message, its arrival time
by (system, `[#number]` of the subject, To); the Message-ID tells the systems apart (ticketflow's is
`<notification_id+ticket_id@ticketflow>`, the baseline's `<id@bare>`). Then, one system after the other on the
same FerretDB, RabbitMQ and machine (the first is stopped before the second starts):

- ticketflow: the five apis (`ticketflow.cli.api_command`, gunicorn, WEB_CONCURRENCY=--web-concurrency)
  and --workers workers of each service (`worker_command`), SMTP_URL at the sink; a topic, a team
  routing it, an unavailable lead and --agents agents of capacity 1000 (nothing ever waits in a queue).
- bare: benchmarks/e2e_bare.py, the same broker hops per ticket and 44 MongoDB writes (37 before sla's deadlines) with
  raw pymongo + pika (and tantivy for its search role, with search's schema), in the same process layout: a
  Flask front under gunicorn (same WEB_CONCURRENCY) and --workers consumer processes per role, the emails
  to the same sink.

Each system gets 10 warm-up tickets, then two phases:
1. steady: --rate tickets/s for --seconds, open loop (each POST at its fixed moment, from 4 threads; the
   generator's worst lateness is reported);
2. max: --clients threads POST back to back for --seconds.
POST /tickets answers 201: t0 = when the client read it. A ticket's first stage is complete when the
receipt (to the requester) and the assignment email (to an agent) have both reached the sink, and, checked
at the end of the phase, sla has its clocks (`GET /tickets/{id}` of sla: first_response running) and
assignment shows the agent the email went to (`GET /tickets/{id}` of assignment); for bare, its clocks and
ticket documents. Figures per phase and system:
- done, tickets/s: completions up to --drain s after the last POST, divided by the time from the phase's
  start to the later of its end and the last of them: with a system that keeps up, completed / --seconds;
  with one that falls behind, its rate of completing, not of accepting;
- all done, at /s: after the drain the run waits up to --settle s for the rest (so that a backlog never
  spills into the next phase); every completed ticket / (phase start .. the last completion). In the max
  phase that is the pipeline's capacity; the drain-window figure also depends on which queue the backlog
  piles up in (a ticket's assignment email waits behind every receipt queued before it);
- latency: assignment email's arrival - t0, p50 and p99 over every completed ticket; POST: request to 201;
- ratio: ticketflow's max-phase tickets/s / bare's (both definitions);
- CPU: utime + stime from /proc of each group of processes (gunicorn masters with their workers,
  FerretDB, RabbitMQ, this process) from the phase's start to its last completion, in ms per completed
  ticket; "other processes" is what the rest of the machine used meanwhile (other people's tests);
- consumers (max phase): events each consumer marked handled (processed_events.at) and the wall time
  per event while it had a backlog (the slowest sets everyone's pace downstream);
- ticketflow's hops (medians and p99): from the stored moments: ticket.created / ticket.assigned
  `occurred_at` (intake's timeline), the notification's `created_at` and `sent_at`, each consumer's
  `processed_events.at`;
- store calls per completed ticket, by command (find, insert, update, findAndModify, getMore...), the
  systems side by side: the server's own counters (serverStatus `metrics.commands`, which FerretDB and
  MongoDB both keep; benchmarks/meters.py) read at the phase's start and, after its last completion, once
  every queue of the namespace is empty with nothing unacked (rabbitmqctl; the trailing work of the last
  tickets is the phase's, the checks' reads are not). Server-wide, so background work counts too (timers,
  the dispatcher's polls): the data calls per second in the 1 s pause before each phase are printed beside
  it. Connection upkeep (hello, ping...) is counted apart;
- RSS: VmRSS of every process each second over the same span, the peak of the largest of each kind (an
  api's gunicorn master apart from its workers; FerretDB, the machine's RabbitMQ and this process
  labelled as such), PASS / FAIL against 100 MB for ticketflow's apis and workers.
Options: --web-concurrency 2, --agents 10, --drain 10, --settle 120, --phases steady,max,
--systems ticketflow,bare, --profile-mongo (below), --keep-logs (the processes' logs stay in the temporary
directory), --rounds N: the systems in turn N times (ticketflow, bare, ticketflow, bare...), each round afresh (the
namespace's queues deleted, its databases dropped, both search indexes removed, the sink's arrivals forgotten),
then each round's ratios and their medians. The machine's speed moves from minute to minute by more than some of
the differences measured; a pair run back to back compares fairly, and the rounds' spread says how far one run can
be trusted.

Store calls of one ticket's first stage in ticketflow, attributed to the code that sends them with
--profile-mongo (its call-site table; no Idempotency-Key, team and agents known, no webhooks; 9 deliveries:
ticket.created -> intake, assignment, sla, notify; ticket.assigned -> intake, sla, notify; notification.sent
x2 -> intake). Before issue 16's part 2 / now:

    intake api   rate limit (RateLimits.hit): findAndModify, and for a requester new this hour (every
                 one here) ensure_document insert + findAndModify again; counter findAndModify
                 (next_number); ticket insert with ticket.created in its outbox; outbox clear
                 (OutboxFlusher -> outbox.clear); topics find (cached)                        6 (+0.2) / same
    assignment   processed find (ProcessedEvents.seen, before every delivery)                 1 / 0
                 teams find (route), ticket insert, the ticket read again (_assign's load)    3 / 2
                 team's agents find (_auto), the lead's email find (AgentStore.lead_email)    2 / 1
                 agent reservation, ticket save with ticket.assigned, outbox clear, processed 4 / 4
    sla          processed find + insert, x2 (ticket.created, ticket.assigned)                4 / 2
                 ticket_access upsert (learn_created), policies find, clocks find (load),
                 clocks insert, clock_histories write; ticket_access (learn_assigned)         6 / 5
                 calendars find (cached 1 s)                                           +0.6 / same
    notify       processed find + insert, x2                                                  4 / 2
                 projection find + insert (created), find + save (assigned)                   4 / 3
                 webhooks find x2, notification insert x2 (receipt, assignment email)         4 / 4
                 per email (dispatcher): record read again at its claim, claim save, save as
                 sent with notification.sent, outbox clear                                    8 / 6
    intake wkr   processed find + insert x4, timeline insert x4; ticket.assigned: ticket
                 find + save (notification.* change nothing and read nothing)                14 / 10
    total        60 / 45 calls per ticket, plus the timers below; 4 confirmed publishes

Since 2026-12-04 (night) sla publishes `sla.deadlines_changed` as it starts the clocks (its outbox clear in the
flusher's bulk), which intake (ticket save, timeline), assignment (ticket save) and notify (nothing, unless a webhook
wants it) take: 1 publish and 3 deliveries more, about 7 calls a ticket (46.5 to 48.3 in all, measured).

Since then each consumer's "processed" insert is noted and written with others (ProcessedEvents.flush, one
insert every 0.25 s for every delivery meanwhile): about 1 call a worker per quarter second instead of 1 a
delivery, and search (a fifth worker) reads and writes its ticket documents: 47 calls per ticket in all.

Timers, per second whatever the load: each worker's outbox relay polled `outbox_pending` every 0.5 s
(4 workers: 8 finds/s; now every 2 s while it finds nothing: 2/s), notify's dispatcher reads what is due
at every pass (at least once a second, and after each notification recorded; a finished send no longer
wakes it unless a notification waited for a sender), sla's deadline timer likewise for its clocks. At
10 tickets/s these added about 9 calls per ticket to the 60 (the 69 first measured); on a loaded
machine, with fewer tickets per second, they weigh more per ticket. The store calls table below
measures all of it; --profile-mongo also prints every command of every service process by process,
collection and call site (a pymongo CommandListener loaded through sitecustomize.py; no service code
changes), which is where the table above comes from.
"""

from __future__ import annotations

import argparse
import email.parser
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import e2e_bare as bare  # noqa: E402
from benchmarks.meters import (  # noqa: E402
    CLK_TCK,
    LIMIT_MB,
    RssPeaks,
    StoreCommands,
    command_deltas,
    cpu_seconds,
    data_calls,
    kinds_of,
    print_rss,
    print_store_calls,
    process_tree,
    wait_queues_idle,
)
from shared.auth import issue_token  # noqa: E402
from shared.config import SERVICE_PORTS  # noqa: E402
from ticketflow.cli import api_command, worker_command  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, store_for_benchmark, wait_for_port  # noqa: E402

SUBJECT_NUMBER = re.compile(r"\[#(\d+)\]")
STEADY_THREADS = 4
WARM_UP = 10
OTHER = "other processes"  # not this run's: other people's tests on a shared machine


# --- processes and their CPU (cpu_seconds: benchmarks/meters.py) ---------------------------------------


def rabbitmq_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "beam.smp":
                        return int(entry)
            except OSError:
                pass
    return None


class Processes:
    """Every process this run started, in its own session, with its output in the run's log directory."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.started.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def groups(self) -> dict[str, list[int]]:
        """Group name (the part of the name before '#') -> pids with their children."""
        groups: dict[str, list[int]] = {}
        for name, proc in self.started:
            if proc.poll() is None:
                groups.setdefault(name.split("#")[0], []).append(proc.pid)
        return {group: process_tree(pids) for group, pids in groups.items()}

    def roots(self) -> dict[str, list[int]]:
        """Group name -> the pids this run started (not their children), of the processes still running."""
        roots: dict[str, list[int]] = {}
        for name, proc in self.started:
            if proc.poll() is None:
                roots.setdefault(name.split("#")[0], []).append(proc.pid)
        return roots

    def stop(self) -> None:
        """SIGTERM to each process group, then SIGKILL to what is left after 10 s."""
        for _, proc in self.started:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.started:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        self.started.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the process's own session: it and the children it started
    except (ProcessLookupError, PermissionError):
        pass


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU seconds of each group of processes, and of everything else on the machine (OTHER)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start, self.machine = self._read(), machine_busy_seconds()

    def _read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()}

    def used(self) -> dict[str, float]:
        now = self._read()
        used = {name: now[name] - self.start[name] for name in self.groups}
        used[OTHER] = max(machine_busy_seconds() - self.machine - sum(used.values()), 0.0)
        return used


# --- the SMTP sink ----------------------------------------------------------------------------------


class MailSink:
    """aiosmtpd handler: the first arrival time of each (system, ticket number, To); resends counted."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, int], dict[str, float]] = {}
        self.message_ids: set[str] = set()
        self.repeated = 0
        self._lock = threading.Lock()
        self._parser = email.parser.BytesHeaderParser()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        at = time.time()
        headers = self._parser.parsebytes(envelope.content, headersonly=True)
        message_id = str(headers.get("Message-ID", ""))
        system = "bare" if message_id.endswith("@bare>") else "ticketflow"
        number = SUBJECT_NUMBER.search(str(headers.get("Subject", "")))
        to = str(headers.get("To", "")).strip().lower()
        with self._lock:
            if message_id in self.message_ids:
                self.repeated += 1
            self.message_ids.add(message_id)
            if number:
                self.arrivals.setdefault((system, int(number.group(1))), {}).setdefault(to, at)
        return "250 OK"

    def reset(self) -> None:
        """Forget every arrival (a new round numbers its tickets from the start again); resends stay counted."""
        with self._lock:
            self.arrivals.clear()
            self.message_ids.clear()

    def of(self, system: str, number: int) -> dict[str, float]:
        with self._lock:
            return dict(self.arrivals.get((system, number), {}))


def start_sink() -> tuple[MailSink, object, str]:
    from aiosmtpd.controller import Controller

    sink, port = MailSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return sink, controller, f"smtp://127.0.0.1:{port}"


# --- HTTP -------------------------------------------------------------------------------------------


def call(
    url: str, method: str, path: str, token: str | None = None, body: dict | None = None, timeout: float = 30
) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    try:
        conn.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, (json.loads(raw) if raw else {})


def ok(
    url: str, method: str, path: str, token: str | None = None, body: dict | None = None, timeout: float = 30
) -> dict:
    status, answer = call(url, method, path, token, body, timeout)
    if status >= 300:
        raise RuntimeError(f"{method} {url}{path}: {status} {answer}")
    return answer


def wait_healthy(url: str, procs: Processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        try:
            if call(url, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/healthz did not answer in {timeout} s")


def consumers_on(amqp_url: str, queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def wait_consumers(amqp_url: str, counts: dict[str, int], procs: Processes, timeout: float = 60) -> None:
    """Until each queue has its count of consumers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        if all(consumers_on(amqp_url, queue) >= count for queue, count in counts.items()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"not as many consumers as {counts} after {timeout} s")


def workers_of(role: str, args) -> int:
    """--workers of each service and role, but one of search's: its index has one writer (a second worker waits
    for the first's lock before it consumes; the bare role likewise)."""
    return 1 if role == "search" else args.workers


# --- the load ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    id: str
    number: int
    requester: str
    t0: float  # when the 201 was read (time.time())
    post_ms: float


@dataclass
class Phase:
    name: str
    system: str
    sent: list[Sent] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    start: float = 0.0
    end: float = 0.0  # the last POST's answer
    lateness_ms: float = 0.0  # open loop: the worst delay of a POST behind its moment
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """POST /tickets, a new connection each (gunicorn's sync workers close it anyway)."""

    def __init__(self, url: str, token: str | None, topic: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port, self.topic = int(port), topic
        self.headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self._counter = iter(range(10**9))
        self._counter_lock = threading.Lock()

    def post(self, phase: Phase) -> None:
        with self._counter_lock:
            i = next(self._counter)
        requester = f"requester{i % 500}@example.com"
        body = {
            "subject": f"Printer on floor 3 will not print ({i})",
            "description": "It shows 'offline' although it is on the network. " * 4,
            "requester": {"name": "Ana Ruiz", "email": requester},
            "topic": self.topic,
            "priority": "normal",
            "source": "web",
        }
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("POST", "/tickets", json.dumps(body).encode(), self.headers)
            response = conn.getresponse()
            raw = response.read()
            conn.close()
        except OSError as exc:
            with phase.lock:
                phase.errors += 1
                phase.first_error = phase.first_error or repr(exc)
            return
        t0, elapsed = time.time(), time.perf_counter() - started
        with phase.lock:
            if response.status != 201:
                phase.errors += 1
                phase.first_error = phase.first_error or f"{response.status} {raw[:300]!r}"
                return
            ticket = json.loads(raw)
            phase.sent.append(Sent(ticket["id"], ticket["number"], requester, t0, 1000 * elapsed))
            phase.end = max(phase.end, t0)


def steady(load: Load, phase: Phase, rate: float, seconds: float, stop: threading.Event) -> None:
    """Open loop: POST number i at start + i / rate, from a few threads."""
    total = int(rate * seconds)
    phase.start = time.time() + 0.1
    counter, lock = iter(range(total)), threading.Lock()

    def run() -> None:
        while not stop.is_set():
            with lock:
                i = next(counter, None)
            if i is None:
                return
            moment = phase.start + i / rate
            delay = moment - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                with phase.lock:
                    phase.lateness_ms = max(phase.lateness_ms, -1000 * delay)
            load.post(phase)

    _threads(run, STEADY_THREADS)


def flat_out(load: Load, phase: Phase, clients: int, seconds: float, stop: threading.Event) -> None:
    """Closed loop: --clients threads, each POSTs again as soon as it has its answer."""
    phase.start = time.time()
    until = phase.start + seconds

    def run() -> None:
        while time.time() < until and not stop.is_set():
            load.post(phase)

    _threads(run, clients)


def _threads(target: Callable[[], None], n: int) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # wakes up for Ctrl-C


# --- one system -------------------------------------------------------------------------------------


@dataclass
class System:
    name: str
    post_url: str
    token: str | None
    topic: str
    agent_emails: dict[str, str]  # agent id -> email
    check: Callable[[list[Sent]], dict[str, str | None]]  # ticket id -> the assigned agent's email, if sla has clocks
    consumer_databases: dict[str, str]  # consumer -> its database (processed_events)
    hops: Callable[[list[Sent], dict[str, dict]], dict[str, list[float]]] | None = None


def emails_of(sink: MailSink, system: System, ticket: Sent) -> tuple[float | None, float | None, str | None]:
    """(receipt arrival, assignment email arrival, its To)."""
    arrivals = sink.of(system.name, ticket.number)
    receipt = arrivals.get(ticket.requester)
    agents = set(system.agent_emails.values())
    to_agent = sorted((at, to) for to, at in arrivals.items() if to in agents)
    return receipt, (to_agent[0][0] if to_agent else None), (to_agent[0][1] if to_agent else None)


def wait_first_stage(sink: MailSink, system: System, tickets: list[Sent], until: float, stop: threading.Event) -> None:
    pending = list(tickets)
    while pending and time.time() < until and not stop.is_set():
        pending = [t for t in pending if None in emails_of(sink, system, t)[:2]]
        time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] if ordered else float("nan")


@dataclass
class Result:
    phase: Phase
    completed: int  # within the drain window, checks passed
    throughput: float  # completed / (phase start .. the later of its end and the last of them)
    everything: int  # completed by the end of the settle wait
    capacity: float  # everything / (phase start .. the last completion): the rate of working off the phase
    post_ms: list[float]
    latency_ms: list[float]  # of every completed ticket
    drain_s: float  # the last in-window completion after the last POST
    all_done_s: float  # the last completion after the last POST
    failed_checks: int
    cpu_ms: dict[str, float]  # per completed ticket, phase start .. the last completion
    other_cores: float  # what processes not of this run used meanwhile, in cores
    consumers: dict[str, tuple[int, float]]  # consumer -> (events handled, seconds from the first to the last)
    hops: dict[str, list[float]]
    store_calls: dict[str, int]  # command -> calls the store received, phase start .. its queues idle
    drained: bool | None  # the queues were idle when the counters were read (None: not known, no rabbitmqctl)
    rss_mb: dict[str, float]  # process kind -> the peak RSS of its largest process over the same span
    idle_calls_per_s: float = 0.0  # data commands per second in the pause before the phase (timers, polls)


@dataclass
class Meters:
    """Where a phase's CPU, store commands and RSS are read from."""

    groups: Callable[[], dict[str, list[int]]]  # group -> pids with their children (CPU)
    kinds: Callable[[], dict[str, list[int]]]  # process kind -> pids (RSS)
    store: StoreCommands
    namespace: str  # the queues that must be idle before the store's counters are read


def measure(system: System, sink: MailSink, phase: Phase, args, meters: Meters, stop: threading.Event, run) -> Result:
    meter, commands = CpuMeter(meters.groups()), meters.store.read()
    rss = RssPeaks(meters.kinds).start()
    run()
    deadline = phase.end + args.drain
    wait_first_stage(sink, system, phase.sent, deadline, stop)
    wait_first_stage(sink, system, phase.sent, time.time() + args.settle, stop)  # the rest: not in the window
    cpu, wall = meter.used(), time.time() - phase.start
    # the trailing work (intake's timeline of the last emails) is the phase's too; the checks' reads are not
    drained = wait_queues_idle(meters.namespace, time.time() + args.settle)
    store_calls, rss_mb = command_deltas(commands, meters.store.read()), rss.stop()
    done = {}
    for ticket in phase.sent:
        receipt, assigned, to = emails_of(sink, system, ticket)
        if receipt is not None and assigned is not None:
            done[ticket.id] = (ticket, max(receipt, assigned), assigned, to)
    checked = system.check([entry[0] for entry in done.values()])
    good = {tid: entry for tid, entry in done.items() if checked.get(tid) is not None and checked[tid] == entry[3]}
    in_window = [entry for entry in good.values() if entry[1] <= deadline]
    last_in_window = max((entry[1] for entry in in_window), default=phase.end)
    last = max((entry[1] for entry in good.values()), default=phase.end)
    span = max(phase.end, last_in_window) - phase.start
    hops = system.hops([entry[0] for entry in good.values()], good) if system.hops and good else {}
    return Result(
        phase=phase,
        completed=len(in_window),
        throughput=len(in_window) / span if span > 0 else 0.0,
        everything=len(good),
        capacity=len(good) / max(max(phase.end, last) - phase.start, 1e-9),
        post_ms=[t.post_ms for t in phase.sent],
        latency_ms=[1000 * (entry[2] - entry[0].t0) for entry in good.values()],
        drain_s=max(last_in_window - phase.end, 0.0),
        all_done_s=max(last - phase.end, 0.0),
        failed_checks=len(done) - len(good),
        cpu_ms={name: 1000 * seconds / max(len(good), 1) for name, seconds in cpu.items()},
        other_cores=cpu[OTHER] / wall,
        consumers=consumer_stats(args.mongo_url, system.consumer_databases, phase.start, last),
        hops=hops,
        store_calls=store_calls,
        drained=drained,
        rss_mb=rss_mb,
    )


def consumer_stats(mongo_url: str, databases: dict[str, str], start: float, end: float) -> dict:
    """Per consumer, the events it marked handled (processed_events.at) between start and end: (count, seconds)."""
    from pymongo import MongoClient

    client = MongoClient(mongo_url, tz_aware=True)
    stats = {}
    try:
        for consumer, database in databases.items():
            moments = sorted(
                at
                for doc in client[database]["processed_events"].find({}, {"at": 1})
                if start <= (at := doc["at"].timestamp()) <= end + 0.01
            )
            stats[consumer] = (len(moments), moments[-1] - moments[0] if len(moments) > 1 else 0.0)
    finally:
        client.close()
    return stats


def run_phases(system: System, sink: MailSink, args, meters: Meters, stop: threading.Event) -> list[Result]:
    load = Load(system.post_url, system.token, system.topic)
    warm = Phase("warm-up", system.name)
    for _ in range(WARM_UP):
        load.post(warm)
    if warm.errors:
        raise RuntimeError(f"{system.name}: warm-up POSTs failed: {warm.first_error}")
    wait_first_stage(sink, system, warm.sent, time.time() + 60, stop)
    if any(None in emails_of(sink, system, t)[:2] for t in warm.sent):
        raise RuntimeError(f"{system.name}: the warm-up tickets' emails did not arrive in 60 s")
    results = []
    drives = {
        "steady": lambda phase: steady(load, phase, args.rate, args.seconds, stop),
        "max": lambda phase: flat_out(load, phase, args.clients, args.seconds, stop),
    }
    for name in args.phases.split(","):
        drive = drives[name]
        before, paused = meters.store.read(), time.monotonic()
        time.sleep(1.0)
        idle = data_calls(command_deltas(before, meters.store.read())) / (time.monotonic() - paused)
        phase = Phase(name, system.name)
        results.append(measure(system, sink, phase, args, meters, stop, lambda phase=phase, drive=drive: drive(phase)))
        results[-1].idle_calls_per_s = idle
        _progress(results[-1])
    return results


def _progress(result: Result) -> None:
    phase = result.phase
    print(
        f"  {phase.system} {phase.name}: {len(phase.sent)} sent, {result.completed} complete in the window "
        f"({result.throughput:.1f}/s), {result.everything} in all ({result.capacity:.1f}/s), "
        f"latency p50 {percentile(result.latency_ms, 50):.0f} ms",
        flush=True,
    )


# --- ticketflow -------------------------------------------------------------------------------------


def start_ticketflow(env: dict, args, procs: Processes, smtp_url: str, secret: str) -> System:
    service_env = {**env, "SMTP_URL": smtp_url, "WEB_CONCURRENCY": str(args.web_concurrency)}
    urls = {}
    for service in SERVICE_PORTS:
        port = free_port()
        urls[service] = f"http://127.0.0.1:{port}"
        procs.start(f"tf-{service}-api#{service}", api_command(service, port), service_env)
        for i in range(workers_of(service, args)):
            procs.start(f"tf-{service}-worker#{i}", worker_command(service), service_env)
    for url in urls.values():
        wait_healthy(url, procs)
    ns = env["TICKETFLOW_NAMESPACE"]
    wait_consumers(env["AMQP_URL"], {f"{ns}.{service}": workers_of(service, args) for service in SERVICE_PORTS}, procs)

    admin = issue_token(secret, "admin")
    topic, team = f"bench-{secrets.token_hex(3)}", f"team-{secrets.token_hex(3)}"
    ok(urls["intake"], "PUT", f"/topics/{topic}", admin, {"name": "Benchmark"})
    ok(urls["assignment"], "POST", "/teams", admin, {"id": team, "name": "Benchmark", "topics": [topic]})
    lead = {"id": "lead", "name": "Lena Lead", "email": "lead@example.com", "teams": [team], "capacity": 1,
            "available": False, "lead": True}  # fmt: skip
    ok(urls["assignment"], "POST", "/agents", admin, lead)
    agents = {}
    for k in range(args.agents):
        agent = {"id": f"agent{k}", "name": f"Agent {k}", "email": f"agent{k}@example.com", "teams": [team],
                 "capacity": 1000}  # fmt: skip
        ok(urls["assignment"], "POST", "/agents", admin, agent)
        agents[agent["id"]] = agent["email"]

    def check(tickets: list[Sent]) -> dict[str, str | None]:
        def one(ticket: Sent) -> tuple[str, str | None]:
            status, clocks = call(urls["sla"], "GET", f"/tickets/{ticket.id}", admin)
            running = status == 200 and (clocks["clocks"].get("first_response") or {}).get("state") == "running"
            status, view = call(urls["assignment"], "GET", f"/tickets/{ticket.id}", admin)
            agent = view.get("agent_id") if status == 200 else None
            return ticket.id, agents.get(agent) if running else None

        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(one, tickets))

    databases = {f"{service} worker": f"{ns}_{service}" for service in SERVICE_PORTS}
    system = System("ticketflow", urls["intake"], issue_token(secret, "portal"), topic, agents, check, databases)
    system.hops = lambda tickets, done: ticketflow_hops(env, tickets, done)
    return system


def ticketflow_hops(env: dict, tickets: list[Sent], done: dict[str, tuple]) -> dict[str, list[float]]:
    """Per ticket, ms between the stored moments of its first stage (medians tell where the time goes)."""
    from pymongo import MongoClient

    ns, wanted = env["TICKETFLOW_NAMESPACE"], {t.id for t in tickets}
    client = MongoClient(env["MONGO_URL"], tz_aware=True)
    try:
        events: dict[tuple[str, str], tuple[str, float]] = {}  # (ticket, type) -> (event id, occurred_at)
        for doc in client[f"{ns}_intake"]["timeline"].find({}, {"ticket_id": 1, "type": 1, "occurred_at": 1}):
            if doc["ticket_id"] in wanted and doc["type"] in ("ticket.created", "ticket.assigned"):
                events[(doc["ticket_id"], doc["type"])] = (doc["_id"], doc["occurred_at"].timestamp())
        processed = {
            service: {doc["_id"]: doc["at"].timestamp() for doc in client[f"{ns}_{service}"]["processed_events"].find()}
            for service in ("assignment", "sla", "notify")
        }
        records: dict[tuple[str, str], tuple[float, float]] = {}  # (ticket, event type) -> (created_at, sent_at)
        fields = {"ticket_id": 1, "event_type": 1, "created_at": 1, "sent_at": 1, "channel": 1}
        for doc in client[f"{ns}_notify"]["notifications"].find({}, fields):
            if doc["ticket_id"] in wanted and doc["channel"] == "email" and doc.get("sent_at"):
                records[(doc["ticket_id"], doc["event_type"])] = (
                    doc["created_at"].timestamp(),
                    doc["sent_at"].timestamp(),
                )
    finally:
        client.close()
    hops: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        hops.setdefault(name, []).append(1000 * seconds)

    for ticket in tickets:
        created, assigned = events.get((ticket.id, "ticket.created")), events.get((ticket.id, "ticket.assigned"))
        email = records.get((ticket.id, "ticket.assigned"))
        receipt = records.get((ticket.id, "ticket.created"))
        if not (created and assigned and email):
            continue
        arrival = done[ticket.id][2]
        add("a. intake api: ticket.created stamped -> 201 read by the client", ticket.t0 - created[1])
        add("b. ticket.created -> ticket.assigned stamped (publish, queue, assignment)", assigned[1] - created[1])
        if created[0] in processed["assignment"]:
            add(
                "   b'. ticket.assigned stamped -> assignment handler done",
                processed["assignment"][created[0]] - assigned[1],
            )
        add("c. ticket.assigned -> its email recorded (publish, queue, notify)", email[0] - assigned[1])
        if assigned[0] in processed["notify"]:
            add("   c'. email recorded -> notify handler done", processed["notify"][assigned[0]] - email[0])
        add("d. email recorded -> arrived at the sink (dispatch, claim, SMTP)", arrival - email[0])
        add("   d'. email recorded -> sent_at stored", email[1] - email[0])
        add("e. total: 201 -> assignment email", arrival - ticket.t0)
        if receipt:
            add("   receipt: ticket.created -> its email recorded by notify", receipt[0] - created[1])
        if created[0] in processed["sla"]:
            add("   sla: ticket.created -> clocks stored (handler done)", processed["sla"][created[0]] - created[1])
    return hops


# --- bare -------------------------------------------------------------------------------------------


def start_bare(env: dict, args, procs: Processes, smtp_url: str) -> System:
    ns = env["TICKETFLOW_NAMESPACE"]
    bare_env = {**env, "BARE_NS": ns, "BARE_AGENTS": str(args.agents), "SMTP_URL": smtp_url,
                "WEB_CONCURRENCY": str(args.web_concurrency),
                "BARE_INDEX_DIR": str(procs.log_dir / "bare-index")}  # fmt: skip
    bare.declare(env["AMQP_URL"], ns)
    port = free_port()
    gunicorn = [*api_command("intake", port)[:-1], "benchmarks.e2e_bare:app"]  # same settings, the bare app
    procs.start("bare-front#front", gunicorn, bare_env)
    for role in bare.ROLES:
        for i in range(workers_of(role, args)):
            procs.start(f"bare-{role}#{i}", [sys.executable, "-m", "benchmarks.e2e_bare", role], bare_env)
    if not wait_for_port("127.0.0.1", port, 30):
        procs.check()
        raise RuntimeError("the bare front did not start")
    wait_consumers(env["AMQP_URL"], {bare.queue_of(ns, role): workers_of(role, args) for role in bare.ROLES}, procs)
    agents = {f"agent{k}": f"agent{k}@bare.example.com" for k in range(args.agents)}

    def check(tickets: list[Sent]) -> dict[str, str | None]:
        from pymongo import MongoClient

        ids = [t.id for t in tickets]
        client = MongoClient(env["MONGO_URL"])
        try:
            clocks = {doc["_id"] for doc in client[bare.database_name(ns, "sla")]["clocks"].find({}, {"_id": 1})}
            found = client[bare.database_name(ns, "assignment")]["tickets"].find({}, {"agent_id": 1})
            agent_of = {doc["_id"]: doc.get("agent_id") for doc in found}
        finally:
            client.close()
        return {tid: agents.get(agent_of.get(tid)) if tid in clocks else None for tid in ids}

    databases = {role: bare.database_name(ns, role) for role in bare.ROLES}
    return System("bare", f"http://127.0.0.1:{port}", None, "hardware", agents, check, databases)


# --- the report -------------------------------------------------------------------------------------


def report(results: list[Result], args) -> None:
    def pair(values: list[float]) -> str:
        return f"{percentile(values, 50):7.1f} / {percentile(values, 99):7.1f}" if values else "    n/a /     n/a"

    print()
    print(
        f"{args.seconds:g} s per phase, steady {args.rate:g}/s from {STEADY_THREADS} threads, max from {args.clients} "
        f"clients; {args.workers} worker(s) per service, WEB_CONCURRENCY={args.web_concurrency}, {args.agents} agents, "
        f"drain {args.drain:g} s; {os.cpu_count()} cores"
    )
    header = (
        f"{'phase':<7} {'system':<10} {'sent':>5} {'done':>5} {'tickets/s':>9}  {'POST p50 / p99 ms':>17}  "
        f"{'201->assign email p50 / p99 ms':>30}  {'drain s':>7}  {'all done':>8} {'at /s':>6}  notes"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        phase = result.phase
        notes = []
        if phase.errors:
            notes.append(f"{phase.errors} POST errors ({phase.first_error[:60]})")
        if result.everything < len(phase.sent):
            notes.append(f"{len(phase.sent) - result.everything} never completed")
        if result.failed_checks:
            notes.append(f"{result.failed_checks} failed checks")
        if phase.name == "steady" and phase.lateness_ms > 20:
            notes.append(f"generator up to {phase.lateness_ms:.0f} ms late")
        print(
            f"{phase.name:<7} {phase.system:<10} {len(phase.sent):>5} {result.completed:>5} {result.throughput:>9.1f}  "
            f"{pair(result.post_ms):>17}  {pair(result.latency_ms):>30}  {result.drain_s:>7.1f}  "
            f"{result.all_done_s:>7.1f}s {result.capacity:>6.1f}  {'; '.join(notes)}"
        )
    print(
        "done, tickets/s: completed within the drain window; all done: the last completion after the last POST, "
        "at /s: all completed / (phase start .. then); latency over all completed"
    )
    by = {(r.phase.system, r.phase.name): r for r in results}
    if ("ticketflow", "max") in by and ("bare", "max") in by and by[("bare", "max")].throughput:
        tf, base = by[("ticketflow", "max")], by[("bare", "max")]
        print(
            f"ratio (max phase, ticketflow / bare tickets per second): {tf.throughput / base.throughput:.2f} "
            f"(all done: {tf.capacity / base.capacity:.2f})   aim: at least 0.5"
        )
    if ("ticketflow", "steady") in by:
        median = percentile(by[("ticketflow", "steady")].latency_ms, 50)
        line = f"latency at {args.rate:g}/s, 201 -> assignment email, median: ticketflow {median:.1f} ms"
        if ("bare", "steady") in by:
            line += f", bare {percentile(by[('bare', 'steady')].latency_ms, 50):.1f} ms"
        print(line + "   aim: ticketflow under 50 ms")

    print()
    print("CPU, ms per completed ticket (phase start .. last completion), by process group:")
    for result in results:
        cpu = {name: ms for name, ms in result.cpu_ms.items() if name != OTHER}
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(cpu.items(), key=lambda kv: -kv[1]) if ms >= 0.05)
        print(
            f"  {result.phase.name:<7} {result.phase.system:<10} total {sum(cpu.values()):6.1f} "
            f"(other processes meanwhile: {result.other_cores:.2f} cores): {parts}"
        )
    print()
    print("consumers in the max phase: events handled, wall ms per event while backlogged (processed_events.at)")
    for result in results:
        if result.phase.name != "max":
            continue
        for consumer, (count, seconds) in result.consumers.items():
            per_ticket = count / max(result.everything, 1)
            if count > 1 and seconds > 0:
                print(
                    f"  {result.phase.system:<10} {consumer:<18} {count:>5} events ({per_ticket:.1f} per ticket), "
                    f"{1000 * seconds / count:6.1f} ms each"
                )

    print_store_calls(
        f"store calls per completed ticket, by command (serverStatus of {args.store_label}, server-wide; "
        "phase start .. its queues idle after the last completion):",
        {f"{r.phase.system} {r.phase.name}": (r.store_calls, r.everything) for r in results},
    )
    print("  (upkeep: hello, ping, serverStatus... of every client, counted apart from the total)")
    print(
        "  data calls per second while idle, in the 1 s before the phase: "
        + ", ".join(f"{r.phase.system} {r.phase.name} {r.idle_calls_per_s:.1f}" for r in results)
    )
    for result in results:
        if result.drained is not True:
            why = "rabbitmqctl cannot run here" if result.drained is None else f"not idle after {args.settle:g} s"
            print(f"  {result.phase.system} {result.phase.name}: counted without waiting for idle queues ({why})")
    print_rss(
        f"RSS, peak MB (VmRSS every second, phase start .. its queues idle); {LIMIT_MB:.0f} MB for ticketflow's apis "
        "and workers:",
        {f"{r.phase.system} {r.phase.name}": r.rss_mb for r in results},
        lambda kind: kind.startswith("tf-"),
    )

    for result in results:
        if result.hops:
            print()
            print(
                f"ticketflow {result.phase.name}: where the time goes, ms (p50 / p99 over {result.everything} tickets)"
            )
            for name, values in result.hops.items():
                print(f"  {name:<78} {pair(values)}")


def report_rounds(rounds: list[list[Result]], args) -> None:
    """Each round's ratios, ticketflow against the bare pipeline run just before or after it, and their medians.

    The machine's speed moves from minute to minute by more than some of the differences measured; each round
    compares two systems run back to back, so its ratio is fairer than any one system's figure, and the rounds'
    spread says how far one run can be trusted.
    """

    def cpu(result: Result) -> float:
        return sum(ms for name, ms in result.cpu_ms.items() if name != OTHER)

    print()
    print(f"rounds: ticketflow against the bare pipeline, {len(rounds)} rounds, each run back to back")
    header = (
        f"{'round':<6} {'CPU a ticket at ' + format(args.rate, 'g') + '/s':>24} {'CPU a ticket, max':>24} "
        f"{'all done, max (/s)':>24} {'email p50 at ' + format(args.rate, 'g') + '/s':>20}"
    )
    print(header)
    print("-" * len(header))
    columns: dict[str, list[float]] = {"steady": [], "max": [], "all done": [], "email": []}
    for n, results in enumerate(rounds, 1):
        by = {(r.phase.system, r.phase.name): r for r in results}
        cells = []
        for phase in ("steady", "max"):
            tf, base = by.get(("ticketflow", phase)), by.get(("bare", phase))
            if tf and base and cpu(base):
                ratio = cpu(tf) / cpu(base)
                columns[phase].append(ratio)
                cells.append(f"{cpu(tf):.1f} / {cpu(base):.1f} = {ratio:.2f}x")
            else:
                cells.append("n/a")
        tf, base = by.get(("ticketflow", "max")), by.get(("bare", "max"))
        if tf and base and base.capacity:
            columns["all done"].append(tf.capacity / base.capacity)
            cells.append(f"{tf.capacity:.1f} / {base.capacity:.1f} = {tf.capacity / base.capacity:.2f}")
        else:
            cells.append("n/a")
        steady = by.get(("ticketflow", "steady"))
        if steady and steady.latency_ms:
            columns["email"].append(percentile(steady.latency_ms, 50))
            cells.append(f"{columns['email'][-1]:.1f} ms")
        else:
            cells.append("n/a")
        print(f"{n:<6} {cells[0]:>24} {cells[1]:>24} {cells[2]:>24} {cells[3]:>20}")

    def spread(values: list[float], unit: str = "") -> str:
        if not values:
            return "n/a"
        return f"{statistics.median(values):.2f}{unit} (from {min(values):.2f} to {max(values):.2f})"

    print(
        f"median: CPU a ticket {spread(columns['steady'], 'x')} at {args.rate:g}/s, {spread(columns['max'], 'x')} as "
        f"fast as it goes; all done {spread(columns['all done'])}; email p50 {spread(columns['email'], ' ms')}"
    )
    print("issue 16 asks: CPU at most 1.3x, all done at least 0.8, email p50 under 100 ms at 20/s")


# --- optional: every MongoDB command of the services, counted and timed (--profile-mongo) -----------

PROFILER = '''"""Written by benchmarks/e2e.py --profile-mongo: count and time every MongoDB command of this process."""
import collections, json, os, sys, threading, time
from pymongo import monitoring

class _Listener(monitoring.CommandListener):
    def __init__(self):
        self.lock, self.pid, self.names, self.stats = threading.Lock(), None, {}, {}

    def started(self, event):
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        key = (event.database_name, collection, event.command_name, _site())
        self.names[(event.connection_id, event.request_id)] = key

    def succeeded(self, event):
        self._done(event)

    def failed(self, event):
        self._done(event)

    def _done(self, event):
        key = self.names.pop((event.connection_id, event.request_id), None)
        if key is None:
            return
        with self.lock:
            if self.pid != os.getpid():  # a forked gunicorn worker: its own counts, its own file
                self.pid, self.stats = os.getpid(), {}
                threading.Thread(target=self._dump_loop, daemon=True).start()
            entry = self.stats.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += event.duration_micros

    def _dump_loop(self):
        path = os.path.join(os.environ["E2E_PROFILE_DIR"], f"mongo-{os.getpid()}.json")
        while True:
            time.sleep(1.0)
            with self.lock:
                rows = [[*key, *value] for key, value in self.stats.items()]
            with open(path + ".tmp", "w") as out:
                json.dump({"argv": sys.argv, "rows": rows}, out)
            os.replace(path + ".tmp", path)

def _site():
    """The code that sent the command: the innermost three frames of the project (services/, shared/)."""
    frame, found = sys._getframe(2), []
    while frame is not None and len(found) < 3:
        path = frame.f_code.co_filename
        for top in ("/services/", "/shared/"):
            if top in path and "site-packages" not in path:
                found.append(f"{top[1:]}{path.rsplit(top, 1)[1]}:{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(found)

monitoring.register(_Listener())
'''


def profile_rows(directory: Path, ns: str) -> list[tuple[str, str, str, str, int, float]]:
    """(process kind, database.collection, command, call site, count, seconds) from every dump in the directory."""
    rows = []
    for path in directory.glob("mongo-*.json"):
        try:
            dump = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        argv = " ".join(dump["argv"])
        kind = re.search(r"services[./](\w+)[./](worker|api)|e2e_bare(?:\.py)? (\w+)|(e2e_bare):app", argv)
        if kind and kind.group(1):
            name = f"{kind.group(1)} {kind.group(2)}"
        elif kind:
            name = f"bare {kind.group(3) or 'front'}"
        else:
            name = "gunicorn master"  # its workers' argv is the master's: counted under the master's app above
        for database, collection, command, site, count, micros in dump["rows"]:
            target = f"{database.removeprefix(ns + '_')}.{collection}"
            rows.append((name, target, command, site, count, micros / 1e6))
    return rows


def print_profile(directory: Path, ns: str, system: str, tickets: int, top: int = 30) -> None:
    totals: dict[tuple[str, str, str], list[float]] = {}
    sites: dict[tuple[str, str, str, str], int] = {}
    for name, target, command, site, count, seconds in profile_rows(directory, ns):
        entry = totals.setdefault((name, target, command), [0, 0.0])
        entry[0] += count
        entry[1] += seconds
        sites[(name, target, command, site)] = sites.get((name, target, command, site), 0) + count
    if not totals:
        return
    overall = sum(seconds for _, seconds in totals.values())
    calls = sum(count for count, _ in totals.values())
    print()
    print(
        f"{system}: MongoDB commands per ticket ({tickets} tickets): {calls / tickets:.1f} calls, "
        f"{1000 * overall / tickets:.1f} ms of round trips (including waits in FerretDB); by process, then the top "
        f"{top} by time:"
    )
    processes: dict[str, list[float]] = {}
    for (name, _, _), (count, seconds) in totals.items():
        entry = processes.setdefault(name, [0, 0.0])
        entry[0] += count
        entry[1] += seconds
    for name, (count, seconds) in sorted(processes.items(), key=lambda item: -item[1][1]):
        print(f"  {name:<18} {count / tickets:5.1f} calls/ticket  {1000 * seconds / tickets:6.1f} ms/ticket")
    ranked = sorted(totals.items(), key=lambda item: -item[1][1])[:top]
    for (name, target, command), (count, seconds) in ranked:
        print(
            f"  {name:<18} {target:<32} {command:<14} {count / tickets:5.2f}/ticket  "
            f"{1000 * seconds / max(count, 1):6.2f} ms each  {1000 * seconds / tickets:6.2f} ms/ticket"
        )
    print()
    print(f"{system}: MongoDB commands per ticket by call site (the innermost project frames), the most first:")
    for (name, target, command, site), count in sorted(sites.items(), key=lambda item: -item[1]):
        print(f"  {count / tickets:5.2f}  {name:<16} {target:<26} {command:<14} {site}")


# --- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20, help="tickets per second in the steady phase (20)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase (20)")
    parser.add_argument("--clients", type=int, default=8, help="threads of the max phase (8)")
    parser.add_argument("--workers", type=int, default=1, help="workers per service, consumers per bare role (1)")
    parser.add_argument("--web-concurrency", type=int, default=2, help="gunicorn workers per api (2)")
    parser.add_argument("--agents", type=int, default=10, help="agents of capacity 1000 (10)")
    parser.add_argument("--drain", type=float, default=10, help="seconds after the last POST that still count (10)")
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait for the rest after the drain (120)")
    parser.add_argument("--phases", default="steady,max", help="which phases, in order (steady,max)")
    parser.add_argument("--systems", default="ticketflow,bare", help="which to run, in order (ticketflow,bare)")
    parser.add_argument(
        "--profile-mongo", action="store_true", help="count and time every MongoDB command (adds a little overhead)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory's logs")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the systems in turn this many times (ticketflow, bare, ticketflow, bare...) and print the ratios "
        "of each pair and their median (1)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")

    stop = threading.Event()

    def terminate(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started with SIGINT ignored
    ns = f"tfbench_{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-e2e-"))
    procs = Processes(tmp)
    ferretdb = controller = store = None
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "AMQP_URL": broker_for_benchmark(),
        "TICKETFLOW_NAMESPACE": ns,
        "TICKETFLOW_JWT_SECRET": secret,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "TICKETFLOW_SEARCH_INDEX_DIR": str(tmp / "search-index"),  # removed with the rest at the end
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TICKETFLOW_METRICS_PORT", "TICKETFLOW_DEV"):
        env.pop(name, None)
    rounds: list[list[Result]] = []
    profiles: list[tuple[Path, str, str, int]] = []
    try:
        mongo_url, ferretdb = store_for_benchmark(tmp)
        env["MONGO_URL"] = args.mongo_url = mongo_url
        store = StoreCommands(mongo_url)
        args.store_label = store.label
        sink, controller, smtp_url = start_sink()
        print(f"namespace {ns}, MongoDB {mongo_url}, SMTP sink {smtp_url}, logs in {tmp}", flush=True)
        shared_groups = {"ferretdb": [ferretdb.pid] if ferretdb else [], "bench (load + sink)": [os.getpid()]}
        rabbit = rabbitmq_pid()
        if rabbit:
            shared_groups["rabbitmq"] = [rabbit]
        shared_kinds = {name.replace("rabbitmq", "rabbitmq (the machine's)"): p for name, p in shared_groups.items()}
        turns = [(n, name) for n in range(1, args.rounds + 1) for name in args.systems.split(",")]
        for n, name in turns:
            if n > len(rounds):
                if rounds:  # each round starts afresh: no message, data, index or email of the last one left
                    _delete_topology(env)  # queues and exchanges: each process declares its own again as it starts
                    _drop_databases(env)
                    sink.reset()
                    for index in (tmp / "search-index", procs.log_dir / "bare-index"):
                        shutil.rmtree(index, ignore_errors=True)
                rounds.append([])
            results = rounds[-1]
            print(f"{name}: starting" + (f" (round {n} of {args.rounds})" if args.rounds > 1 else ""), flush=True)
            if args.profile_mongo:
                profile_dir = tmp / f"profile-{name}-{n}"
                profile_dir.mkdir()
                (profile_dir / "sitecustomize.py").write_text(PROFILER)
                env["E2E_PROFILE_DIR"] = str(profile_dir)
                env["PYTHONPATH"] = f"{profile_dir}{os.pathsep}{ROOT}"
            if name == "ticketflow":
                system = start_ticketflow(env, args, procs, smtp_url, secret)
            elif name == "bare":
                system = start_bare(env, args, procs, smtp_url)
            else:
                raise SystemExit(f"unknown system {name!r}")
            meters = Meters(
                groups=lambda: {**shared_groups, **procs.groups()},
                kinds=lambda: {**kinds_of(procs.roots()), **shared_kinds},
                store=store,
                namespace=ns,
            )
            results += run_phases(system, sink, args, meters, stop)
            if args.profile_mongo:
                time.sleep(1.5)  # the last dumps
                phases = len(args.phases.split(","))
                profiles.append((profile_dir, ns, name, WARM_UP + sum(len(r.phase.sent) for r in results[-phases:])))
            procs.stop()
        if sink.repeated:
            print(f"note: {sink.repeated} emails arrived more than once (same Message-ID)")
        for n, results in enumerate(rounds, 1):
            if len(rounds) > 1:
                print(f"\n=== round {n} of {len(rounds)}")
            report(results, args)
        if len(rounds) > 1:
            report_rounds(rounds, args)
        for profile in profiles:
            print_profile(*profile)
        return 0
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        if store is not None:
            store.close()
        cleanup(procs, env, ferretdb, controller, tmp, args.keep_logs)


def cleanup(procs: Processes, env: dict, ferretdb, controller, tmp: Path, keep_logs: bool) -> None:
    steps = [procs.stop]
    if env.get("MONGO_URL"):
        steps += [lambda: _delete_topology(env), lambda: _drop_databases(env)]
    if controller is not None:
        steps.append(controller.stop)
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - clean up what can be cleaned up
            print(f"cleanup: {exc!r}", file=sys.stderr)
    if ferretdb is not None and ferretdb.poll() is None:
        ferretdb.terminate()
        try:
            ferretdb.wait(15)
        except subprocess.TimeoutExpired:
            ferretdb.kill()
            ferretdb.wait()
    if keep_logs:
        shutil.rmtree(tmp / "ferretdb", ignore_errors=True)
        print(f"logs kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _delete_topology(env: dict) -> None:
    from ticketflow.cleanup import delete_topology

    delete_topology(env["AMQP_URL"], env["TICKETFLOW_NAMESPACE"])
    bare.delete(env["AMQP_URL"], env["TICKETFLOW_NAMESPACE"])


def _drop_databases(env: dict) -> None:
    from pymongo import MongoClient

    client = MongoClient(env["MONGO_URL"], serverSelectionTimeoutMS=5000)
    try:
        for name in client.list_database_names():
            if name.startswith(f"{env['TICKETFLOW_NAMESPACE']}_"):
                client.drop_database(name)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
