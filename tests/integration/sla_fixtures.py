"""Fixtures and factories for sla's integration tests (imported by the test_sla_* modules).

Each fixture function is `<name>_fixture` and registered as `<name>`, so a test module imports the
function and asks for the fixture by its short name.

The session shares one database, so calendars get unique ids, a test that changes policies asks for
`policies_restored`, and a ticket's clocks come into being the way they do in production: its
`ticket.created` (and later events) handled by sla's own handlers, in-process (`sla_seed`, `sla_handle`).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from services.sla import handlers
from shared import mongo
from shared.config import load_settings
from shared.events import format_time
from shared.runtime import bind
from tests.harness import auth_header, flushed
from tests.integration.conftest import event_from, in_process_app, service_database

PROBLEM_JSON = "application/problem+json"
POLICY_KEYS = {
    "priority", "version", "first_response_minutes", "next_response_minutes", "resolution_minutes",
    "warn_at_percent", "calendar", "changed_at",
}  # fmt: skip
CLOCK_KEYS = {
    "state", "instance", "due_at", "met_at", "breached_at", "elapsed_seconds", "remaining_seconds", "policy_version",
    "calendar",
}  # fmt: skip
BREACH_KEYS = {"event_id", "ticket_id", "clock", "instance", "priority", "due_at", "breached_at", "policy_version"}
STATS_KEYS = {
    "priority", "clock", "met", "breached", "open", "stopped", "compliance_percent", "median_seconds",
    "p90_seconds", "measured", "histogram",
}  # fmt: skip
_numbers = itertools.count(900_000 + uuid.uuid4().int % 50_000)
_EVENT_DATA: dict[str, Callable[[], dict]] = {
    "ticket.replied": lambda: {
        "reply_id": uuid.uuid4().hex,
        "agent_id": "jane",
        "agent_name": "Jane Doe",
        "body": "On it.",
        "first_response": True,
    },  # fmt: skip
    "ticket.message_added": lambda: {
        "message_id": uuid.uuid4().hex,
        "body": "Still broken.",
        "author": {"type": "requester", "name": "Ana Ruiz", "email": "ana@example.com"},
    },  # fmt: skip
    "ticket.status_changed": lambda: {"status": "in_progress", "previous_status": "assigned"},
    "ticket.priority_changed": lambda: {"priority": "high", "previous_priority": "normal"},
    "ticket.resolved": lambda: {"agent_id": "jane", "resolution": "Fixed."},
    "ticket.reopened": lambda: {"reason": "The requester wrote again."},
    "ticket.closed": lambda: {"by": "requester"},
}


# --- small helpers without fixtures -----------------------------------------------------------------


def unique(prefix: str) -> str:
    """An id that fits calendar ids, unique in the session."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin() -> dict[str, str]:
    return auth_header("admin")


def agent() -> dict[str, str]:
    return auth_header("agent", "jane")


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """A problem+json answer with the given status (and, for a validation error, the named field)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.headers["Content-Type"] == PROBLEM_JSON, response.headers["Content-Type"]
    body = json.loads(response.get_data(as_text=True))
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    if field is not None:
        assert field in body.get("errors", {}), body
        assert all(isinstance(message, str) and message for message in body["errors"][field]), body
    return body


def created_event(ticket_id: str, priority: str = "normal", at: datetime | None = None) -> dict:
    data = {
        "number": next(_numbers),
        "subject": "VPN drops every hour",
        "description": "Since Monday the VPN drops every hour.",
        "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "topic": "network",
        "priority": priority,
        "source": "web",
    }
    return event_from("intake", "ticket.created", ticket_id, data, occurred_at=at)


def ticket_event(kind: str, ticket_id: str, at: datetime, **data) -> dict:
    """An envelope of another service's ticket event (its data filled in with plausible values)."""
    producer = "intake" if kind in ("ticket.message_added", "ticket.reopened", "ticket.closed") else "assignment"
    return event_from(producer, kind, ticket_id, {**_EVENT_DATA[kind](), **data}, occurred_at=at)


