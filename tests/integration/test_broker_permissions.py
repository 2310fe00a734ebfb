"""The broker users of deploy/rabbitmq/definitions.json, tried on the local RabbitMQ: each service's user may
publish its own event types on the events exchange, and the broker refuses it another service's; it may declare,
retry into and dead-letter into its own queues and touch no other (no forged event through the default exchange,
no other service's queue purged: a plumbing review's finds); the portal's user reads every queue's counts (its
admins' health page) and may do nothing else.

The definitions the generator writes (the topology, the users, their permissions and topic permissions) are
imported (`rabbitmqctl import_definitions`) into a throwaway vhost under throwaway user names, with passwords set
for the test; both are deleted after. The services run on them with TICKETFLOW_BROKER_TOPOLOGY=definitions.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from shared import events
from shared.bus import Publisher
from shared.config import SERVICE_PORTS, load_settings
from shared.consumer import Consumer, PermanentError
from shared.events import EVENT_TYPES, PRODUCERS, PUBLISHED_BY
from shared.topology import (
    SUBSCRIPTIONS,
    MissingTopology,
    declare_service_topology,
    declare_topology,
    queue_counts,
    queue_name,
    requeue_exchange_name,
    retry_queue_name,
)
from tests.harness import wait_until
from ticketflow import deadletters, local

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.1", 5672
ACCESS_REFUSED = 403


def _generator():
    path = ROOT / "deploy" / "rabbitmq" / "generate_definitions.py"
    spec = importlib.util.spec_from_file_location("generate_definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rabbitmqctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], input=stdin, capture_output=True, text=True, timeout=60)


def _imported(vhost: str, topic_permissions: int) -> bool:
    """Whether the (asynchronous) import is done: every topic permission is there, they come last."""
    listed = _rabbitmqctl("list_topic_permissions", "-p", vhost, "--quiet", "--no-table-headers")
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    return listed.returncode == 0 and len(lines) == topic_permissions


@pytest.fixture(scope="module")
def broker_users():
    """{service: (user, password)} of the generated definitions, imported into a vhost of their own."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not available: the broker's permissions cannot be set up here")
    if not local.port_answers(HOST, PORT):
        pytest.skip(f"no RabbitMQ answers on {HOST}:{PORT}")
    generated = _generator().build_definitions()
    run = secrets.token_hex(4)
    vhost = f"tftest-permissions-{run}"
    rename = {user["name"]: f"tftest-{run}-{user['name']}" for user in generated["users"]}
    passwords = {name: secrets.token_hex(12) for name in rename.values()}
    users = [
        {"name": rename[u["name"]], "password": passwords[rename[u["name"]]], "tags": []} for u in generated["users"]
    ]
    imported = {
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": [{**p, "vhost": vhost, "user": rename[p["user"]]} for p in generated["permissions"]],
        "topic_permissions": [{**t, "vhost": vhost, "user": rename[t["user"]]} for t in generated["topic_permissions"]],
        **{part: [{**item, "vhost": vhost} for item in generated[part]]
           for part in ("policies", "exchanges", "queues", "bindings")},
    }  # fmt: skip
    probe = _rabbitmqctl("status", "--quiet")
    if probe.returncode != 0:
        pytest.skip(f"rabbitmqctl cannot reach the node: {(probe.stderr or probe.stdout).strip()[:200]}")
    done = _rabbitmqctl("import_definitions", stdin=json.dumps(imported))  # from stdin: the node reads no file of ours
    try:
        assert done.returncode == 0, done.stderr
        topics = len(imported["topic_permissions"])
        wait_until(lambda: _imported(vhost, topics), timeout=30, message="the definitions are imported")
        by_service = {name.removeprefix("ticketflow-"): name for name in rename}
        yield vhost, {service: (rename[user], passwords[rename[user]]) for service, user in by_service.items()}
    finally:
        _rabbitmqctl("delete_vhost", vhost)
        for user in rename.values():
            _rabbitmqctl("delete_user", user)


def _connect(vhost: str, user: str, password: str) -> pika.BlockingConnection:
    parameters = pika.ConnectionParameters(HOST, PORT, vhost, pika.PlainCredentials(user, password))
    return pika.BlockingConnection(parameters)


def _publish(connection: pika.BlockingConnection, event_type: str) -> None:
    """Publish on the events exchange with confirms: returns once the broker took it, raises if it refused."""
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("ticketflow.events", exchange_type="topic", durable=True, passive=True)
    channel.basic_publish("ticketflow.events", event_type, b"{}", mandatory=False)
    channel.close()


DEFINITIONS = load_settings({"TICKETFLOW_NAMESPACE": "ticketflow", "TICKETFLOW_QUEUE_TYPE": "quorum",
                             "TICKETFLOW_BROKER_TOPOLOGY": "definitions"})  # as compose and Kubernetes run  # fmt: skip


def _refused(connection: pika.BlockingConnection, act) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as closed:
        act(channel)
    assert closed.value.reply_code == ACCESS_REFUSED, closed.value


