"""intake as it runs in production: gunicorn api and worker processes against the real broker and server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.harness import auth_header, wait_until
from tests.integration.conftest import ticket_request
from ticketflow.cli import api_command, worker_command
from ticketflow.local import free_port


def _post(url: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_gunicorn_api_and_worker_carry_a_ticket_from_post_to_timeline(spawn_api, spawn_worker, tap, intake_db):
    api = spawn_api("intake")
    spawn_worker("intake")
    status, headers, ticket = _post(f"{api.url}/tickets", ticket_request(), auth_header("portal"))
    assert status == 201 and headers["Location"] == f"/tickets/{ticket['id']}"
    (created,) = wait_until(lambda: tap.envelopes(ticket_id=ticket["id"], type="ticket.created"), timeout=30)
    assert created["correlation_id"] == headers["X-Request-ID"]
    wait_until(lambda: intake_db.timeline.find_one({"ticket_id": ticket["id"]}), timeout=30)
    published = 'ticketflow_events_published_total{service="intake",type="ticket.created"}'

    def scraped() -> str | None:
        with urllib.request.urlopen(f"{api.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        return text if published in text else None

    # counted once the broker's confirm is back in the api's flusher thread, which may be after the tap and the
    # worker have the event already
    metrics = wait_until(scraped, timeout=30)
    assert "ticketflow_http_request_duration_seconds_bucket" in metrics


def test_an_api_without_its_secret_refuses_to_start_with_a_clear_message(spawn):
    handle = spawn(api_command("intake", free_port()), env={"TICKETFLOW_JWT_SECRET": ""}, name="no-secret")
    assert handle.proc.wait(timeout=30) != 0
    assert "TICKETFLOW_JWT_SECRET is not set" in handle.log_text()


def test_a_worker_waits_for_mongodb_instead_of_crashing(spawn, tap):
    handle = spawn(
        worker_command("intake"),
        env={"MONGO_URL": f"mongodb://127.0.0.1:{free_port()}", "TICKETFLOW_MONGO_TIMEOUT_MS": "200"},
        name="no-mongo",
    )
    wait_until(lambda: "waiting for MongoDB" in handle.log_text(), timeout=15)
    assert handle.running