def breached_event(ticket_id: str, breached_at: datetime, clock: str = "first_response", **extra) -> dict:
    """An sla.breached as sla publishes it (GET /breaches lists it once the worker has seen it)."""
    data = {
        "clock": clock,
        "instance": 0,
        "due_at": format_time(breached_at),
        "breached_at": format_time(breached_at),
        "priority": "normal",
        "policy_version": 1,
        **extra,
    }
    return event_from("sla", "sla.breached", ticket_id, data)


def policy_body(**overrides) -> dict:
    body = {
        "first_response_minutes": 60,
        "next_response_minutes": 120,
        "resolution_minutes": 480,
        "warn_at_percent": [75, 90],
        "calendar": "24x7",
    }
    return {**body, **overrides}


def calendar_body(**overrides) -> dict:
    weekdays = {day: [["09:00", "13:00"], ["14:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    return {"timezone": "Europe/Madrid", "hours": weekdays, "holidays": ["2026-12-25"], **overrides}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(name="sla_app")
def sla_app_fixture(infra):
    """sla's Flask app in-process, on the session's MongoDB and broker."""
    with in_process_app("sla") as app:
        yield app


@pytest.fixture(name="sla_client")
def sla_client_fixture(sla_app):
    return sla_app.test_client()


@pytest.fixture(name="sla_ctx")
def sla_ctx_fixture(sla_app) -> handlers.Sla:
    """What the handlers take: the app's stores, flusher and settings."""
    return sla_app.extensions["ticketflow.sla"]


@pytest.fixture(name="sla_db")
def sla_db_fixture(infra, settings) -> Iterator:
    with service_database(infra, settings, "sla") as db:
        yield db


@pytest.fixture(name="sla_seed")
def sla_seed_fixture(sla_ctx) -> Callable[..., str]:
    """sla_seed(priority="normal", at=None, ticket_id=None) -> ticket id, once sla handled its ticket.created."""

    def seed(priority: str = "normal", at: datetime | None = None, ticket_id: str | None = None) -> str:
        ticket_id = ticket_id or uuid.uuid4().hex
        handlers.on_created(sla_ctx, created_event(ticket_id, priority, at))
        return ticket_id

    return seed


@pytest.fixture(name="sla_handle")
def sla_handle_fixture(sla_ctx) -> Callable[[dict], None]:
    """Handle an envelope as sla's worker would (its handler table), in-process."""
    table = bind(handlers.HANDLERS, sla_ctx)

    def run(envelope: dict) -> None:
        table[envelope["type"]](envelope)

    return run


@pytest.fixture(name="policies_restored")
def policies_restored_fixture(sla_ctx, sla_db) -> Iterator[None]:
    """The policies as they were before the test (tests share the session's database)."""
    sla_ctx.policies.seed_defaults(handlers.now())
    before = list(sla_db.policies.find())
    yield
    for doc in before:
        sla_db.policies.replace_one({"_id": doc["_id"]}, doc, upsert=True)


@pytest.fixture(name="forget_tickets")
def forget_tickets_fixture(sla_db) -> Iterator[list[str]]:
    """Ticket ids whose clocks, copies and breaches are removed after the test, and every far-future day's figures
    (data other tests must not count)."""
    ticket_ids: list[str] = []
    yield ticket_ids
    sla_db.clocks.delete_many({"_id": {"$in": ticket_ids}})
    sla_db.clock_histories.delete_many({"_id": {"$in": ticket_ids}})
    sla_db.breaches.delete_many({"ticket_id": {"$in": ticket_ids}})
    sla_db.stats_days.delete_many({"day": {"$gte": utc(2100, 1, 1)}})  # the far-future days' figures (StatsDays)


@pytest.fixture(name="sla")
def sla_fixture(infra) -> Iterator[handlers.Sla]:
    """sla's handlers wired to the session's stores, without the HTTP app (the worker's view of sla)."""
    mongo.close_client()
    app = handlers.bootstrap(load_settings())
    app.ensure_storage()
    yield app
    flushed(app.flusher)
    mongo.close_client()
