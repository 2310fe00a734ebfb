"""The bare baseline of benchmarks/e2e.py: ticketflow's first stage as raw pymongo + pika, nothing else.

Per ticket it does the same broker hops as ticketflow (5 confirmed, persistent, mandatory publishes; 14
deliveries, each acked after its writes) and 44 MongoDB writes, in the same process
layout: an HTTP front under gunicorn (`benchmarks.e2e_bare:app`) and one consumer process per role
(`python -m benchmarks.e2e_bare assignment|sla|notify|intake|search`), each role with its own database
`<ns>_bare_<role>` (the front shares intake's, as intake's api and worker do). No validation, no
reads, no secondary indexes, no domain logic: the agent is picked round-robin by ticket number, the
emails are a fixed text and HTML body of the size of notify's. See benchmarks/e2e.py for the counts,
with references to the code that makes them.

    front        POST /tickets: counter $inc, ticket insert (with its event in `_outbox`),
                 publish `created`, clear the outbox                               3 writes, 1 publish
    assignment   created: ticket insert, agent reservation ($push), ticket save with `assigned` in
                 its outbox, publish `assigned`, clear the outbox, processed mark;
                 deadlines: ticket save, processed mark                           7 writes, 1 publish
    sla          created: clocks insert with `deadlines` in its outbox, publish `deadlines`, clear the
                 outbox, processed mark; assigned: the ticket's team and agent (an
                 upsert), processed mark                                          5 writes, 1 publish
    notify       created: projection insert, receipt record, processed mark;
                 assigned: projection save, assignment record, processed mark;
                 deadlines: processed mark;
                 each record (sender threads): claim, SMTP, save as sent with `sent` in its outbox,
                 publish `sent`, clear the outbox                                13 writes, 2 publishes
    intake       created: timeline, processed; assigned: ticket save, timeline, processed;
                 sent (x2): timeline, processed; deadlines: ticket save, timeline,
                 processed                                                       12 writes
    search       created: document insert, processed; assigned: document update (findAndModify, the
                 document after it), processed; each time the whole document to a tantivy index of
                 search's schema and analyzers, committed every 0.5 s by a timer  4 writes
    deliveries   created -> assignment, sla, notify, intake, search; assigned -> sla, notify, intake,
                 search; sent x2 -> intake; deadlines -> assignment, notify, intake

Search (issue 18's sixth service) came after the first four, and sla's reading of ticket.assigned (who may
read a ticket's clocks) with issue 11: until 2026-12-01 the baseline had neither, and did 31 writes and 8
deliveries a ticket against ticketflow's 11. sla's `sla.deadlines_changed` (its clocks' deadlines from the start,
for assignment's queue and intake's ticket) came on 2026-12-04: 37 writes, 4 publishes and 11 deliveries until then.

Environment: MONGO_URL, AMQP_URL, SMTP_URL, BARE_NS (exchange `<ns>.bare`, queues `<ns>.bare.<role>`),
BARE_AGENTS (how many agents, `agent<k>@bare.example.com`), BARE_INDEX_DIR (the search role's index goes
in `<dir>/<ns>`).
"""

from __future__ import annotations

import json
import os
import queue
import smtplib
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pika
import tantivy
from pymongo import MongoClient, ReturnDocument

ROLES = ("assignment", "sla", "notify", "intake", "search")
BINDINGS = {
    "assignment": ("created", "deadlines"),
    "sla": ("created", "assigned"),
    "notify": ("created", "assigned", "deadlines"),
    "intake": ("created", "assigned", "sent", "deadlines"),
    "search": ("created", "assigned"),
}
DATABASE_OF = {"front": "intake", **{role: role for role in ROLES}}
COMMIT_INTERVAL = 0.5  # seconds between the search role's index commits, as search's worker
SENDERS = 4  # notify's sender threads (ticketflow's dispatcher: 8 senders, at most half per endpoint)
PREFETCH = 20  # as shared/consumer.py
TEXT = "Hello,\n\nwe have received your request and will answer soon.\n\n" + "Details follow. " * 40
HTML = f"<html><body><p>{TEXT}</p>{'<p>Details follow.</p>' * 30}</body></html>"


def namespace() -> str:
    return os.environ["BARE_NS"]


def exchange_name(ns: str) -> str:
    return f"{ns}.bare"


def queue_of(ns: str, role: str) -> str:
    return f"{ns}.bare.{role}"


def database_name(ns: str, role: str) -> str:
    return f"{ns}_bare_{DATABASE_OF[role]}"


def connection_parameters(amqp_url: str) -> pika.URLParameters:
    params = pika.URLParameters(amqp_url)
    params.heartbeat = 0  # idle connections between phases are fine; the benchmark ends them
    return params


