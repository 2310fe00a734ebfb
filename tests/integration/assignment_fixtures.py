"""Fixtures and factories for assignment's integration tests (imported by the test_assignment_* modules).

Each fixture function is `<name>_fixture` and registered as `<name>`, so a test module imports the
function and asks for the fixture by its short name.

The session shares one namespace, so every factory makes unique ids: teams, agents, topics and tickets
never collide between tests. A ticket enters assignment the way it does in production, through a
`ticket.created` envelope, handled in-process (`new_ticket`) or published on the bus for a worker.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pika
import pika.exceptions
import pytest

from services.assignment import handlers
from shared.events import format_time
from shared.runtime import bind
from shared.topology import SUBSCRIPTIONS, declare_service_topology, queue_name
from tests.harness import auth_header, consumers_on, flushed, wait_until
from tests.integration.conftest import event_from, in_process_app, service_database

PROBLEM_JSON = "application/problem+json"
EVENT_TIMEOUT = 15.0
AGENT_KEYS = {
    "id", "name", "email", "teams", "capacity", "available", "lead", "lead_of", "open_tickets", "created_at",
    "updated_at",
}  # fmt: skip
TEAM_KEYS = {"id", "name", "topics", "created_at", "updated_at"}
TICKET_KEYS = {
    "ticket_id", "number", "subject", "topic", "priority", "team", "agent_id", "status", "created_at",
    "first_response_at", "resolved_at", "sla", "notes", "history",
}  # fmt: skip
HISTORY_KEYS = {"at", "action", "by", "from", "to"}
OPEN_STATUSES = ("new", "assigned", "in_progress", "waiting_on_requester")
_numbers = itertools.count(700_000 + uuid.uuid4().int % 100_000)


# --- small helpers without fixtures -----------------------------------------------------------------


def unique(prefix: str) -> str:
    """An id that fits agent, team and topic ids (lowercase letters, digits and -), unique in the session."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin() -> dict[str, str]:
    return auth_header("admin")


def as_agent(agent_id: str) -> dict[str, str]:
    return auth_header("agent", agent_id)


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """A problem+json answer with the given status (and, for a validation error, the named field)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.headers["Content-Type"] == PROBLEM_JSON, response.headers["Content-Type"]
    body = json.loads(response.get_data(as_text=True))
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    assert all(isinstance(body[key], str) and body[key] for key in ("type", "title", "detail")), body
    if field is not None:
        assert field in body.get("errors", {}), body
        assert all(isinstance(message, str) and message for message in body["errors"][field]), body
    return body


def created_data(topic: str, priority: str = "normal", **overrides) -> dict:
    data = {
        "number": next(_numbers),
        "subject": f"VPN drops every hour {uuid.uuid4().hex[:6]}",
        "description": "Since Monday the VPN drops every hour.",
        "requester": {"name": "Ana Ruiz", "email": f"ana.{uuid.uuid4().hex[:8]}@example.com"},
        "topic": topic,
        "priority": priority,
        "source": "web",
    }
    data.update(overrides)
    return data


def created_event(ticket_id: str, topic: str, priority: str = "normal", occurred_at: datetime | None = None) -> dict:
    return event_from("intake", "ticket.created", ticket_id, created_data(topic, priority), occurred_at=occurred_at)


def sla_warning(ticket_id: str, due_at: datetime, clock: str = "first_response", **extra) -> dict:
    data = {
        "clock": clock,
        "instance": 0,
        "due_at": format_time(due_at),
        "percent": 80.0,
        "priority": "normal",
        "policy_version": 1,
        **extra,
    }
    return event_from("sla", "sla.warning", ticket_id, data)


def sla_breached(ticket_id: str, due_at: datetime, clock: str = "first_response") -> dict:
    data = {
        "clock": clock,
        "instance": 0,
        "due_at": format_time(due_at),
        "breached_at": format_time(due_at),
        "priority": "normal",
        "policy_version": 1,
    }
    return event_from("sla", "sla.breached", ticket_id, data)


def sla_deadlines(ticket_id: str, revision: int, first=None, next_=None, resolution=None) -> dict:
    """sla.deadlines_changed: each clock's due time while it runs (None: not running)."""
    data = {
        "first_response_due_at": first and format_time(first),
        "next_response_due_at": next_ and format_time(next_),
        "resolution_due_at": resolution and format_time(resolution),
        "priority": "normal",
        "revision": revision,
    }
    return event_from("sla", "sla.deadlines_changed", ticket_id, data)


