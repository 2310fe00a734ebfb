"""Every route of every service's app while its MongoDB does not answer: 503 with Retry-After, never a 500.

Each app runs in-process on a MONGO_URL where nothing listens (a port just freed), with a short selection
timeout. Every route is called with each of its methods, path parameters filled in, as an admin (the portal's
pages, without its session cookie, mostly answer with its sign-in page: also fine). Bodies are `{}`:
a route that refuses that before it reads anything answers its 4xx, as it would with the database up.
/readyz answers its own 503 (its checks say what is down); /healthz stays 200: the process itself is fine.
"""

from __future__ import annotations

import importlib
import os
import re
import time

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from shared import mongo
from shared.config import load_settings
from tests.harness import auth_header
from ticketflow.local import free_port

SERVICES = ("intake", "assignment", "sla", "notify", "portal")
PROBLEM_JSON = "application/problem+json"
NO_STORAGE = re.compile(r"^/(healthz|readyz|metrics|openapi\.json|docs|docs/assets/.*|static/.*)$")


@pytest.fixture
def down_settings():
    """Settings whose database does not answer; the process's client closed before and after."""
    url = f"mongodb://127.0.0.1:{free_port()}"
    mongo.close_client()
    yield load_settings({**os.environ, "MONGO_URL": url, "TICKETFLOW_MONGO_TIMEOUT_MS": "100"})
    mongo.close_client()


def _calls(app) -> list[tuple[str, str]]:
    """(method, path) of every route, each <parameter> given a value no store holds."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: f"x-{m.group(1).replace('_', '-')}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if not NO_STORAGE.match(path):
                found.append((method, path))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_answers_503_with_retry_after_or_its_4xx_never_a_500(service, down_settings, monkeypatch):
    monkeypatch.setattr(mongo, "DOWN_FOR", 0.0)  # each request asks the database itself: its own path is tested
    app = importlib.import_module(f"services.{service}.api").create_app(down_settings)
    client = app.test_client()
    statuses = {}
    for method, path in _calls(app):
        response = client.open(path, method=method, json={}, headers=auth_header("admin"))
        statuses[(method, path)] = response.status_code
        assert response.status_code != 500 and response.status_code < 600, (method, path, response.get_data()[:300])
        if response.status_code == 503:
            assert response.headers.get("Retry-After"), (method, path)
            if response.mimetype != "text/html":  # the portal's pages answer a page that says to come back
                assert response.mimetype == PROBLEM_JSON and response.get_json()["status"] == 503, (method, path)
    unavailable = [call for call, status in statuses.items() if status == 503]
    assert len(unavailable) >= len(statuses) // 3, statuses  # most routes reached the database


def test_after_a_selection_timed_out_the_api_refuses_at_once_until_it_asks_again(down_settings, caplog):
    app = importlib.import_module("services.intake.api").create_app(down_settings)
    client = app.test_client()

    first = client.get("/topics", headers=auth_header("admin"))
    assert first.status_code == 503 and first.headers["Retry-After"] == "2"
    assert "ServerSelectionTimeoutError" in caplog.text  # it asked the database, which did not answer
    assert mongo.known_down(down_settings) and not mongo.known_down(load_settings())  # that database only
    caplog.clear()
    again = client.get("/topics", headers=auth_header("admin"))
    assert again.status_code == 503 and again.headers["Retry-After"] == "2" and again.mimetype == PROBLEM_JSON
    assert "ServerSelectionTimeoutError" not in caplog.text  # refused at once, without asking it
    assert client.get("/healthz").status_code == 200  # a probe never needs the database


def test_once_the_window_passes_one_request_asks_the_database_and_the_others_wait_for_its_answer(down_settings):
    """After DOWN_FOR, the first request asks; the next ones are refused at once while it waits its selection
    timeout out; an answer clears the mark, a timeout sets it again."""
    mongo.note_failure(down_settings, ServerSelectionTimeoutError("no server"))
    assert mongo.known_down(down_settings)
    mongo._down_until[down_settings.mongo_url] = time.monotonic() - 0.001  # DOWN_FOR has passed
    assert not mongo.known_down(down_settings)  # this one asks the database
    assert mongo.known_down(down_settings) and mongo.known_down(down_settings)  # these wait for its answer
    mongo.note_answer(down_settings)
    assert not mongo.known_down(down_settings) and not mongo.known_down(down_settings)
