"""/admin/health: each service's readiness and queues, and the notifications that have not gone out yet.

The same figures as `ticketflow status`: readiness is each API's own GET /readyz; the queues' figures come
from the broker at AMQP_URL (the address, and default, every service uses) by passive declares, which
create nothing (shared.topology.queue_counts). The portal's pages need no broker: only this page connects,
once per look, and when nothing answers it says so and shows the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from services.portal.client import Actor, Refused, Unreachable
from services.portal.handlers import Portal
from shared.clock import now
from shared.config import SERVICE_PORTS, Settings
from shared.topology import QueueCounts, queue_counts

NOTIFICATION_STATES = {"pending": "Waiting to be sent", "failed": "Failed, to be retried", "dead": "Given up"}
COUNT_PAGES = 5  # notifications counted per state, 200 a page: past that, "1000+"


@dataclass
class ServiceHealth:
    name: str
    api: str  # ready, not ready (what failed), or down
    queue: QueueCounts | None


@dataclass
class Health:
    services: list[ServiceHealth]
    broker_problem: str | None
    notifications: dict[str, str] | None  # state -> how many
    notifications_problem: str | None
    checked_at: datetime

    @property
    def problems(self) -> list[str]:
        """What needs a look, in words: APIs not ready, no broker, services no worker consumes for, dead letters."""
        found = [f"the {s.name} API is {s.api}" for s in self.services if s.api != "ready"]
        if self.broker_problem:
            return [*found, self.broker_problem]
        found += [f"no {s.name} worker consumes its queue" for s in self.services if s.queue and not s.queue.consumers]
        found += [f"{s.name} has dead letters" for s in self.services if s.queue and s.queue.dead]
        return found


def check(svc: Portal, who: Actor) -> Health:
    services = list(SERVICE_PORTS)
    counts, broker_problem = broker_counts(svc.settings, services)
    notifications, notifications_problem = notification_counts(svc, who)
    return Health(
        services=[ServiceHealth(name, readiness(svc, name), counts.get(name)) for name in services],
        broker_problem=broker_problem,
        notifications=notifications,
        notifications_problem=notifications_problem,
        checked_at=now(),
    )


def readiness(svc: Portal, service: str) -> str:
    answer = svc.services.probe(service, "/readyz")
    if answer is None:
        return "down"
    status, body = answer
    if status == 200:
        return "ready"
    failing = [name for name, ok in (body.get("checks") or {}).items() if not ok]
    return f"not ready ({', '.join(failing) or status})"


def broker_counts(settings: Settings, services: list[str]) -> tuple[dict[str, QueueCounts], str | None]:
    """Each service's queue counts; ({}, why not) when the broker does not answer."""
    import pika
    from pika.exceptions import AMQPError, ProbableAccessDeniedError, ProbableAuthenticationError

    from shared.bus import parameters

    params = parameters(settings, "portal-health")
    params.socket_timeout = params.blocked_connection_timeout = params.stack_timeout = 3
    where = urlsplit(settings.amqp_url)
    try:
        connection = pika.BlockingConnection(params)
    except (ProbableAuthenticationError, ProbableAccessDeniedError):  # a user the broker does not know (yet)
        return {}, (
            f"RabbitMQ at {where.hostname}:{where.port or 5672} refused the portal's user {where.username!r}: check "
            "its password in AMQP_URL, and that the broker has imported its users since it was added"
        )
    except (AMQPError, OSError):
        return {}, f"RabbitMQ does not answer at {where.hostname}:{where.port or 5672}"
    try:
        return {service: queue_counts(connection, settings, service) for service in services}, None
    except (AMQPError, OSError) as exc:
        return {}, f"RabbitMQ stopped answering: {type(exc).__name__}"
    finally:
        if connection.is_open:
            connection.close()


def notification_counts(svc: Portal, who: Actor) -> tuple[dict[str, str] | None, str | None]:
    """How many notifications are in each state not yet done with (notify's GET /notifications)."""
    try:
        return {state: _count(svc, who, state) for state in NOTIFICATION_STATES}, None
    except (Refused, Unreachable) as exc:
        return None, f"notify did not answer ({exc})"


def _count(svc: Portal, who: Actor, state: str) -> str:
    total, cursor = 0, None
    for _ in range(COUNT_PAGES):
        page = svc.services.get("notify", "/notifications", who, status=state, limit=200, cursor=cursor)
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return str(total)
    return f"{total}+"
