"""A soak: 10 tickets a second with replies, notes, resolves and reopens; memory, queues and latency each minute.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 10] [--out docs/soak]

Starts the whole system as `ticketflow run` does, one process of each: the five apis (gunicorn,
WEB_CONCURRENCY=2) and the five workers, intake's mail process, on a FerretDB of its own (or MONGO_URL),
the local RabbitMQ (or AMQP_URL) under a namespace `tfsoak_<hex>` of its own, and an SMTP sink inside
this process that records each email's arrival, its ticket number, its To and what it is about (read
from its text, as its reader would). A team of --agents agents of capacity 1000 takes the tickets.

The load is open loop: ticket i is posted at start + i / --rate whatever the answers before it (tickets
due after --minutes are not posted: a generator that fell behind does not make the run longer), by its
requester (a requester-scoped portal token, an Idempotency-Key, as the portal posts). What follows is
decided by the ticket's position i % 20 (so the mix is exact and spread over the run), step by step, each
no earlier than its moment after the 201 and only once the email that prompts it has arrived (who acts
has read it; it looks again every 2 s, for 2 minutes at most, and no step starts later than --tail s
after the last ticket's moment):

    +5 s   the assigned agent replies (50%; half waiting_on_requester)   once the assignment email is in
    +8 s   the agent adds an internal note (20%)                          once the assignment email is in
    +12 s  the requester answers (20%, all of them replied to)            once the reply's email is in
    +20 s  the agent resolves (90%; 10% stay open)                        once the assignment email is in
    +35 s  the requester writes again, which reopens it (10%)             once the resolution email is in
    +50 s  the agent resolves it again (the same 10%)                     once the reopened email is in

About 3 requests and 4 emails per ticket. A stage's latency is timed from the client's request to
the email's arrival at the sink (an email may arrive before the answer is read): POST /tickets ->
receipt (requester) and assignment email (agent); reply -> its email (requester); requester message ->
email to the agent; resolve -> email (requester); reopen -> reopened email (agent). The n-th action of
a kind on a ticket is paired with the n-th email of its kind (a reopen also brings the agent a message
email; the ticket comes back to the same agent, which no assignment email tells). Notes carry a marker:
an email with it is a leak.

Every 10 s (the figure's points) and each minute: the RSS of every process (VmRSS from /proc; an api
is its gunicorn master and workers summed), each service's queue (ready, from passive declares; plus
unacked from `rabbitmqctl` each minute when it can be run), its retry queues and its dead-letter queue,
and the load average. Each minute also the latency percentiles of the actions answered in it. At the
end (after waiting up to --drain s for the last emails): a summary, the samples as JSON (--out + .json)
and the figure (--out + .png, benchmarks/soak_report.py, which can redraw it from the JSON alone).
Everything it created is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import email
import email.header
import heapq
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import e2e  # noqa: E402
from benchmarks.meters import rss_mb, unacked_counts  # noqa: E402
from benchmarks.soak_report import draw, minute_stages, summarize  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.config import SERVICE_PORTS, load_settings  # noqa: E402
from shared.topology import queue_counts  # noqa: E402
from ticketflow.cli import api_command, mail_command, worker_command  # noqa: E402
from ticketflow.local import broker_for_benchmark, free_port, store_for_benchmark  # noqa: E402

SERVICES = [*SERVICE_PORTS, "portal"]
NOTE_MARKER = "SOAK-INTERNAL-NOTE"
SUBJECT_NUMBER = re.compile(r"\[#(\d+)\]")
# what each email is about, from the first line of its text that says so (services/notify/templates)
KINDS = [
    ("receipt", re.compile(r"We have received your request")),
    ("assigned", re.compile(r"is now assigned to you")),
    ("replied", re.compile(r"has replied to your request")),
    ("message", re.compile(r"wrote on ticket")),
    ("resolved", re.compile(r"has been resolved")),
    ("reopened", re.compile(r"has been reopened")),
]
# action -> the emails it causes; the stage of each (action, email) pair is named in soak_report.STAGES
EMAILS_OF = {
    "create": ("receipt", "assigned"),
    "reply": ("replied",),
    "note": (),
    "message": ("message",),
    "reopen": ("reopened", "message"),  # back to the same agent: no assignment email (notify's domain.py)
    "resolve": ("resolved",),
}
# (seconds after the 201 at the earliest, action, the positions i % 20 that get it, the email of the ticket that
# must have arrived first: who acts has read it). A ticket's steps run in this order, each after the one before.
PLAN = [
    (5.0, "reply", range(10), "assigned"),
    (8.0, "note", (0, 5, 10, 15), "assigned"),
    (12.0, "message", (0, 1, 2, 3), "replied"),
    (20.0, "resolve", range(18), "assigned"),
    (35.0, "reopen", (0, 11), "resolved"),
    (50.0, "resolve", (0, 11), "reopened"),
]
CREATE = -1  # the step of a ticket's POST /tickets
SAMPLE_EVERY = 10.0
WAIT, TRIES = 2.0, 60  # an action whose email has not arrived yet looks again every 2 s, for 2 minutes


# --- the SMTP sink ----------------------------------------------------------------------------------


class Sink:
    """aiosmtpd handler: every email's (ticket number, To, kind, arrival); notes leaked; kinds not recognised."""

    def __init__(self) -> None:
        self.emails: list[tuple[int, str, str, float]] = []
        self.agent_of: dict[int, str] = {}  # ticket number -> the agent id its assignment email went to
        self.seen: set[tuple[int, str]] = set()  # (ticket number, kind) of every email arrived
        self.leaked_notes = 0
        self.unknown = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        at = time.time()
        # The plain (compat32) parser: the modern one costs over ten times as much (1.8 ms an email), CPU the
        # system under test would not have.
        message = email.message_from_bytes(envelope.content)
        part = next((part for part in message.walk() if part.get_content_type() == "text/plain"), None)
        text = _text_of(part) if part is not None else ""
        subject = email.header.make_header(email.header.decode_header(message.get("Subject", "")))
        number = SUBJECT_NUMBER.search(str(subject))
        kind = next((name for name, pattern in KINDS if pattern.search(text)), None)
        with self.lock:
            self.leaked_notes += NOTE_MARKER in text
            if number and kind:
                to = str(message.get("To", "")).strip().lower()
                self.emails.append((int(number.group(1)), to, kind, at))
                self.seen.add((int(number.group(1)), kind))
                if kind == "assigned":
                    self.agent_of.setdefault(int(number.group(1)), to.split("@")[0])
            else:
                self.unknown += 1
        return "250 OK"

    def snapshot(self) -> list[tuple[int, str, str, float]]:
        with self.lock:
            return list(self.emails)


