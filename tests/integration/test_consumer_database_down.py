"""A worker whose database is unreachable for a few seconds: its events wait for it, none is dead-lettered.

The worker reaches the session's database through a TcpProxy (the session's FerretDB serves the tests beside
this one: it is not stopped); stopping the proxy refuses every connection, as a database that died does. The
worker gives up on a database call after 0.3 s, so the retries of the tests (0.2, 0.4, 0.8 s) would be used
up in under 3 s if an outage counted against the event.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pika

from shared import events
from shared.topology import declare_service_topology
from tests.harness import TcpProxy, consumers_on, dead_letters, wait_until
from tests.integration.conftest import event_from

OUTAGE = 5.0  # seconds


def test_an_event_handled_while_the_database_is_down_waits_for_it_and_is_applied_once(
    infra, settings, make_ticket, intake_db, publish, spawn_worker
):
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    queue = declare_service_topology(connection.channel(), settings, "intake", list(events.EVENT_TYPES))
    connection.close()
    ticket = make_ticket()
    mongo = urlsplit(infra.mongo_url)
    with TcpProxy(mongo.hostname, mongo.port) as database:
        env = {"MONGO_URL": database.rewrite(infra.mongo_url), "TICKETFLOW_MONGO_TIMEOUT_MS": "300"}
        worker = spawn_worker("intake", env=env)
        wait_until(lambda: consumers_on(infra.amqp_url, queue) >= 1, timeout=30, message="the worker consumes")
        database.stop()
        down_since = time.monotonic()
        reply_id = uuid.uuid4().hex
        data = {"reply_id": reply_id, "agent_id": "jane", "agent_name": "Jane Doe", "body": "Try again now?",
                "first_response": True}  # fmt: skip
        publish("ticket.replied", event_from("assignment", "ticket.replied", ticket["id"], data))
        time.sleep(max(OUTAGE - (time.monotonic() - down_since), 0))  # the outage lasts its seconds
        database.start()

        def applied() -> list[dict]:
            thread = intake_db.tickets.find_one({"_id": ticket["id"]})["thread"]
            return [message for message in thread if message["id"] == reply_id]

        assert len(wait_until(applied, timeout=30, message="the reply, once the database is back")) == 1
        assert dead_letters(infra.amqp_url, f"{queue}.dead") == []
        assert worker.running