def test_the_generated_definitions_give_every_service_a_user_and_the_portal_one(broker_users):
    _, users = broker_users
    assert set(users) == set(PUBLISHED_BY) | {"portal"}


def test_the_portals_user_reads_every_queues_counts_and_may_do_nothing_else(broker_users):
    vhost, users = broker_users
    settings = load_settings({"TICKETFLOW_NAMESPACE": "ticketflow"})  # the namespace the definitions are for
    owner = _connect(vhost, *users["intake"])  # the topology is the definitions' (imported)
    portal = _connect(vhost, *users["portal"])
    try:
        declare_topology(owner.channel(), DEFINITIONS)  # a publisher checks the exchange: nothing else
        _publish(owner, "ticket.created")
        for service in SERVICE_PORTS:  # passive declares: every count is known (None: refused or missing)
            counts = queue_counts(portal, settings, service)
            assert None not in (counts.messages, counts.consumers, counts.retrying, counts.dead), (service, counts)
        assert queue_counts(portal, settings, "assignment").messages == 1  # assignment routes ticket.created
        refused = [
            lambda channel: channel.basic_get(queue_name(settings, "intake"), auto_ack=True),  # take a message
            lambda channel: channel.queue_purge(queue_name(settings, "intake")),
            lambda channel: channel.queue_declare("ticketflow.portal.own", durable=True),
            lambda channel: channel.basic_publish("ticketflow.events", "ticket.created", b"{}"),
        ]
        for act in refused:
            channel = portal.channel()
            channel.confirm_delivery()
            with pytest.raises(ChannelClosedByBroker) as closed:
                act(channel)
            assert closed.value.reply_code == ACCESS_REFUSED, closed.value
        assert queue_counts(owner, settings, "assignment").messages == 1  # nothing was taken
    finally:
        portal.close()
        owner.close()


@pytest.mark.parametrize("service", sorted(PUBLISHED_BY))
def test_a_service_may_publish_its_own_event_types_and_is_refused_another_services(broker_users, service):
    vhost, users = broker_users
    connection = _connect(vhost, *users[service])
    try:
        channel = connection.channel()  # a queue bound to the service's own types receives what it publishes
        queue = channel.queue_declare(f"ticketflow.{service}.check", exclusive=True).method.queue
        for kind in PUBLISHED_BY[service]:
            channel.queue_bind(queue, "ticketflow.events", routing_key=kind)
            _publish(connection, kind)
        received = []
        for _ in PUBLISHED_BY[service]:
            method, _, _ = channel.basic_get(queue, auto_ack=True)
            received.append(method.routing_key)
        assert sorted(received) == sorted(PUBLISHED_BY[service])

        for kind in [k for k in EVENT_TYPES if PRODUCERS[k] != service]:
            with pytest.raises(ChannelClosedByBroker) as refused:
                _publish(connection, kind)
            assert refused.value.reply_code == ACCESS_REFUSED, refused.value
            assert "ACCESS_REFUSED" in refused.value.reply_text
        with pytest.raises(ChannelClosedByBroker) as refused:
            _publish(connection, "ticket.created.forged")  # not a prefix match either
        assert refused.value.reply_code == ACCESS_REFUSED
    finally:
        connection.close()


@pytest.mark.parametrize("service", sorted(SUBSCRIPTIONS))
def test_a_service_declares_retries_and_dead_letters_into_its_own_queues(broker_users, service):
    """What its worker does with its own user: declare its queues and bindings (the consumer, at every connect),
    send a failed event to a retry queue and a refused one to its dead letters (through its requeue exchange)."""
    vhost, users = broker_users
    connection = _connect(vhost, *users[service])
    consumer = Consumer(DEFINITIONS, service, {}, None)
    try:
        assert declare_service_topology(connection.channel(), DEFINITIONS, service, sorted(SUBSCRIPTIONS[service]))
        republish = connection.channel()
        republish.confirm_delivery()
        envelope = events.make_event("ticket.reopened", "t-1", {"reason": "again"}, producer="intake")
        body, props = events.encode(envelope), pika.BasicProperties(message_id=envelope["event_id"], headers={})
        consumer._retry_or_dead_letter(republish, props, body, {}, "ticket.reopened", RuntimeError("store busy"))
        consumer._retry_or_dead_letter(republish, props, body, {}, "ticket.reopened", PermanentError("refused"))

        channel = connection.channel()
        retry = retry_queue_name(DEFINITIONS, service, DEFINITIONS.retry_delays[0])
        for queue in (retry, f"{queue_name(DEFINITIONS, service)}.dead"):
            method, _, got = channel.basic_get(queue, auto_ack=True)
            assert method is not None and got == body, queue
    finally:
        consumer._pool.shutdown(wait=True)
        connection.close()


