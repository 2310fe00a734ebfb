"""Write RabbitMQ's definitions (exchange, quorum queues, bindings, policies) from the code's own topology.

    .venv/bin/python deploy/rabbitmq/generate_definitions.py          # rewrite both copies
    .venv/bin/python deploy/rabbitmq/generate_definitions.py --check  # exit 1 when a copy is stale

The queues and bindings are recorded from `shared.topology.declare_topology` itself, so the broker
holds exactly what the services declare when they connect (same names, same arguments: a queue
declared with other arguments would be refused with PRECONDITION_FAILED). Limits the code does not
declare are policies, which a declaration never conflicts with.

Each service logs in as its own user (`<namespace>-<service>`), listed here without a password (no
password_hash: nobody can log in as it until the users file sets one), with its permissions and its
topic permissions: on the events exchange it may publish only the event types it produces
(shared.events.PUBLISHED_BY), so a compromised service cannot forge another's events. The portal's user
(`<namespace>-portal`) may configure, write and read nothing: its admin health page only asks each queue's
counts (a passive declare, which needs no permission). The passwords live
beside this file in docker-compose.yml (a config) or deploy/k8s (a Secret), imported after this file
(20-users.json after 10-topology.json), with the operators' user `ticketflow` (management, KEDA).
deploy/k8s/rabbitmq/definitions.json is a copy, because kustomize reads files below its own folder only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.portal.handlers import SERVICE as PORTAL  # noqa: E402
from shared.config import SERVICE_PORTS, load_settings  # noqa: E402
from shared.events import PUBLISHED_BY  # noqa: E402
from shared.topology import SUBSCRIPTIONS, declare_topology, queue_name  # noqa: E402

TARGETS = (ROOT / "deploy/rabbitmq/definitions.json", ROOT / "deploy/k8s/rabbitmq/definitions.json")
VHOST = "/"
# A worker acks every message it has handled (its own retries and dead letters are new messages), so
# a message comes back only when a worker died or lost its connection while holding it. After this many
# returns the message is taken to be what kills workers and goes to the dead-letter queue.
DELIVERY_LIMIT = 20
# Dead-letter queues are for people to read, so they only grow until someone looks: cap them so that a
# flood cannot fill the broker's disk and stop every publisher. Over the cap the oldest go first; each one
# was logged at ERROR and counted in ticketflow_events_dead_lettered_total when it was dead-lettered.
DEAD_MAX_LENGTH = 100_000
DEAD_MAX_BYTES = 512 * 1024 * 1024


class RecordingChannel:
    """Stands in for a pika channel and keeps what was declared."""

    def __init__(self) -> None:
        self.exchanges: dict[str, dict] = {}
        self.queues: dict[str, dict] = {}
        self.bindings: list[dict] = []

    def exchange_declare(self, exchange, exchange_type="direct", durable=False, arguments=None, **_):
        self.exchanges[exchange] = {"type": exchange_type, "durable": durable, "arguments": arguments or {}}

    def queue_declare(self, queue, durable=False, arguments=None, **_):
        self.queues[queue] = {"durable": durable, "arguments": arguments or {}}

    def queue_bind(self, queue, exchange, routing_key=None, arguments=None, **_):
        self.bindings.append(
            {"queue": queue, "exchange": exchange, "routing_key": routing_key or "", "arguments": arguments or {}}
        )


def build_definitions(namespace: str = "ticketflow", queue_type: str = "quorum") -> dict:
    settings = load_settings({"TICKETFLOW_NAMESPACE": namespace, "TICKETFLOW_QUEUE_TYPE": queue_type})
    channel = RecordingChannel()
    declare_topology(channel, settings)
    exchanges = [
        {
            "name": name,
            "vhost": VHOST,
            "type": spec["type"],
            "durable": spec["durable"],
            "auto_delete": False,
            "internal": False,
            "arguments": spec["arguments"],
        }
        for name, spec in channel.exchanges.items()
    ]
    queues = [
        {"name": name, "vhost": VHOST, "durable": spec["durable"], "auto_delete": False, "arguments": spec["arguments"]}
        for name, spec in channel.queues.items()
    ]
    bindings = [
        {
            "source": binding["exchange"],
            "vhost": VHOST,
            "destination": binding["queue"],
            "destination_type": "queue",
            "routing_key": binding["routing_key"],
            "arguments": binding["arguments"],
        }
        for binding in channel.bindings
    ]
    return {
        "vhosts": [{"name": VHOST}],
        **service_users(settings),
        "policies": policies(settings),
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


def service_user(namespace: str, service: str) -> str:
    """The broker user a service logs in as (its AMQP_URL's user)."""
    return f"{namespace}-{service}"


def service_users(settings) -> dict:
    """users (without passwords), permissions and topic permissions: one user per service.

    The services run with TICKETFLOW_BROKER_TOPOLOGY=definitions: the broker holds every queue and binding from
    this file, and each service declares only its own (its queue and dead-letter queue, its requeue exchange, the
    bindings to them) and checks its retry queues and the events exchange with passive declares (a retry queue
    dead-letters into the default exchange, and declaring one anew needs a right to write there). So each user may
    configure only its own (`<ns>.<service>` and below), read its own and the events exchange (a binding's
    source), and write to the events exchange, where its topic permission narrows what it may publish to the
    event types it produces, and to its own requeue exchange and queues (its retries and dead letters; a
    binding's destination). Not to the default exchange, which reaches any queue by its name: a reviewer put a
    forged sla.breached into notify's queue through it, and purged that queue. Reading (binding) any routing
    key on the events exchange stays open: intake consumes every event.
    """
    ns = re.escape(settings.namespace)
    users, permissions, topic_permissions = [], [], []
    for service in SERVICE_PORTS:
        user = service_user(settings.namespace, service)
        users.append({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                      "tags": [], "limits": {}})  # fmt: skip
        own = rf"{ns}\.{re.escape(service)}(\..+)?"
        events_exchange = re.escape(settings.exchange)
        permissions.append(
            {"user": user, "vhost": VHOST, "configure": rf"^{own}$", "write": rf"^({events_exchange}|{own})$",
             "read": rf"^({events_exchange}|{own})$"}
        )  # fmt: skip
        produced = "|".join(re.escape(kind) for kind in PUBLISHED_BY.get(service, ()))
        topic_permissions.append(
            {"user": user, "vhost": VHOST, "exchange": settings.exchange, "write": f"^({produced})$", "read": ".*"}
        )
    # the portal's health page: queue counts by passive declares, which need no permission; nothing else
    user = service_user(settings.namespace, PORTAL)
    users.append({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                  "tags": [], "limits": {}})  # fmt: skip
    permissions.append({"user": user, "vhost": VHOST, "configure": "^$", "write": "^$", "read": "^$"})
    return {"users": users, "permissions": permissions, "topic_permissions": topic_permissions}


def policies(settings) -> list[dict]:
    ns = re.escape(settings.namespace)
    out = []
    for service in SUBSCRIPTIONS:
        queue = queue_name(settings, service)
        out.append(
            _policy(
                queue,
                f"^{re.escape(queue)}$",
                {
                    "delivery-limit": DELIVERY_LIMIT,
                    "dead-letter-exchange": "",
                    "dead-letter-routing-key": f"{queue}.dead",
                    # at-least-once: a message is kept until the dead-letter queue has it (needs reject-publish)
                    "dead-letter-strategy": "at-least-once",
                    "overflow": "reject-publish",
                },
            )
        )
    # retry queues dead-letter (by their TTL) back to the service queue: never lose one on the way
    retry = {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"}
    out.append(_policy(f"{settings.namespace}.retry", rf"^{ns}\.[^.]+\.retry\.[0-9]+ms$", retry))
    dead = {"max-length": DEAD_MAX_LENGTH, "max-length-bytes": DEAD_MAX_BYTES, "overflow": "drop-head"}
    out.append(_policy(f"{settings.namespace}.dead", rf"^{ns}\.[^.]+\.dead$", dead))
    return out


def _policy(name: str, pattern: str, definition: dict) -> dict:
    return {
        "vhost": VHOST,
        "name": name,
        "pattern": pattern,
        "apply-to": "queues",
        "priority": 0,
        "definition": definition,
    }


def render(definitions: dict) -> str:
    return json.dumps(definitions, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    text = render(build_definitions())
    stale = [path for path in TARGETS if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run deploy/rabbitmq/generate_definitions.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