def _text_of(part) -> str:
    payload = part.get_payload(decode=True) or b""
    return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


# --- the load ---------------------------------------------------------------------------------------


@dataclass
class Ticket:
    id: str
    number: int
    requester: str
    position: int  # i % 20: which actions it gets
    created: float  # when the 201 was read
    agent: str | None = None  # known from its assignment email
    waits: int = 0  # times the current step looked for its email in vain
    actions: list[tuple[str, float]] = field(default_factory=list)  # (kind, when the request was sent), answered 2xx


@dataclass
class Answer:
    kind: str
    at: float  # when the answer was read (time.time())
    ms: float
    ok: bool


class Load:
    """Open loop: a heap of due actions, a dispatcher that hands each to a thread pool at its moment."""

    def __init__(self, urls: dict[str, str], secret: str, topic: str, sink: Sink, ttl: int, tail: float) -> None:
        self.urls, self.secret, self.topic, self.sink, self.ttl = urls, secret, topic, sink, ttl
        self.tickets: dict[int, Ticket] = {}
        self.answers: list[Answer] = []
        self.errors: dict[str, list[str]] = {}
        self.deferred = self.given_up = self.unsent = self.dropped = 0
        self.until, self.tail = 0.0, tail
        self.lateness: list[float] = []
        self.lock = threading.Lock()
        self.due: list[tuple[float, int, int, int]] = []  # (moment, seq, step of PLAN or CREATE, ticket index)
        self.wake = threading.Condition()
        self.seq = 0
        self.pool = ThreadPoolExecutor(24, thread_name_prefix="soak")
        self.tokens: dict[str, str] = {}
        self.in_flight = 0

    def schedule(self, moment: float, step: int, index: int) -> None:
        with self.wake:
            self.seq += 1
            heapq.heappush(self.due, (moment, self.seq, step, index))
            self.wake.notify()

    def next_step(self, ticket: Ticket, index: int, after: int) -> None:
        """Schedule the ticket's first step of PLAN after `after` that its position gets, if any."""
        for step in range(after + 1, len(PLAN)):
            if ticket.position in PLAN[step][2]:
                ticket.waits = 0
                return self.schedule(max(time.time(), ticket.created + PLAN[step][0]), step, index)
        return None

    def run(self, start: float, rate: float, seconds: float, stop: threading.Event) -> None:
        """Post --rate tickets a second until start + seconds; the dispatcher runs the follow-ups too."""
        total, self.until = int(rate * seconds), start + seconds
        for i in range(total):
            self.schedule(start + i / rate, CREATE, i)
        while not stop.is_set():
            with self.wake:
                if not self.due:
                    if self.in_flight == 0:
                        return
                    self.wake.wait(0.5)
                    continue
                moment, _, step, index = self.due[0]
                delay = moment - time.time()
                if delay > 0:
                    self.wake.wait(min(delay, 0.5))
                    continue
                heapq.heappop(self.due)
                self.in_flight += 1
            self.lateness.append(-delay)
            self.pool.submit(self._guarded, step, index)

    def _guarded(self, step: int, index: int) -> None:
        try:
            self.act(step, index)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts failures and goes on
            self._error("create" if step == CREATE else PLAN[step][1], repr(exc))
        finally:
            with self.wake:
                self.in_flight -= 1
                self.wake.notify()

    def token(self, role: str, who: str) -> str:
        if who not in self.tokens:
            if role == "agent":
                self.tokens[who] = issue_token(self.secret, "agent", agent_id=who, ttl=self.ttl)
            else:
                self.tokens[who] = issue_token(self.secret, "portal", requester_email=who, ttl=self.ttl)
        return self.tokens[who]

    def act(self, step: int, index: int) -> None:
        if step == CREATE and time.time() > self.until:
            with self.lock:
                self.unsent += 1  # the run is over: a generator that fell behind does not make it longer
            return None
        if step == CREATE:
            return self.create(index)
        if time.time() > self.until + self.tail:
            with self.lock:
                self.dropped += 1  # a step still waiting this long after the last ticket: the run is over
            return None
        ticket, (_, kind, _, needs) = self.tickets[index], PLAN[step]
        with self.sink.lock:
            ticket.agent = self.sink.agent_of.get(ticket.number)
            ready = (ticket.number, needs) in self.sink.seen
        if not ready:
            with self.lock:
                self.deferred += 1
                self.given_up += ticket.waits >= TRIES
            ticket.waits += 1
            if ticket.waits > TRIES:
                return self.next_step(ticket, index, step)
            return self.schedule(time.time() + WAIT, step, index)
        self.perform(ticket, kind)
        return self.next_step(ticket, index, step)

    def perform(self, ticket: Ticket, kind: str) -> None:
        agent = self.token("agent", ticket.agent) if ticket.agent else None
        requester = self.token("portal", ticket.requester)
        base = f"/tickets/{ticket.id}"
        service, path, token, body = {
            "reply": ("assignment", f"{base}/replies", agent, {
                "body": "Could you restart the printer and tell me what the panel shows?",
                "status": "waiting_on_requester" if ticket.position % 2 == 0 else "in_progress"}),
            "note": ("assignment", f"{base}/notes", agent, {"body": f"Driver 4.2 known bad ({NOTE_MARKER})."}),
            "message": ("intake", f"{base}/messages", requester, {"body": "Restarted; it still says offline."}),
            "resolve": ("assignment", f"{base}/resolve", agent, {"resolution": "Reinstalled the driver 4.3."}),
            "reopen": ("intake", f"{base}/messages", requester, {"body": "It is offline again since this morning."}),
        }[kind]  # fmt: skip
        sent = time.time()
        status, answer, ms = self._timed(self.urls[service], "POST", path, token, body)
        self._answered(kind, sent, status, answer, ms, ticket)

    def create(self, index: int) -> None:
        requester = f"requester{index % 1000}@example.com"
        body = {
            "subject": f"Printer on floor 3 will not print ({index})",
            "description": "It shows 'offline' although it is on the network. " * 4,
            "requester": {"name": "Ana Ruiz", "email": requester},
            "topic": self.topic,
            "priority": "normal",
            "source": "web",
        }
        token = self.token("portal", requester)
        sent = time.time()
        status, answer, ms = self._timed(self.urls["intake"], "POST", "/tickets", token, body, uuid.uuid4().hex)
        ticket = None
        if status == 201:
            ticket = Ticket(answer["id"], answer["number"], requester, index % 20, time.time())
            with self.lock:
                self.tickets[index] = ticket
            self.next_step(ticket, index, CREATE)
        self._answered("create", sent, status, answer, ms, ticket)

    def _timed(self, url: str, method: str, path: str, token: str, body: dict, key: str | None = None):
        started = time.perf_counter()
        try:
            status, answer = call_with_key(url, method, path, token, body, key)
        except OSError as exc:
            status, answer = 0, {"error": repr(exc)}
        return status, answer, 1000 * (time.perf_counter() - started)

    def _answered(self, kind: str, sent: float, status: int, answer: dict, ms: float, ticket: Ticket | None) -> None:
        at, good = time.time(), 200 <= status < 300
        with self.lock:
            self.answers.append(Answer(kind, at, ms, good))
            if ticket is not None and good:
                ticket.actions.append((kind, sent))  # a stage runs from the request: its email may beat the answer
        if not good:
            self._error(kind, f"{status} {str(answer)[:200]}")

    def _error(self, kind: str, text: str) -> None:
        with self.lock:
            self.errors.setdefault(kind, []).append(text)