def test_a_publisher_on_its_own_user_reaches_the_queues_the_definitions_bind(broker_users):
    vhost, users = broker_users
    user, password = users["intake"]
    url = f"amqp://{user}:{password}@{HOST}:{PORT}/{vhost}"
    publisher = Publisher(dataclasses.replace(DEFINITIONS, amqp_url=url), "intake")
    envelope = events.make_event("ticket.reopened", "t-2", {"reason": "again"}, producer="intake")
    portal = _connect(vhost, *users["portal"])
    try:
        before = queue_counts(portal, DEFINITIONS, "assignment").messages
        publisher.publish_entry(
            envelope["event_id"], {"type": "ticket.reopened", "body": events.serialize(envelope).decode()}
        )
        wait_until(lambda: queue_counts(portal, DEFINITIONS, "assignment").messages == before + 1, timeout=30)
    finally:
        publisher.close()
        portal.close()


def test_a_service_s_user_forges_nothing_and_touches_no_other_service_s_queues(broker_users):
    """A plumbing review's finds: search's user (which may publish no event type) put a forged sla.breached "from
    sla" into notify's queue through the default exchange, and purged notify's queue."""
    vhost, users = broker_users
    forger = _connect(vhost, *users["search"])
    notify_queue = queue_name(DEFINITIONS, "notify")
    forged = events.serialize(events.make_event("ticket.reopened", "t-3", {"reason": "x"}, producer="intake"))
    try:
        for act in (
            lambda channel: channel.basic_publish("", notify_queue, forged, mandatory=True),  # the default exchange
            lambda channel: channel.basic_publish(requeue_exchange_name(DEFINITIONS, "notify"), notify_queue, forged),
            lambda channel: channel.queue_bind(notify_queue, requeue_exchange_name(DEFINITIONS, "search"), "x"),
            lambda channel: channel.queue_bind(notify_queue, "ticketflow.events", "ticket.forged"),
            lambda channel: channel.queue_purge(notify_queue),
            lambda channel: channel.basic_get(notify_queue, auto_ack=True),
            lambda channel: channel.queue_delete(notify_queue),
            lambda channel: channel.queue_declare("ticketflow.notify.mine", durable=True),
            lambda channel: channel.exchange_delete("ticketflow.events"),
            lambda channel: channel.exchange_declare("ticketflow.events", exchange_type="topic", durable=True),
        ):
            _refused(forger, act)
    finally:
        forger.close()


def test_dead_letters_list_with_a_service_s_user_counts_every_queue_and_reads_its_own(broker_users):
    """A change review's find: in a worker's container `ticketflow dead-letters list` (every service) was a
    traceback at the first other service's queue, which its user may not read."""
    vhost, users = broker_users
    intake = _connect(vhost, *users["intake"])
    channel = intake.channel()
    channel.confirm_delivery()  # a dead letter of intake's, through its own way back in
    channel.basic_publish(requeue_exchange_name(DEFINITIONS, "intake"), "ticketflow.intake.dead", b"{}", mandatory=True)
    connection, out = _connect(vhost, *users["notify"]), io.StringIO()
    try:
        assert deadletters.list_command(DEFINITIONS, [], limit=5, out=out, connection=connection) == 0
    finally:
        if connection.is_open:  # the command closes what it was given
            connection.close()
        channel.queue_purge("ticketflow.intake.dead")
        intake.close()
    lines = out.getvalue().splitlines()
    assert "notify: 0 dead letters in ticketflow.notify.dead" in lines
    at = lines.index("intake: 1 dead letter in ticketflow.intake.dead")
    assert lines[at + 1] == "  not readable with this broker user: run the command in intake's worker"


def test_dead_letters_replay_with_another_service_s_user_says_where_to_run_it(broker_users):
    vhost, users = broker_users
    intake = _connect(vhost, *users["intake"])
    channel = intake.channel()
    channel.confirm_delivery()
    channel.basic_publish(requeue_exchange_name(DEFINITIONS, "intake"), "ticketflow.intake.dead", b"{}", mandatory=True)
    connection = _connect(vhost, *users["notify"])
    try:
        with pytest.raises(deadletters.DeadLetterError, match="run the command in intake's worker"):
            deadletters.replay(connection, DEFINITIONS, "intake")
    finally:
        connection.close()
        assert channel.queue_purge("ticketflow.intake.dead").method.message_count == 1  # it stayed dead
        intake.close()


def test_a_service_s_worker_finds_the_retry_queues_the_definitions_hold(broker_users):
    """A change review's find: a retry queue dead-letters into the default exchange, and declaring one anew needs
    write on it, which a service's user no longer has (RabbitMQ 3.10, here, lets a declare of one that exists
    through). In definitions mode the worker checks its retry queues (passive: they are the definitions'); one its
    delays do not name is said in words."""
    vhost, users = broker_users
    connection = _connect(vhost, *users["intake"])
    try:
        assert declare_service_topology(connection.channel(), DEFINITIONS, "intake", sorted(SUBSCRIPTIONS["intake"]))
        other_delays = dataclasses.replace(DEFINITIONS, retry_delays=(7.0,))
        with pytest.raises(MissingTopology, match=r"ticketflow\.intake\.retry\.7000ms.*definitions"):
            declare_service_topology(connection.channel(), other_delays, "intake", sorted(SUBSCRIPTIONS["intake"]))
    finally:
        connection.close()