def in_minutes(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def outbox_empty(db, ticket_ids) -> bool:
    """Once no ticket holds an outbox entry, nothing more will be published for them."""
    ids = [ticket_ids] if isinstance(ticket_ids, str) else list(ticket_ids)
    return db.tickets.count_documents({"_id": {"$in": ids}, "_outbox_due": {"$exists": True}}) == 0


def recount(db, agent_id: str) -> int:
    """The truth about an agent's load: its tickets that are neither resolved nor closed."""
    return db.tickets.count_documents({"agent_id": agent_id, "status": {"$in": list(OPEN_STATUSES)}})


def declare_assignment_queue(amqp_url: str, settings) -> str:
    """assignment's queue and bindings exist before anything is published (else the broker drops it)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return declare_service_topology(connection.channel(), settings, "assignment", list(SUBSCRIPTIONS["assignment"]))
    finally:
        connection.close()


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(name="assignment_app")
def assignment_app_fixture(infra):
    """assignment's Flask app in-process, on the session's MongoDB and broker."""
    with in_process_app("assignment") as app:
        yield app


@pytest.fixture(name="aclient")
def aclient_fixture(assignment_app):
    return assignment_app.test_client()


@pytest.fixture(name="actx")
def actx_fixture(assignment_app) -> handlers.Assignment:
    """What the handlers take: the app's stores, flusher and settings."""
    return assignment_app.extensions["ticketflow.assignment"]


@pytest.fixture(name="assignment_db")
def assignment_db_fixture(infra, settings) -> Iterator:
    with service_database(infra, settings, "assignment") as db:
        yield db


@pytest.fixture(name="make_team")
def make_team_fixture(aclient) -> Callable[..., dict]:
    """make_team(topics=None, **overrides) -> the team as the API answers it (topics default to one unique)."""

    def make(topics: list[str] | None = None, **overrides) -> dict:
        body = {"id": unique("team"), "name": "Network", "topics": [unique("topic")] if topics is None else topics}
        body.update(overrides)
        response = aclient.post("/teams", json=body, headers=admin())
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture(name="make_agent")
def make_agent_fixture(aclient) -> Callable[..., dict]:
    """make_agent(*teams, prefix="agent", **overrides) -> the agent as the API answers it."""

    def make(*teams: str, prefix: str = "agent", **overrides) -> dict:
        agent_id = unique(prefix)
        body = {
            "id": agent_id,
            "name": f"Agent {agent_id}",
            "email": f"{agent_id}@example.com",
            "teams": list(teams),
            "capacity": 10,
        }
        body.update(overrides)
        response = aclient.post("/agents", json=body, headers=admin())
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture(name="new_ticket")
def new_ticket_fixture(actx) -> Callable[..., str]:
    """new_ticket(topic, priority="normal") -> ticket id, after assignment handled its ticket.created."""

    def make(topic: str, priority: str = "normal", ticket_id: str | None = None, occurred_at=None) -> str:
        ticket_id = ticket_id or uuid.uuid4().hex
        handlers.on_created(actx, created_event(ticket_id, topic, priority, occurred_at))
        return ticket_id

    return make


@pytest.fixture(name="handle")
def handle_fixture(actx) -> Callable[[dict], None]:
    """Handle an envelope as the worker would (its handler table), in-process."""
    table = bind(handlers.HANDLERS, actx)

    def run(envelope: dict) -> None:
        table[envelope["type"]](envelope)

    return run


@pytest.fixture(name="read_ticket")
def read_ticket_fixture(aclient) -> Callable[[str], dict]:
    def read(ticket_id: str) -> dict:
        response = aclient.get(f"/tickets/{ticket_id}", headers=admin())
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return read


@pytest.fixture(name="read_agent")
def read_agent_fixture(aclient) -> Callable[[str], dict]:
    def read(agent_id: str) -> dict:
        response = aclient.get(f"/agents/{agent_id}", headers=admin())
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return read


@pytest.fixture(name="settled")
def settled_fixture(actx, assignment_db) -> Callable[[str], None]:
    """settled(ticket_id): everything staged for the ticket went to the broker (or the test fails)."""

    def wait(ticket_ids) -> None:
        flushed(actx.flusher)
        wait_until(lambda: outbox_empty(assignment_db, ticket_ids), timeout=EVENT_TIMEOUT, message="the outbox empties")

    return wait


@pytest.fixture(name="events_of")
def events_of_fixture(tap) -> Callable[..., list[dict]]:
    """events_of(ticket_id, type=None, count=None): the ticket's envelopes on the wire (waits for `count`)."""

    def find(ticket_id: str, type: str | None = None, count: int | None = None) -> list[dict]:
        if count is None:
            return tap.envelopes(ticket_id=ticket_id, type=type)
        return wait_until(
            lambda: (found := tap.envelopes(ticket_id=ticket_id, type=type)) and len(found) >= count and found,
            timeout=EVENT_TIMEOUT,
            message=f"{count} x {type or 'any event'} of {ticket_id} on the broker",
        )

    return find


@pytest.fixture(name="assignment_worker")
def assignment_worker_fixture(spawn_worker, infra, settings) -> Callable[..., object]:
    """Start n real assignment workers; return once the broker counts n more consumers on the queue."""

    def start(n: int = 1, **env: str) -> list:
        queue = queue_name(settings, "assignment")
        before = consumers_on(infra.amqp_url, queue)
        workers = [spawn_worker("assignment", env=env or None) for _ in range(n)]
        wait_until(
            lambda: any(not w.running for w in workers) or consumers_on(infra.amqp_url, queue) >= before + n,
            timeout=30,
            message=f"{n} assignment worker(s) consume their queue",
        )
        for worker in workers:
            assert worker.running, worker.log_text()
        return workers

    return start