def call_with_key(url: str, method: str, path: str, token: str, body: dict, key: str | None):
    """e2e's call, with an Idempotency-Key when given (as the portal sends POST /tickets)."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        conn.request(method, path, json.dumps(body).encode(), headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, (json.loads(raw) if raw else {})


# --- what is sampled --------------------------------------------------------------------------------


class Sampler:
    """Every SAMPLE_EVERY s: RSS per process group, queue counts, load average; each minute a line on stdout."""

    def __init__(self, env: dict, groups, load: Load, sink: Sink, start: float) -> None:
        self.env, self.groups, self.load, self.sink, self.start = env, groups, load, sink, start
        self.settings = load_settings(env)
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.next_minute = 1

    def _loop(self) -> None:
        while not self.stop.wait(max(self.start + SAMPLE_EVERY * len(self.samples) - time.time(), 0)):
            try:
                self.take()
            except Exception as exc:  # noqa: BLE001 - a missed sample is reported, the run goes on
                print(f"  sample failed: {exc!r}", file=sys.stderr, flush=True)

    def take(self, unacked: bool | None = None) -> dict:
        import pika

        now = time.time()
        elapsed = now - self.start
        minute = elapsed >= 60 * self.next_minute - 1
        rss = {name: round(sum(rss_mb(pid) for pid in pids), 1) for name, pids in self.groups().items()}
        queues = {}
        connection = pika.BlockingConnection(pika.URLParameters(self.env["AMQP_URL"]))
        try:
            for service in SERVICE_PORTS:
                counts = queue_counts(connection, self.settings, service)
                queues[service] = {"ready": counts.messages, "retrying": counts.retrying, "dead": counts.dead,
                                   "consumers": counts.consumers}  # fmt: skip
        finally:
            connection.close()
        if minute or unacked:
            listed = unacked_counts(self.settings.namespace)
            for service, counts in queues.items():
                pair = (listed or {}).get(f"{self.settings.namespace}.{service}")
                counts["unacked"] = pair[1] if pair else None
        with self.load.lock:
            tickets, answers = len(self.load.tickets), len(self.load.answers)
        sample = {"t": round(elapsed, 1), "rss_mb": rss, "queues": queues, "load": list(os.getloadavg()),
                  "tickets": tickets, "answers": answers, "emails": len(self.sink.snapshot())}  # fmt: skip
        self.samples.append(sample)
        if minute:
            self.next_minute = round(elapsed / 60) + 1
            self._print_minute(sample)
        return sample

    def _print_minute(self, sample: dict) -> None:
        depth = sum((q["ready"] or 0) + (q.get("unacked") or 0) for q in sample["queues"].values())
        dead = sum(q["dead"] or 0 for q in sample["queues"].values())
        rss = sample["rss_mb"]
        services = sum(mb for name, mb in rss.items() if name not in ("ferretdb", "rabbitmq"))
        print(
            f"  {sample['t'] / 60:5.1f} min: {sample['tickets']} tickets, {sample['answers']} answers, "
            f"{sample['emails']} emails; services' RSS {services:.0f} MB, ferretdb {rss.get('ferretdb', 0):.0f} MB; "
            f"queued {depth}, dead {dead}; load average {sample['load'][0]:.1f}",
            flush=True,
        )


# --- the system -------------------------------------------------------------------------------------


def start_system(env: dict, procs: e2e.Processes, smtp_url: str, agents: int) -> tuple[dict[str, str], str]:
    """Every api and worker (one each) and intake's mail process; a topic, its team and agents. -> (urls, topic)."""
    urls = {service: f"http://127.0.0.1:{free_port()}" for service in SERVICES}
    service_env = {**env, "SMTP_URL": smtp_url, "WEB_CONCURRENCY": "2",
                   "TICKETFLOW_REQUESTER_TICKETS_PER_HOUR": "1000000",
                   "TICKETFLOW_REQUESTER_MESSAGES_PER_HOUR": "1000000",
                   "TICKETFLOW_INBOUND_SMTP": f"127.0.0.1:{free_port()}",
                   **{f"TICKETFLOW_{service.upper()}_URL": url for service, url in urls.items()}}  # fmt: skip
    for service, url in urls.items():
        procs.start(f"{service} api", api_command(service, int(url.rsplit(":", 1)[1])), service_env)
        procs.start(f"{service} worker", worker_command(service), service_env)
    procs.start("intake mail", mail_command(), service_env)
    for url in urls.values():
        e2e.wait_healthy(url, procs)
    ns = env["TICKETFLOW_NAMESPACE"]
    e2e.wait_consumers(env["AMQP_URL"], dict.fromkeys((f"{ns}.{service}" for service in SERVICE_PORTS), 1), procs)

    admin = issue_token(env["TICKETFLOW_JWT_SECRET"], "admin")
    topic, team = f"soak-{secrets.token_hex(3)}", f"team-{secrets.token_hex(3)}"
    e2e.ok(urls["intake"], "PUT", f"/topics/{topic}", admin, {"name": "Soak"})
    e2e.ok(urls["assignment"], "POST", "/teams", admin, {"id": team, "name": "Soak", "topics": [topic]})
    for k in range(agents):
        agent = {"id": f"agent{k}", "name": f"Agent {k}", "email": f"agent{k}@example.com", "teams": [team],
                 "capacity": 1000}  # fmt: skip
        e2e.ok(urls["assignment"], "POST", "/agents", admin, agent)
    return urls, topic


