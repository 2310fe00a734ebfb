"""Fixtures for one service against the real broker and the real wire server."""

from __future__ import annotations

import importlib
import itertools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest
from pymongo import MongoClient

from shared import events, mongo, topology
from shared.config import load_settings
from tests.harness import auth_header

_counter = itertools.count(1)


class EventTap:
    """An exclusive queue bound to the events exchange: what really went over the wire."""

    def __init__(self, amqp_url: str, exchange: str, keys: tuple[str, ...] = ("#",)) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for key in keys:
            self.channel.queue_bind(self.queue, exchange, routing_key=key)
        self.received: list[tuple[object, dict]] = []

    def drain(self) -> list[tuple[object, dict]]:
        """Everything that arrived so far, as (properties, envelope)."""
        while True:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.received
            self.received.append((props, json.loads(body)))

    def envelopes(self, ticket_id: str | None = None, type: str | None = None) -> list[dict]:
        return [
            env
            for _, env in self.drain()
            if (ticket_id is None or env["ticket_id"] == ticket_id) and (type is None or env["type"] == type)
        ]

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def settings(infra):
    return load_settings()


@pytest.fixture
def tap(infra, settings) -> Iterator[EventTap]:
    tap = EventTap(infra.amqp_url, settings.exchange)
    yield tap
    tap.close()


@contextmanager
def service_database(infra, settings, service: str) -> Iterator:
    """A service's own database on the session's server (for looking behind its API)."""
    client = MongoClient(infra.mongo_url, tz_aware=True)
    yield client[settings.database_name(service)]
    client.close()


@contextmanager
def in_process_app(service: str) -> Iterator:
    """A service's Flask app in-process, on the session's MongoDB and broker; its events flushed afterwards, its
    /readyz connection closed."""
    create_app = importlib.import_module(f"services.{service}.api").create_app
    mongo.close_client()
    app = create_app()
    yield app
    app.extensions[f"ticketflow.{service}"].flusher.drain()
    app.extensions["ticketflow.readyz"].close()  # the broker connection /readyz keeps
    mongo.close_client()


@pytest.fixture
def intake_db(infra, settings):
    with service_database(infra, settings, "intake") as db:
        yield db


@pytest.fixture
def intake_app(infra):
    with in_process_app("intake") as app:
        yield app


@pytest.fixture
def client(intake_app):
    return intake_app.test_client()


def ticket_request(**overrides) -> dict:
    n = next(_counter)
    request = {
        "subject": f"VPN drops every hour #{n}",
        "description": "Since Monday the VPN drops every hour.",
        "requester": {"name": "Ana Ruiz", "email": f"ana.{uuid.uuid4().hex[:8]}@example.com"},
        "topic": "network",
        "priority": "normal",
        "source": "web",
    }
    request.update(overrides)
    return request


@pytest.fixture
def make_ticket(client):
    """Create a ticket through the API (factory: make_ticket(**overrides) -> the ticket as JSON)."""

    def make(**overrides) -> dict:
        response = client.post("/tickets", json=ticket_request(**overrides), headers=auth_header("portal"))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def publish(infra, settings):
    """Publish raw bytes (or an envelope) to the events exchange, as another service would."""
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    channel = connection.channel()
    topology.declare_topology(channel, settings)  # as every publisher does: no event is published into nothing
    channel.confirm_delivery()

    def send(routing_key: str, body: bytes | dict, message_id: str | None = None) -> None:
        raw = events.encode(body) if isinstance(body, dict) else body
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=message_id)
        channel.basic_publish(settings.exchange, routing_key, raw, props)

    yield send
    connection.close()


def event_from(producer: str, kind: str, ticket_id: str, data: dict, **kwargs) -> dict:
    return events.make_event(kind, ticket_id, data, producer=producer, **kwargs)
