"""The broker users of deploy/rabbitmq/definitions.json, tried on the local RabbitMQ: each service's user may
publish its own event types on the events exchange, and the broker refuses it another service's; the portal's
user reads every queue's counts (its admins' health page) and may do nothing else.

The users, permissions and topic permissions the generator writes are imported (`rabbitmqctl import_definitions`)
into a throwaway vhost under throwaway user names, with passwords set for the test; both are deleted after.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from shared.config import SERVICE_PORTS, load_settings
from shared.events import EVENT_TYPES, PRODUCERS, PUBLISHED_BY
from shared.topology import declare_topology, queue_counts, queue_name
from tests.harness import wait_until
from ticketflow import local

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
    channel.exchange_declare("ticketflow.events", exchange_type="topic", durable=True)
    channel.basic_publish("ticketflow.events", event_type, b"{}", mandatory=False)
    channel.close()


def test_the_generated_definitions_give_every_service_a_user_and_the_portal_one(broker_users):
    _, users = broker_users
    assert set(users) == set(PUBLISHED_BY) | {"portal"}


def test_the_portals_user_reads_every_queues_counts_and_may_do_nothing_else(broker_users):
    vhost, users = broker_users
    settings = load_settings({"TICKETFLOW_NAMESPACE": "ticketflow"})  # the namespace the definitions are for
    owner = _connect(vhost, *users["intake"])  # a service declares the topology when it connects
    portal = _connect(vhost, *users["portal"])
    try:
        declare_topology(owner.channel(), settings)
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
        channel.exchange_declare("ticketflow.events", exchange_type="topic", durable=True)
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
