"""Event delivery promises (at least once, in order per ticket, applied once), proven on intake for real."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import uuid
from urllib.parse import urlsplit

import pika
import pytest

from services.intake.api import create_app
from shared import events, mongo
from shared.topology import declare_service_topology
from tests.harness import TcpProxy, auth_header, dead_letters, flushed, rabbitmqctl_available, wait_until
from tests.integration.conftest import event_from, ticket_request
from ticketflow.local import free_port

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def outbox_empty(db, ticket_ids) -> bool:
    """Once no ticket holds an outbox entry, nothing more will be published for them."""
    return db.tickets.count_documents({"_id": {"$in": list(ticket_ids)}, "_outbox_due": {"$exists": True}}) == 0


def test_ticket_created_goes_out_at_once_with_the_contract_envelope(client, tap):
    response = client.post(
        "/tickets", json=ticket_request(), headers={**auth_header("portal"), "X-Request-ID": "req-42"}
    )
    ticket = response.get_json()
    # no worker (and so no relay) runs here: only the publish right after the write can deliver it
    ((props, envelope),) = wait_until(
        lambda: [(p, e) for p, e in tap.drain() if e["ticket_id"] == ticket["id"]],
        timeout=30,  # generous for a busy machine: with no relay, nothing else would ever deliver it
        message="ticket.created did not go out at once",
    )
    assert set(envelope) == {
        "event_id",
        "type",
        "schema_version",
        "occurred_at",
        "producer",
        "ticket_id",
        "correlation_id",
        "data",
    }
    assert UUID.match(envelope["event_id"]) and TIME.match(envelope["occurred_at"])
    assert (envelope["type"], envelope["schema_version"], envelope["producer"], envelope["correlation_id"]) == (
        "ticket.created",
        1,
        "intake",
        "req-42",
    )
    assert envelope["data"] == {
        key: ticket[key] for key in ("number", "subject", "description", "requester", "topic", "priority", "source")
    }
    assert (props.delivery_mode, props.content_type, props.message_id) == (2, "application/json", envelope["event_id"])


def test_broker_down_requests_succeed_and_each_event_arrives_once_when_it_is_back(
    infra, settings, tap, intake_db, spawn_worker
):
    amqp = urlsplit(infra.amqp_url)
    with TcpProxy(amqp.hostname, amqp.port or 5672) as proxy:
        proxied = dataclasses.replace(settings, amqp_url=proxy.rewrite(infra.amqp_url))
        app = create_app(proxied)
        client = app.test_client()
        proxy.stop()  # the broker is down for the api and the worker
        ids = []
        for _ in range(5):
            response = client.post("/tickets", json=ticket_request(), headers=auth_header("portal"))
            assert response.status_code == 201, response.get_json()
            ids.append(response.get_json()["id"])
        flushed(app.extensions["ticketflow.intake"].flusher)
        assert not {e["ticket_id"] for e in tap.envelopes()} & set(ids)
        spawn_worker("intake", env={"AMQP_URL": proxied.amqp_url})
        proxy.start()  # the broker is back
        wait_until(lambda: outbox_empty(intake_db, ids), timeout=20, message="the outbox did not catch up")
    created = [e for e in tap.envelopes(type="ticket.created") if e["ticket_id"] in ids]
    assert sorted(e["ticket_id"] for e in created) == sorted(ids)  # every one, exactly once


def test_a_failed_store_write_publishes_nothing(settings, client, tap):
    dead_port = free_port()  # nothing listens there: every write fails
    broken = dataclasses.replace(settings, mongo_url=f"mongodb://127.0.0.1:{dead_port}", mongo_timeout_ms=300)
    refused = ticket_request(subject=f"never stored {uuid.uuid4().hex}")
    response = create_app(broken).test_client().post("/tickets", json=refused, headers=auth_header("portal"))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    mongo.close_client()
    sentinel = client.post("/tickets", json=ticket_request(), headers=auth_header("portal")).get_json()
    wait_until(lambda: tap.envelopes(ticket_id=sentinel["id"]), timeout=30, message="the sentinel did not arrive")
    assert [e for e in tap.envelopes() if e["data"].get("subject") == refused["subject"]] == []


def _replies_applied(db, ticket_ids) -> int:
    return sum(
        len([m for m in doc["thread"] if m["kind"] == "reply"])
        for doc in db.tickets.find({"_id": {"$in": ticket_ids}}, {"thread": 1})
    )


def test_a_worker_killed_mid_handling_redelivers_and_each_event_has_one_effect(
    infra, settings, make_ticket, intake_db, publish, spawn_worker
):
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    declare_service_topology(connection.channel(), settings, "intake", list(events.EVENT_TYPES))
    connection.close()
    tickets = [make_ticket()["id"] for _ in range(10)]
    replies = {}
    for i in range(30):
        for ticket_id in tickets:
            reply_id = uuid.uuid4().hex
            replies[reply_id] = ticket_id
            data = {
                "reply_id": reply_id,
                "agent_id": "jane",
                "agent_name": "Jane Doe",
                "body": f"try step {i}",
                "first_response": i == 0,
            }
            publish("ticket.replied", event_from("assignment", "ticket.replied", ticket_id, data))
    worker = spawn_worker("intake")
    wait_until(lambda: _replies_applied(intake_db, tickets) >= 40, timeout=30, message="the worker did not start")
    worker.kill()  # SIGKILL: in-flight messages were not acked
    assert _replies_applied(intake_db, tickets) < len(replies), "the kill came too late to prove anything"
    spawn_worker("intake")
    wait_until(
        lambda: _replies_applied(intake_db, tickets) == len(replies),
        timeout=60,
        message="not every reply arrived after the restart",
    )
    for doc in intake_db.tickets.find({"_id": {"$in": tickets}}):
        reply_ids = [m["id"] for m in doc["thread"] if m["kind"] == "reply"]
        assert len(reply_ids) == len(set(reply_ids)) == 30
        assert all(replies[r] == doc["_id"] for r in reply_ids)

    def timeline_ids() -> list:
        found = intake_db.timeline.find({"ticket_id": {"$in": tickets}, "type": "ticket.replied"}, {"_id": 1})
        return [d["_id"] for d in found]

    # the handler applies a reply, then records it on the timeline: the last one's entry may come a moment later
    wait_until(lambda: len(timeline_ids()) >= len(replies), timeout=30, message="a reply never reached the timeline")
    assert len(timeline_ids()) == len(set(timeline_ids())) == len(replies)


def _dead_letters(infra, settings) -> list[tuple[dict, bytes]]:
    return dead_letters(infra.amqp_url, f"{settings.namespace}.intake.dead")


def test_poison_and_failing_messages_are_dead_lettered_while_the_rest_flows(
    infra, settings, make_ticket, intake_db, publish, spawn_worker
):
    spawn_worker("intake")
    ticket = make_ticket()
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": ticket["id"]}), timeout=15)
    marker = uuid.uuid4().hex
    publish("ticket.created", b"{not json " + marker.encode(), message_id=f"poison-{marker}")
    ghost = event_from(
        "assignment",
        "ticket.assigned",
        f"ghost-{marker}",
        {
            "agent_id": "jane",
            "agent_name": "Jane",
            "agent_email": "jane@example.com",
            "team": "network",
            "reason": "claim",
        },
    )
    publish("ticket.assigned", ghost)
    reply = {"reply_id": marker, "agent_id": "jane", "agent_name": "Jane", "body": "done?", "first_response": True}
    publish("ticket.replied", event_from("assignment", "ticket.replied", ticket["id"], reply))
    wait_until(
        lambda: any(m["id"] == marker for m in intake_db.tickets.find_one({"_id": ticket["id"]})["thread"]),
        timeout=30,
        message="a good message behind the bad ones was not processed",
    )

    def both_dead():
        letters = _dead_letters(infra, settings)
        poison = [h for h, body in letters if marker.encode() in body and b"not json" in body]
        failed = [h for h, body in letters if f"ghost-{marker}".encode() in body]
        return (poison, failed) if poison and failed else None

    (poison,), (failed,) = wait_until(both_dead, timeout=20, message="the bad messages did not reach the DLQ")
    assert poison["x-ticketflow-reason"] == "invalid" and "malformed JSON" in poison["x-ticketflow-error"]
    assert failed["x-ticketflow-reason"] == "failed" and "No ticket" in failed["x-ticketflow-error"]
    assert failed["x-ticketflow-attempt"] == len(settings.retry_delays)


def _close_connections(namespace: str) -> int:
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if f'"{namespace}.intake.' in line]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: the broker closes connections"],
            capture_output=True,
            timeout=60,
            check=True,
        )
    return len(pids)


@pytest.mark.skipif(not rabbitmqctl_available(), reason="needs rabbitmqctl for the broker under test")
def test_the_worker_goes_on_consuming_after_the_broker_closes_its_connections(
    settings, client, make_ticket, intake_db, spawn_worker
):
    worker = spawn_worker("intake")
    first = make_ticket()
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": first["id"]}), timeout=15)
    assert _close_connections(settings.namespace) >= 2  # the worker's consumer and its relay's publisher
    second = make_ticket()
    wait_until(
        lambda: intake_db.timeline.find_one({"ticket_id": second["id"]}),
        timeout=30,
        message="the worker did not come back after its connections were closed",
    )
    assert worker.running


def test_the_worker_redeclares_its_queue_when_the_broker_cancels_its_consumer(
    infra, settings, make_ticket, intake_db, spawn_worker
):
    worker = spawn_worker("intake")
    first = make_ticket()
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": first["id"]}), timeout=15)
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    connection.channel().queue_delete(f"{settings.namespace}.intake")  # the broker cancels the consumer

    def redeclared():
        try:
            channel = connection.channel()
            return channel.queue_declare(f"{settings.namespace}.intake", passive=True).method.consumer_count == 1
        except pika.exceptions.ChannelClosedByBroker:
            return False

    wait_until(redeclared, timeout=15, message="the worker did not declare its queue again")
    connection.close()
    second = make_ticket()
    wait_until(
        lambda: intake_db.timeline.find_one({"ticket_id": second["id"]}),
        timeout=15,
        message="the worker did not consume after its queue came back",
    )
    assert worker.running