def declare(amqp_url: str, ns: str) -> None:
    """The exchange and one durable queue per role, bound to the event types it consumes."""
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(exchange_name(ns), exchange_type="topic", durable=True)
    for role, kinds in BINDINGS.items():
        channel.queue_declare(queue_of(ns, role), durable=True)
        for kind in kinds:
            channel.queue_bind(queue_of(ns, role), exchange_name(ns), routing_key=kind)
    connection.close()


def delete(amqp_url: str, ns: str) -> None:
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    for role in BINDINGS:
        channel = connection.channel()
        try:
            channel.queue_delete(queue_of(ns, role))
            channel.close()
        except pika.exceptions.AMQPError:
            pass
    connection.channel().exchange_delete(exchange_name(ns))
    connection.close()


def now() -> datetime:
    return datetime.now(UTC)


def event(kind: str, ticket_id: str, data: dict) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "ticket_id": ticket_id,
        "occurred_at": now().isoformat(),
        "data": data,
    }


class Publisher:
    """One confirming channel (a BlockingConnection belongs to one thread)."""

    def __init__(self, amqp_url: str, ns: str, connection: pika.BlockingConnection | None = None) -> None:
        self.connection = connection or pika.BlockingConnection(connection_parameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.exchange = exchange_name(ns)

    def publish(self, envelope: dict) -> None:
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=envelope["event_id"],
            type=envelope["type"],
        )
        self.channel.basic_publish(
            self.exchange, envelope["type"], json.dumps(envelope).encode(), props, mandatory=True
        )


def _outbox(envelope: dict) -> dict:
    return {envelope["event_id"]: {"type": envelope["type"], "body": json.dumps(envelope)}}


def _client() -> MongoClient:
    return MongoClient(os.environ["MONGO_URL"], tz_aware=True)


# --- the HTTP front (gunicorn benchmarks.e2e_bare:app) ------------------------------------------------

try:
    from flask import Flask, request
except ImportError:  # the consumers do not need Flask
    app = None
