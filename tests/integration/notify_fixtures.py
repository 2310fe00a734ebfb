"""Fixtures and factories for notify's integration tests (imported by the test_notify_* modules).

Each fixture function is `<name>_fixture` and registered as `<name>`, so a test module imports the
function and asks for the fixture by its short name.

Notifications come into being the way they do in production: an envelope handled by notify's own
`handlers.on_event`, in-process (`notify_event`: a ticket.created gives the requester's receipt, and one
delivery per matching webhook); or, for exact times and statuses, inserted through the store
(`make_notification`). Nothing is sent: no worker runs, so a record stays as the test leaves it.
The session shares one database: each test uses its own ticket ids and addresses, and the webhooks a
test registers are removed afterwards (they would get deliveries of every later test's events).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from services.notify import handlers
from services.notify.domain import Notification, notification_id
from tests.harness import auth_header
from tests.integration.conftest import event_from, in_process_app, service_database

PROBLEM_JSON = "application/problem+json"
NOTIFICATION_KEYS = {
    "id", "event_id", "event_type", "ticket_id", "channel", "recipient", "subject", "body", "status",
    "attempts", "last_error", "created_at", "sent_at", "next_attempt_at",
}  # fmt: skip
WEBHOOK_KEYS = {"id", "url", "events", "created_at"}
SECRET = "s3cret-of-the-hook-0123456789"
_numbers = itertools.count(700_000 + uuid.uuid4().int % 50_000)


# --- small helpers without fixtures -----------------------------------------------------------------


def admin() -> dict[str, str]:
    return auth_header("admin")


def agent() -> dict[str, str]:
    return auth_header("agent", "jane")


def portal() -> dict[str, str]:
    return auth_header("portal")


def unique_email(prefix: str = "ana") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def webhook_body(**overrides) -> dict:
    body = {"url": f"https://hooks.example.com/ticketflow/{uuid.uuid4().hex[:8]}", "events": ["ticket.*"]}
    return {**body, "secret": SECRET, **overrides}


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


def created_event(ticket_id: str, email: str | None = None, subject: str = "VPN drops every hour") -> dict:
    """A ticket.created as intake publishes it: the requester gets a receipt."""
    data = {
        "number": next(_numbers),
        "subject": subject,
        "description": "Since Monday the VPN drops every hour.",
        "requester": {"name": "Ana Ruiz", "email": email or unique_email()},
        "topic": "network",
        "priority": "normal",
        "source": "web",
    }
    return event_from("intake", "ticket.created", ticket_id, data)


def assigned_event(ticket_id: str, agent_email: str) -> dict:
    """A ticket.assigned to agent jane (at agent_email): the agent gets an email."""
    data = {
        "agent_id": "jane",
        "agent_name": "Jane Doe",
        "agent_email": agent_email,
        "team": "network",
        "team_lead_email": "lead@example.com",
        "previous_agent_id": None,
        "reason": "manual",
        "decision": None,
    }
    return event_from("assignment", "ticket.assigned", ticket_id, data)


def make_dead(ctx: handlers.Notify, record: Notification) -> Notification:
    """Fail the record's attempts until none is left (dead), and store it so."""
    at = handlers.now()
    while record.status != "dead":
        record.failed("connection refused", at, ctx.settings.retry_delays)
    ctx.notifications.save(record, {})
    return record


def make_failed(ctx: handlers.Notify, record: Notification) -> Notification:
    """One failed attempt: failed, due again after the first delay."""
    record.failed("connection refused", handlers.now(), ctx.settings.retry_delays)
    ctx.notifications.save(record, {})
    return record


def make_sent(ctx: handlers.Notify, record: Notification) -> Notification:
    record.succeeded(handlers.now())
    ctx.notifications.save(record, {})
    return record


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(name="notify_app")
def notify_app_fixture(infra):
    """notify's Flask app in-process, on the session's MongoDB and broker; the test's webhooks removed after."""
    with in_process_app("notify") as app:
        began = handlers.now()
        yield app
        app.extensions["ticketflow.notify"].webhooks.collection.delete_many({"created_at": {"$gte": began}})


@pytest.fixture(name="notify_client")
def notify_client_fixture(notify_app):
    return notify_app.test_client()


@pytest.fixture(name="notify_ctx")
def notify_ctx_fixture(notify_app) -> handlers.Notify:
    """What the handlers take: the app's stores, flusher and settings."""
    return notify_app.extensions["ticketflow.notify"]


@pytest.fixture(name="notify_db")
def notify_db_fixture(infra, settings) -> Iterator:
    with service_database(infra, settings, "notify") as db:
        yield db


@pytest.fixture(name="notify_event")
def notify_event_fixture(notify_ctx) -> Callable[[dict], list[Notification]]:
    """notify_event(envelope) -> the notifications it caused (handled as the worker would, in-process)."""

    def handle(envelope: dict) -> list[Notification]:
        handlers.on_event(notify_ctx, envelope)
        docs = notify_ctx.notifications.collection.find({"event_id": envelope["event_id"]}, {"_id": 1})
        return [notify_ctx.notifications.get(doc["_id"]) for doc in docs]

    return handle


@pytest.fixture(name="make_notification")
def make_notification_fixture(notify_ctx) -> Callable[..., Notification]:
    """make_notification(**overrides) -> a pending email notification, stored (created_at may be set)."""

    def make(**overrides) -> Notification:
        at: datetime = overrides.pop("created_at", None) or handlers.now()
        event_id = overrides.pop("event_id", None) or str(uuid.uuid4())
        channel = overrides.get("channel", "email")
        recipient = overrides.pop("recipient", None) or unique_email()
        values = {
            "id": notification_id(event_id, channel, recipient),
            "event_id": event_id,
            "event_type": "ticket.replied",
            "ticket_id": uuid.uuid4().hex,
            "channel": channel,
            "recipient": recipient,
            "subject": "[#100042] VPN drops every hour",
            "body": "Jane Doe replied to your ticket.",
            "html": "<p>Jane Doe replied to your ticket.</p>",
            "created_at": at,
            "next_attempt_at": at + timedelta(seconds=3600),  # not due: nothing here sends anyway
            **overrides,
        }
        record = Notification(**values)
        assert notify_ctx.notifications.insert(record, {}), "a notification with this id exists already"
        return record

    return make