def expected_emails(load: Load) -> int:
    with load.lock:
        return sum(len(EMAILS_OF[kind]) for t in load.tickets.values() for kind, _ in t.actions if kind in EMAILS_OF)


def drain(load: Load, sink: Sink, sampler: Sampler, seconds: float) -> None:
    """Wait for the emails the actions cause and for empty queues, up to `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        queued = sampler.samples[-1]["queues"] if sampler.samples else {}
        busy = any((q["ready"] or 0) + (q["retrying"] or 0) for q in queued.values())
        if len(sink.snapshot()) >= expected_emails(load) and not busy:
            return
        time.sleep(1.0)


# --- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="how long tickets are posted (10)")
    parser.add_argument("--rate", type=float, default=10, help="tickets per second (10)")
    parser.add_argument("--agents", type=int, default=10, help="agents of capacity 1000 (10)")
    parser.add_argument("--tail", type=float, default=120, help="seconds after the last ticket for its steps (120)")
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait for the last emails (120)")
    parser.add_argument("--out", default="docs/soak", help="where the data (.json) and figure (.png) go (docs/soak)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()

    def terminate(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ns = f"tfsoak_{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="ticketflow-soak-"))
    procs = e2e.Processes(tmp)
    ferretdb = controller = sampler = meter = None
    stop = threading.Event()
    env = {**os.environ, "AMQP_URL": broker_for_benchmark(), "TICKETFLOW_NAMESPACE": ns,
           "TICKETFLOW_JWT_SECRET": secrets.token_urlsafe(32), "PYTHONPATH": str(ROOT),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TICKETFLOW_METRICS_PORT", "TICKETFLOW_DEV"):
        env.pop(name, None)
    try:
        mongo_url, ferretdb = store_for_benchmark(tmp)
        env["MONGO_URL"] = mongo_url
        from aiosmtpd.controller import Controller

        sink, smtp_port = Sink(), free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        print(f"namespace {ns}, MongoDB {mongo_url}, logs in {tmp}", flush=True)
        urls, topic = start_system(env, procs, f"smtp://127.0.0.1:{smtp_port}", args.agents)
        shared = {"ferretdb": [ferretdb.pid] if ferretdb else []}
        if rabbit := e2e.rabbitmq_pid():
            shared["rabbitmq"] = [rabbit]

        def groups() -> dict[str, list[int]]:
            return {**procs.groups(), **{name: e2e.process_tree(pids) for name, pids in shared.items()}}

        seconds = 60 * args.minutes
        load = Load(urls, env["TICKETFLOW_JWT_SECRET"], topic, sink, ttl=int(seconds) + 3600, tail=args.tail)
        start = time.time() + 0.5
        sampler = Sampler(env, groups, load, sink, start)
        print(f"posting {args.rate:g} tickets/s for {args.minutes:g} min, one line a minute:", flush=True)
        time.sleep(0.5)
        sampler.thread.start()
        meter = e2e.CpuMeter(groups())
        load.run(start, args.rate, seconds, stop)
        print(f"  the last action answered at {(time.time() - start) / 60:.1f} min; draining", flush=True)
        drain(load, sink, sampler, args.drain)
        write(args, load, sink, sampler, meter, start)
        return 0
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        if meter is not None and sampler.samples:  # what was measured so far is still worth a look
            stop.set()
            write(args, load, sink, sampler, meter, start)
        return 130
    finally:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        e2e.cleanup(procs, env, ferretdb, controller, tmp, args.keep_logs)


def write(args, load: Load, sink: Sink, sampler: Sampler, meter: e2e.CpuMeter, start: float) -> None:
    """The last sample, then the data, the figure and the summary."""
    last_action = max((a.at for a in load.answers), default=start) - start
    sampler.stop.set()
    sampler.thread.join()
    sampler.take(unacked=True)
    cpu, wall = meter.used(), time.time() - start
    data = summarize_run(args, load, sink, sampler, start, last_action)
    data["cpu"] = {"wall_s": round(wall, 1), "seconds": {name: round(used, 1) for name, used in cpu.items()}}
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    draw(data, out.with_suffix(".png"))
    print(summarize(data))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def summarize_run(args, load: Load, sink: Sink, sampler: Sampler, start: float, last_action: float) -> dict:
    """The figures the report and the figure read: small enough to commit."""
    with load.lock:
        tickets = [(t.number, t.requester, sink.agent_of.get(t.number), list(t.actions)) for t in load.tickets.values()]
        answers = [(a.kind, a.at - start, a.ms, a.ok) for a in load.answers]
        errors = {kind: {"count": len(found), "first": found[0]} for kind, found in load.errors.items()}
    emails = [(number, to, kind, at - start) for number, to, kind, at in sink.snapshot()]
    tickets = [(number, requester, agent, [(kind, at - start) for kind, at in actions])
               for number, requester, agent, actions in tickets]  # fmt: skip
    minutes, totals = minute_stages(tickets, emails, answers, EMAILS_OF)
    lateness = sorted(load.lateness)
    return {
        "run": {
            "minutes": args.minutes, "rate": args.rate, "agents": args.agents, "cores": os.cpu_count(),
            "plan": [[after, kind, len(positions) * 5, needs] for after, kind, positions, needs in PLAN],
            "last_action_s": round(last_action, 1), "tickets": len(tickets), "emails": len(emails),
            "generator_late_p99_ms": round(1000 * lateness[int(0.99 * (len(lateness) - 1))], 1) if lateness else None,
        },
        "checks": {
            "errors": errors, "deferred": load.deferred, "given_up": load.given_up, "unsent": load.unsent,
            "dropped": load.dropped, "leaked_notes": sink.leaked_notes,
            "unrecognised_emails": sink.unknown, **totals,
        },
        "samples": sampler.samples,
        "minutes": minutes,
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