else:
    app = Flask(__name__)
    _front: dict = {}

    def _front_state() -> dict:
        if _front.get("pid") != os.getpid():  # after gunicorn's fork, like the real service
            ns = namespace()
            db = _client()[database_name(ns, "front")]
            _front.update(pid=os.getpid(), db=db, publisher=Publisher(os.environ["AMQP_URL"], ns))
        return _front

    @app.post("/tickets")
    def create_ticket():
        state = _front_state()
        db, body = state["db"], json.loads(request.get_data())
        number = db["counters"].find_one_and_update(  # write 1
            {"_id": "ticket_number"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )["value"]
        at = now()
        ticket_id = uuid.uuid4().hex
        created = event("created", ticket_id, {"number": number, **body})
        doc = {"_id": ticket_id, "number": number, **body, "status": "new", "assignee": None, "thread": []}
        doc |= {"created_at": at, "updated_at": at, "_v": 1, "_outbox": _outbox(created), "_outbox_n": 1}
        db["tickets"].insert_one(doc)  # write 2
        state["publisher"].publish(created)
        db["tickets"].update_one(  # write 3
            {"_id": ticket_id, "_v": 1, "_outbox_n": 1}, {"$unset": {"_outbox": "", "_outbox_n": ""}}
        )
        return {"id": ticket_id, "number": number, "subject": body["subject"], "status": "new"}, 201


# --- the consumers ------------------------------------------------------------------------------------


class Role:
    def __init__(self, role: str) -> None:
        self.role, self.ns = role, namespace()
        self.amqp_url = os.environ["AMQP_URL"]
        self.client = _client()
        self.db = self.client[database_name(self.ns, role)]
        self.agents = int(os.environ.get("BARE_AGENTS", "10"))
        self.connection = pika.BlockingConnection(connection_parameters(self.amqp_url))
        self.publisher = Publisher(self.amqp_url, self.ns, self.connection)
        self.handle = getattr(self, f"on_{role}")
        if role == "notify":
            self.outgoing: queue.Queue = queue.Queue()
            for _ in range(SENDERS):
                threading.Thread(target=self._sender, daemon=True).start()
        if role == "search":
            self._open_index()

    def run(self) -> None:
        channel = self.connection.channel()
        channel.basic_qos(prefetch_count=PREFETCH)
        channel.basic_consume(queue_of(self.ns, self.role), self._deliver)
        print(f"bare {self.role} consumer started", flush=True)
        channel.start_consuming()

    def _deliver(self, channel, method, _props, body: bytes) -> None:
        envelope = json.loads(body)
        self.handle(envelope)
        self.db["processed_events"].insert_one({"_id": envelope["event_id"], "at": now()})  # the last write
        channel.basic_ack(method.delivery_tag)

    # assignment: 4 writes here + processed = 5; 1 publish (deadlines: 1 write + processed)
    def on_assignment(self, envelope: dict) -> None:
        data, ticket_id = envelope["data"], envelope["ticket_id"]
        tickets = self.db["tickets"]
        if envelope["type"] == "deadlines":  # the queue's order
            tickets.update_one({"_id": ticket_id}, {"$set": {"sla": data, "sla_sort": data["first_response_due_at"]}})
            return
        doc = {"_id": ticket_id, "number": data["number"], "subject": data["subject"], "topic": data["topic"]}
        doc |= {"priority": data["priority"], "team": "bare", "agent_id": None, "status": "new", "history": []}
        tickets.insert_one({**doc, "created_at": now(), "_v": 1})
        k = data["number"] % self.agents
        agent = {"id": f"agent{k}", "name": f"Agent {k}", "email": f"agent{k}@bare.example.com"}
        self.db["agents"].update_one(
            {"_id": agent["id"]},
            {"$push": {"open": ticket_id}, "$set": {"last_assigned_at": now()}, "$inc": {"_v": 1}},
            upsert=True,
        )
        assigned = event("assigned", ticket_id, {"agent": agent, "team": "bare"})
        tickets.update_one(
            {"_id": ticket_id, "_v": 1},
            {
                "$set": {"agent_id": agent["id"], "status": "assigned", "_v": 2, "_outbox": _outbox(assigned)},
                "$push": {"history": {"agent_id": agent["id"], "at": now(), "rule": "round-robin"}},
            },
        )
        self.publisher.publish(assigned)
        tickets.update_one({"_id": ticket_id, "_v": 2}, {"$unset": {"_outbox": ""}})

    # sla: 1 write here + processed = 2 per event; created: 1 publish and its clear besides
    def on_sla(self, envelope: dict) -> None:
        at = now()
        if envelope["type"] == "assigned":  # who may read the ticket's clocks: its team and agent
            access = {"team": envelope["data"]["team"], "agent_id": envelope["data"]["agent"]["id"], "assigned_at": at}
            self.db["ticket_access"].update_one({"_id": envelope["ticket_id"]}, {"$set": access}, upsert=True)
            return
        clocks = {
            name: {"state": "running", "started_at": at, "due_at": at + timedelta(minutes=minutes), "elapsed": 0}
            for name, minutes in (("first_response", 240), ("resolution", 1440))
        }
        doc = {"_id": envelope["ticket_id"], "priority": envelope["data"]["priority"], "clocks": clocks}
        due = {f"{name}_due_at": clock["due_at"].isoformat() for name, clock in clocks.items()}
        deadlines = event("deadlines", envelope["ticket_id"], {**due, "next_response_due_at": None, "revision": 1})
        extra = {"next_due": at + timedelta(minutes=192), "created_at": at, "_v": 1, "_outbox": _outbox(deadlines)}
        self.db["clocks"].insert_one({**doc, **extra})
        self.publisher.publish(deadlines)
        self.db["clocks"].update_one({"_id": envelope["ticket_id"], "_v": 1}, {"$unset": {"_outbox": ""}})

    # notify: 2 writes here + processed = 3 per event; 3 writes and 1 publish per record in _sender; deadlines:
    # processed only (no email, no webhook)
    def on_notify(self, envelope: dict) -> None:
        ticket_id, data, views = envelope["ticket_id"], envelope["data"], self.db["tickets"]
        if envelope["type"] == "deadlines":
            return
        if envelope["type"] == "created":
            view = {"_id": ticket_id, "number": data["number"], "subject": data["subject"]}
            views.insert_one({**view, "requester": data["requester"], "agent": None, "_v": 1})
            recipient = data["requester"]["email"]
        else:
            view = views.find_one_and_update({"_id": ticket_id}, {"$set": {"agent": data["agent"]}, "$inc": {"_v": 1}})
            recipient = data["agent"]["email"]
        record = {
            "_id": str(uuid.uuid4()),
            "event_id": envelope["event_id"],
            "ticket_id": ticket_id,
            "recipient": recipient,
            "subject": f"[#{view['number']}] {view['subject']}",
            "body": TEXT,
            "html": HTML,
            "status": "pending",
            "created_at": now(),
            "next_attempt_at": now(),
            "_v": 1,
        }
        self.db["notifications"].insert_one(record)
        self.outgoing.put(record)

    def _sender(self) -> None:
        publisher = Publisher(self.amqp_url, self.ns)
        while True:
            record = self.outgoing.get()
            try:
                self._send(publisher, record)
            except Exception as exc:  # noqa: BLE001 - a benchmark: report and go on (the ticket never completes)
                print(f"bare notify: sending {record['_id']} failed: {exc!r}", file=sys.stderr, flush=True)

    def _send(self, publisher: Publisher, record: dict) -> None:
        records = self.db["notifications"]
        host, port = os.environ["SMTP_URL"].removeprefix("smtp://").rsplit(":", 1)
        records.update_one(
            {"_id": record["_id"], "_v": 1},
            {"$set": {"next_attempt_at": now() + timedelta(seconds=60)}, "$inc": {"_v": 1}},
        )
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            "helpdesk@localhost",
            record["recipient"],
            record["subject"],
        )
        message["Message-ID"] = f"<{record['_id']}@bare>"
        message.set_content(record["body"])
        message.add_alternative(record["html"], subtype="html")
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:  # one connection per email, as notify's mailer
            smtp.send_message(message)
        sent = event("sent", record["ticket_id"], {"notification_id": record["_id"]})
        records.update_one(
            {"_id": record["_id"], "_v": 2},
            {
                "$set": {"status": "sent", "sent_at": now(), "next_attempt_at": None, "_outbox": _outbox(sent)},
                "$inc": {"_v": 1},
            },
        )
        publisher.publish(sent)
        records.update_one({"_id": record["_id"], "_v": 3}, {"$unset": {"_outbox": ""}})

    # search: 1 write here + processed = 2 per event; the ticket's whole document written to the index
    def on_search(self, envelope: dict) -> None:
        ticket_id, data, docs = envelope["ticket_id"], envelope["data"], self.db["tickets"]
        if envelope["type"] == "created":
            doc = {"_id": ticket_id, "number": data["number"], "subject": data["subject"]}
            doc |= {"description": data["description"], "requester_email": data["requester"]["email"].lower()}
            doc |= {"status": "new", "team": None, "agent_id": None, "created_at": now().isoformat(), "_v": 1}
            docs.insert_one(doc)
        else:
            change = {"team": data["team"], "agent_id": data["agent"]["id"], "status": "assigned"}
            doc = docs.find_one_and_update(
                {"_id": ticket_id}, {"$set": change, "$inc": {"_v": 1}}, return_document=ReturnDocument.AFTER
            )
        fields = {name: doc[name] for name in ("status", "team", "agent_id", "requester_email", "created_at")}
        fields = {name: value for name, value in fields.items() if value}
        fields |= {"ticket_id": ticket_id, "number": doc["number"], "subject": doc["subject"]}
        fields |= {"description": doc["description"], "plain": [doc["subject"], doc["description"]]}
        fields |= {self.copy_of(name): self.joined(doc[name]) for name in ("subject", "description")}  # as search's
        with self.index_lock:
            self.writer.delete_documents_by_term("ticket_id", ticket_id)
            self.writer.add_document(tantivy.Document(**fields))
            self.dirty = True

    def _open_index(self) -> None:
        """An index of search's schema and analyzers (services/search/engine.py) in BARE_INDEX_DIR, one writer
        thread and heap as search's worker, and a timer thread that commits every COMMIT_INTERVAL."""
        from services.search import queries
        from services.search.engine import WRITER_HEAP, build_schema, limit_malloc_arenas

        limit_malloc_arenas()
        path = os.path.join(os.environ["BARE_INDEX_DIR"], self.ns)
        os.makedirs(path, exist_ok=True)
        index = tantivy.Index(build_schema(), path=path, reuse=True)
        for name, analyser in queries.TOKENIZERS.items():
            index.register_tokenizer(name, analyser)
        self.writer, self.index_lock, self.dirty = index.writer(WRITER_HEAP, 1), threading.Lock(), False
        self.joined, self.copy_of = queries.joined, queries.copy_of  # the text fields' joined copies, as search's

        def commit_rounds() -> None:
            while True:
                time.sleep(COMMIT_INTERVAL)
                with self.index_lock:
                    if self.dirty:
                        self.writer.commit()
                        self.dirty = False

        threading.Thread(target=commit_rounds, daemon=True).start()

    # intake: 1 or 2 writes here + processed = 2 (created, sent) or 3 (assigned, deadlines)
    def on_intake(self, envelope: dict) -> None:
        if envelope["type"] == "deadlines":  # the ticket's due times
            due = {key: value for key, value in envelope["data"].items() if key.endswith("_due_at")}
            self.db["tickets"].update_one({"_id": envelope["ticket_id"]}, {"$set": {"sla": due}})
        if envelope["type"] == "assigned":
            agent = envelope["data"]["agent"]
            self.db["tickets"].update_one(
                {"_id": envelope["ticket_id"]},
                {"$set": {"assignee": {"agent_id": agent["id"], "name": agent["name"]}, "status": "assigned"}},
            )
        entry = {"_id": envelope["event_id"], "ticket_id": envelope["ticket_id"], "type": envelope["type"]}
        self.db["timeline"].insert_one({**entry, "occurred_at": envelope["occurred_at"]})


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        print(f"usage: python -m benchmarks.e2e_bare {{{','.join(ROLES)}}}", file=sys.stderr)
        return 2
    Role(argv[0]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
