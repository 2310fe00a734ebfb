"""intake's HTTP API (tickets, thread, timeline, topics), in-process, on a real MongoDB wire server and broker.

What went over the broker is read from the `tap`; "nothing more will be published" is the moment the
ticket's document has no `_outbox` left (every staged event was confirmed by the broker and cleared).
Tests that need intake's consumer (events from other services, the timeline, auto-close) run a real
intake worker process.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain import DEFAULT_TOPICS
from shared import mongo
from shared.auth import issue_token
from shared.events import parse_time
from shared.topology import queue_name
from tests.harness import auth_header, consumers_on, requester_header, token, wait_until, walk_pages
from tests.integration.conftest import event_from, in_process_app, ticket_request

PROBLEM_JSON = "application/problem+json"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
TICKET_KEYS = {
    "id", "number", "subject", "description", "requester", "topic", "priority", "source", "status", "assignee",
    "team", "sla", "thread", "resolution", "resolved_at", "earlier_resolutions", "merged_into", "created_at",
    "updated_at",
}  # fmt: skip
THREAD_ENTRY_KEYS = {"id", "kind", "author", "body", "created_at"}
TIMELINE_ITEM_KEYS = {"event_id", "type", "producer", "occurred_at", "correlation_id", "summary"}
MIB = 1024 * 1024
EVENT_TIMEOUT = 15.0


# --- helpers ----------------------------------------------------------------------------------


def portal() -> dict[str, str]:
    return auth_header("portal")


def admin() -> dict[str, str]:
    return auth_header("admin")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """A problem+json answer with the given status (and, for a validation error, the named field)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    assert all(isinstance(body[key], str) and body[key] for key in ("type", "title", "detail")), body
    if field is not None:
        assert field in body.get("errors", {}), body
        assert all(isinstance(message, str) for message in body["errors"][field])
    return body


def assert_time(value) -> datetime:
    assert isinstance(value, str) and RFC3339_Z.match(value), value
    return parse_time(value)


def get_ticket(client, ticket_id: str) -> dict:
    response = client.get(f"/tickets/{ticket_id}", headers=portal())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored_count(intake_db, **query) -> int:
    return intake_db.tickets.count_documents(query)


def outbox_empty(intake_db, ticket_id: str) -> bool:
    """The deterministic "nothing more will be published": every staged event was confirmed and cleared."""
    doc = intake_db.tickets.find_one({"_id": ticket_id}, {"_outbox": 1})
    return doc is not None and "_outbox" not in doc


def wait_for_envelopes(tap, ticket_id: str, type: str, count: int = 1) -> list[dict]:
    return wait_until(
        lambda: (found := tap.envelopes(ticket_id=ticket_id, type=type)) and len(found) >= count and found,
        timeout=EVENT_TIMEOUT,
        message=f"{count} x {type} of {ticket_id} on the broker",
    )


def handled(intake_db, event_id: str) -> None:
    """Wait until intake's consumer has finished handling the event (it records each handled event id)."""
    wait_until(
        lambda: intake_db.processed_events.find_one({"_id": event_id}),
        timeout=EVENT_TIMEOUT,
        message=f"intake's worker handled event {event_id}",
    )


def assigned_data(**overrides) -> dict:
    data = {
        "agent_id": "jane", "agent_name": "Jane Doe", "agent_email": "jane@example.com", "team": "network",
        "reason": "auto",
        "decision": {"rule": "fewest open tickets", "candidates": [
            {"agent_id": "jane", "open_tickets": 1, "capacity": 10, "available": True},
            {"agent_id": "omar", "open_tickets": 4, "capacity": 10, "available": True},
        ]},
    }  # fmt: skip
    data.update(overrides)
    return data


def replied_data(**overrides) -> dict:
    data = {"reply_id": unique("reply"), "agent_id": "jane", "agent_name": "Jane Doe",
            "body": "Please restart the VPN client.", "first_response": True}  # fmt: skip
    data.update(overrides)
    return data


def sla_data(clock: str, due_at: str, **extra) -> dict:
    return {"clock": clock, "instance": 0, "due_at": due_at, "priority": "normal", "policy_version": 1, **extra}


def learn(app, envelope: dict) -> None:
    """Handle an event in-process with intake's own handler table, as its worker would."""
    from services.intake import handlers

    handlers.HANDLERS[envelope["type"]](app.extensions["ticketflow.intake"], envelope)


def learn_agent(app, agent_id: str, teams: list[str]) -> None:
    data = {"agent_id": agent_id, "name": f"Agent {agent_id}", "email": f"{agent_id}@example.com", "teams": teams,
            "lead_of": [], "available": True}  # fmt: skip
    learn(app, event_from("assignment", "agent.updated", agent_id, data))


@pytest.fixture
def intake_worker(spawn_worker, infra, settings):
    """Start a real intake worker (optionally with extra env); return once the broker sees it consume its queue.

    The consumer subscribes after declaring and binding its queue, so from then on every published event reaches it.
    """

    def start(**env: str):
        worker = spawn_worker("intake", env=env or None)
        wait_until(
            lambda: not worker.running or consumers_on(infra.amqp_url, queue_name(settings, "intake")) >= 1,
            timeout=30,
            message="the intake worker consumes its queue",
        )
        assert worker.running, worker.log_text()
        return worker

    return start


@pytest.fixture(scope="module", autouse=True)
def close_the_mongo_client_after_the_module():
    """conftest's intake_app leaves the process's MongoDB client open after the last test; close it."""
    yield
    mongo.close_client()


# --- POST /tickets ----------------------------------------------------------------------------


def test_create_answers_201_with_location_and_the_contract_ticket(client, intake_db):
    request = ticket_request()
    response = client.post("/tickets", json=request, headers=portal())

    assert response.status_code == 201, response.get_json()
    assert response.headers["Content-Type"] == "application/json"
    ticket = response.get_json()
    assert set(ticket) == TICKET_KEYS
    assert response.headers["Location"] == f"/tickets/{ticket['id']}"
    assert isinstance(ticket["id"], str) and ticket["id"]
    assert isinstance(ticket["number"], int) and ticket["number"] > 0
    for key in ("subject", "description", "requester", "topic", "priority", "source"):
        assert ticket[key] == request[key], key
    assert ticket["status"] == "new"
    assert ticket["assignee"] is None and ticket["team"] is None
    assert ticket["sla"] == {
        "first_response_due_at": None,
        "next_response_due_at": None,  # added after the contract
        "resolution_due_at": None,
        "breached": False,
    }
    assert ticket["thread"] == []
    created, updated = assert_time(ticket["created_at"]), assert_time(ticket["updated_at"])
    assert created == updated
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
    assert get_ticket(client, ticket["id"]) == ticket
    assert stored_count(intake_db, _id=ticket["id"]) == 1


def test_numbers_are_unique_and_increasing_across_creates(make_ticket):
    numbers = [make_ticket()["number"] for _ in range(4)]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)


def test_create_defaults_priority_and_source_and_lowercases_the_email(client):
    request = ticket_request(requester={"name": "Ana Ruiz", "email": f"  Ana.{uuid.uuid4().hex[:6]}@Example.COM "})
    del request["priority"], request["source"]
    response = client.post("/tickets", json=request, headers=portal())
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()
    assert (ticket["priority"], ticket["source"]) == ("normal", "web")
    assert ticket["requester"]["email"] == request["requester"]["email"].strip().lower()


@pytest.mark.parametrize("priority", ["low", "normal", "high", "emergency"])
def test_create_accepts_every_priority(make_ticket, priority):
    assert make_ticket(priority=priority)["priority"] == priority


@pytest.mark.parametrize("source", ["web", "email", "phone", "api"])
def test_create_accepts_every_source(make_ticket, source):
    assert make_ticket(source=source)["source"] == source


def test_create_accepts_a_subject_of_200_characters_and_admins(client):
    subject = unique("s").ljust(200, "x")
    response = client.post("/tickets", json=ticket_request(subject=subject), headers=admin())
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["subject"] == subject


def _as_json(change=lambda body: body):
    return lambda body: {"data": json.dumps(change(body)), "content_type": "application/json"}


def _without(key: str):
    return lambda body: {name: value for name, value in body.items() if name != key}


def _with(**fields):
    return lambda body: {**body, **fields}


def _bearer(make_token):
    return lambda: {"Authorization": f"Bearer {make_token()}"}


BAD_CREATES = [
    # (how the body is sent, which headers, expected status, the field named in errors)
    pytest.param(lambda b: {"data": json.dumps(b)[:-3], "content_type": "application/json"}, portal, 400, None,
                 id="malformed-json"),
    pytest.param(lambda b: {"data": json.dumps(b), "content_type": "text/plain"}, portal, 400, None, id="text-plain"),
    pytest.param(lambda b: {"data": {"subject": b["subject"], "description": b["description"]}}, portal, 400, None,
                 id="form-urlencoded"),
    pytest.param(_as_json(_with(colour="red")), portal, 422, "colour", id="unknown-field"),
    pytest.param(_as_json(_without("subject")), portal, 422, "subject", id="missing-subject"),
    pytest.param(_as_json(_with(subject="")), portal, 422, "subject", id="empty-subject"),
    pytest.param(_as_json(_with(subject=" \t ")), portal, 422, "subject", id="blank-subject"),
    pytest.param(_as_json(_with(subject="s" * 201)), portal, 422, "subject", id="subject-201-chars"),
    pytest.param(_as_json(_without("description")), portal, 422, "description", id="missing-description"),
    pytest.param(_as_json(_with(description="d" * 20001)), portal, 422, "description", id="description-20001"),
    pytest.param(_as_json(lambda b: {**b, "requester": {**b["requester"], "email": "not-an-email"}}), portal, 422,
                 "requester.email", id="bad-email"),
    pytest.param(_as_json(lambda b: {**b, "requester": {"email": b["requester"]["email"]}}), portal, 422,
                 "requester.name", id="missing-requester-name"),
    pytest.param(_as_json(_with(topic="no-such-topic")), portal, 422, "topic", id="unknown-topic"),
    pytest.param(_as_json(_with(topic="Network & VPN")), portal, 422, "topic", id="malformed-topic"),
    pytest.param(_as_json(_with(priority="urgent")), portal, 422, "priority", id="bad-priority"),
    pytest.param(_as_json(_with(source="fax")), portal, 422, "source", id="bad-source"),
    pytest.param(_as_json(lambda b: [b]), portal, 422, None, id="json-list-not-object"),
    pytest.param(_as_json(_with(description="x" * (2 * MIB))), portal, 413, None, id="body-2-mib"),
    pytest.param(_as_json(), dict, 401, None, id="no-token"),
    pytest.param(_as_json(), lambda: {"Authorization": "Bearer not.a.jwt"}, 401, None, id="malformed-token"),
    pytest.param(_as_json(), lambda: {"Authorization": f"Basic {token('portal')}"}, 401, None, id="not-bearer"),
    pytest.param(_as_json(), _bearer(lambda: issue_token(secrets.token_urlsafe(32), "portal")), 401, None,
                 id="other-secret"),
    pytest.param(_as_json(), _bearer(lambda: token("portal", ttl=-60)), 401, None, id="expired-token"),
    pytest.param(_as_json(), lambda: auth_header("agent", "jane"), 403, None, id="agent-token"),
]  # fmt: skip


@pytest.mark.parametrize(("send", "headers", "status", "field"), BAD_CREATES)
def test_create_refuses_bad_input_with_problem_json_and_stores_nothing(client, intake_db, send, headers, status, field):
    body = ticket_request(subject=unique("refused"))
    subject, email = body["subject"], body["requester"]["email"]

    response = client.post("/tickets", headers=headers(), **send(body))

    problem = assert_problem(response, status, field)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Traceback" not in json.dumps(problem)
    assert stored_count(intake_db, **{"$or": [{"subject": subject}, {"requester.email": email}]}) == 0


def test_a_subject_and_a_requesters_name_are_one_line_each(make_ticket, client):
    """A control character or a line break in them (pasted, an email header's) becomes a space: a name never starts
    a line of its own in an email ("Hello Ana" then a forged "Bcc:"), a NUL never reaches a page. A bidi mark stays
    (a name in Arabic needs it), a bidi override does not (it shows a subject as another); the description keeps
    its lines."""
    ticket = make_ticket(
        subject="VPN\x00 down\r\nagain",
        description="Line one\nLine two",
        requester={"name": "Ana\r\nBcc: evil@example.com\u2028\u200f", "email": "ana@example.com"},
    )
    assert ticket["subject"] == "VPN  down  again"
    assert ticket["requester"]["name"] == "Ana  Bcc: evil@example.com \u200f"
    assert ticket["description"] == "Line one\nLine two"
    reversed_ = make_ticket(subject="Invoice \u202efdp.exe\u202c", requester={"name": "\u202dAna", "email": "a@b.co"})
    assert (reversed_["subject"], reversed_["requester"]["name"]) == ("Invoice fdp.exe", "Ana")  # shown as stored
    blank = client.post("/tickets", json=ticket_request(subject="\x00\x07"), headers=portal())
    assert_problem(blank, 422, field="subject")  # nothing but controls: blank


def test_unknown_route_and_unknown_ticket_answer_404_problem_json(client):
    assert_problem(client.get("/no-such-route", headers=portal()), 404)
    missing = uuid.uuid4().hex
    assert_problem(client.get(f"/tickets/{missing}", headers=portal()), 404)
    assert_problem(client.get(f"/tickets/{missing}/timeline", headers=portal()), 404)
    assert_problem(client.post(f"/tickets/{missing}/messages", json={"body": "hello?"}, headers=portal()), 404)
    assert_problem(client.post(f"/tickets/{missing}/close", headers=portal()), 404)


def test_a_wrong_method_answers_405_problem_json(client, make_ticket):
    ticket = make_ticket()
    assert_problem(client.delete(f"/tickets/{ticket['id']}", headers=admin()), 405)
    assert_problem(client.put("/tickets", json={}, headers=admin()), 405)
    assert get_ticket(client, ticket["id"])["status"] == "new"


def test_a_405_names_the_allowed_methods(client):
    response = client.delete("/tickets", headers=admin())
    assert response.status_code == 405
    assert {m.strip() for m in response.headers.get("Allow", "").split(",")} >= {"GET", "POST"}


# --- Idempotency-Key --------------------------------------------------------------------------


def test_idempotency_key_repeat_answers_the_same_ticket_and_publishes_once(client, intake_db, tap):
    request, key = ticket_request(), uuid.uuid4().hex
    headers = {**portal(), "Idempotency-Key": key}

    first = client.post("/tickets", json=request, headers=headers)
    again = client.post("/tickets", json=request, headers=headers)

    assert first.status_code == 201, first.get_json()
    assert again.status_code == 200, again.get_json()
    ticket = first.get_json()
    assert again.get_json() == ticket
    assert again.headers["Location"] == f"/tickets/{ticket['id']}"
    assert stored_count(intake_db, subject=request["subject"]) == 1
    wait_for_envelopes(tap, ticket["id"], "ticket.created")
    wait_until(lambda: outbox_empty(intake_db, ticket["id"]), timeout=EVENT_TIMEOUT, message="outbox cleared")
    created = tap.envelopes(ticket_id=ticket["id"], type="ticket.created")
    assert len(created) == 1
    assert created[0]["producer"] == "intake" and created[0]["data"]["number"] == ticket["number"]


def test_idempotency_key_with_another_body_answers_409(client, intake_db):
    key = uuid.uuid4().hex
    first = ticket_request()
    assert client.post("/tickets", json=first, headers={**portal(), "Idempotency-Key": key}).status_code == 201
    other = ticket_request()

    response = client.post("/tickets", json=other, headers={**portal(), "Idempotency-Key": key})

    assert_problem(response, 409)
    assert stored_count(intake_db, subject=other["subject"]) == 0
    assert stored_count(intake_db, subject=first["subject"]) == 1


def test_an_idempotency_key_is_its_callers_own(client, intake_db):
    """Keys are chosen by clients (the portal passes on a browser's form key): another caller who learnt or guessed
    one, with the same body, is answered a ticket of its own, never the first caller's; and one who used the key
    first, with any body, makes no 409 of the owner's request."""
    request, key = ticket_request(), uuid.uuid4().hex
    requester = requester_header(request["requester"]["email"])
    squatted = client.post("/tickets", json=ticket_request(), headers={**auth_header("admin"), "Idempotency-Key": key})
    assert squatted.status_code == 201

    first = client.post("/tickets", json=request, headers={**requester, "Idempotency-Key": key})
    again = client.post("/tickets", json=request, headers={**requester, "Idempotency-Key": key})
    by_admin = client.post("/tickets", json=request, headers={**auth_header("admin"), "Idempotency-Key": key})
    by_server = client.post("/tickets", json=request, headers={**portal(), "Idempotency-Key": key})

    # the admin's key is its own: used before with another body
    assert (first.status_code, again.status_code, by_admin.status_code, by_server.status_code) == (201, 200, 409, 201)
    ids = [response.get_json()["id"] for response in (squatted, first, again, by_server)]
    assert ids[1] == ids[2] and len(set(ids)) == 3
    assert stored_count(intake_db, subject=request["subject"]) == 2


@pytest.mark.parametrize("key", ["k" * 256, "has spaces", "ключ"], ids=["256-chars", "spaces", "non-ascii"])
def test_an_invalid_idempotency_key_answers_422(client, intake_db, key):
    request = ticket_request()
    headers = {**portal(), "Idempotency-Key": key.encode().decode("latin-1")}
    assert_problem(client.post("/tickets", json=request, headers=headers), 422, "Idempotency-Key")
    assert stored_count(intake_db, subject=request["subject"]) == 0


def test_an_idempotency_key_of_255_characters_is_accepted(client):
    response = client.post("/tickets", json=ticket_request(), headers={**portal(), "Idempotency-Key": "k" * 255})
    assert response.status_code == 201, response.get_json()


# --- X-Request-ID -----------------------------------------------------------------------------


def test_x_request_id_is_echoed_and_becomes_the_events_correlation_id(client, tap):
    request_id = f"req-{uuid.uuid4().hex}"
    response = client.post("/tickets", json=ticket_request(), headers={**portal(), "X-Request-ID": request_id})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == request_id

    (created,) = wait_for_envelopes(tap, response.get_json()["id"], "ticket.created")
    assert created["correlation_id"] == request_id


def test_x_request_id_is_generated_when_absent_and_replaced_when_invalid(client):
    generated = {client.get("/healthz").headers["X-Request-ID"] for _ in range(2)}
    assert len(generated) == 2 and all(REQUEST_ID.match(value) for value in generated)

    replaced = client.get("/healthz", headers={"X-Request-ID": "has spaces in it"}).headers["X-Request-ID"]
    assert replaced != "has spaces in it" and REQUEST_ID.match(replaced)

    too_long = "r" * 129
    assert client.get("/healthz", headers={"X-Request-ID": too_long}).headers["X-Request-ID"] != too_long


def test_x_request_id_is_on_error_responses_too(client):
    response = client.post("/tickets", json=ticket_request(), headers={"X-Request-ID": "err-123"})
    assert_problem(response, 401)
    assert response.headers["X-Request-ID"] == "err-123"
    assert client.get("/no-such-route", headers={"X-Request-ID": "err-456"}).headers["X-Request-ID"] == "err-456"


# --- GET /tickets -----------------------------------------------------------------------------


def test_list_is_newest_first_and_filters_by_requester_email_status_and_topic(client, make_ticket):
    email = f"list.{uuid.uuid4().hex[:8]}@example.com"
    requester = {"name": "Lia Sousa", "email": email}
    first = make_ticket(requester=requester)
    second = make_ticket(requester=requester, topic="hardware")
    third = make_ticket(requester=requester)
    make_ticket()  # someone else's
    assert client.post(f"/tickets/{third['id']}/close", headers=portal()).status_code == 200

    def ids(**query) -> list[str]:
        response = client.get("/tickets", query_string=query, headers=portal())
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
        listed = TICKET_KEYS - {"thread", "earlier_resolutions"} | {"thread_count"}  # no threads
        assert all(set(item) == listed for item in body["items"])
        return [item["id"] for item in body["items"]]

    assert ids(requester_email=email) == [third["id"], second["id"], first["id"]]
    assert ids(requester_email=email, status="closed") == [third["id"]]
    assert ids(requester_email=email, status="new") == [second["id"], first["id"]]
    assert ids(requester_email=email, topic="hardware") == [second["id"]]
    assert ids(requester_email=email, topic="hardware", status="closed") == []
    by_topic = client.get("/tickets", query_string={"topic": "hardware", "limit": 200}, headers=portal()).get_json()
    assert {item["topic"] for item in by_topic["items"]} == {"hardware"}
    assert second["id"] in {item["id"] for item in by_topic["items"]}


def test_list_is_open_to_agents_and_admins(client, make_ticket, intake_app):
    ticket = make_ticket()
    agent = unique("agent")
    learn_agent(intake_app, agent, ["network"])
    learn(intake_app, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data(agent_id=None,
                                 agent_name=None, agent_email=None)))  # fmt: skip
    for headers in (auth_header("agent", agent), admin()):
        query = {"requester_email": ticket["requester"]["email"]}
        response = client.get("/tickets", query_string=query, headers=headers)
        assert response.status_code == 200 and len(response.get_json()["items"]) == 1


def test_list_finds_a_requester_by_the_email_as_typed(client, make_ticket):
    typed = f"Mixed.{uuid.uuid4().hex[:8]}@Example.com"
    ticket = make_ticket(requester={"name": "Ana Ruiz", "email": typed})
    response = client.get("/tickets", query_string={"requester_email": typed}, headers=portal())
    assert [item["id"] for item in response.get_json()["items"]] == [ticket["id"]]


def test_list_pages_with_a_cursor_without_duplicates_or_gaps(client, make_ticket):
    requester = {"name": "Page Walker", "email": f"pages.{uuid.uuid4().hex[:8]}@example.com"}
    created = [make_ticket(requester=requester)["id"] for _ in range(5)]

    pages = walk_pages(client, "/tickets", {"requester_email": requester["email"], "limit": 2}, portal())

    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all(page["next_cursor"] for page in pages[:-1]) and pages[-1]["next_cursor"] is None
    assert [item["id"] for page in pages for item in page["items"]] == created[::-1]


def test_list_limit_one_and_two_hundred_are_accepted(client, make_ticket):
    make_ticket()
    for limit in (1, 200):
        response = client.get("/tickets", query_string={"limit": limit}, headers=portal())
        assert response.status_code == 200
        assert 1 <= len(response.get_json()["items"]) <= limit


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor!!"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"x":1}').decode()}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"requester_email": "nobody"}, "requester_email"),
    ],
    ids=["limit-0", "limit-201", "limit-text", "garbage-cursor", "foreign-cursor", "bad-status", "bad-email"],
)
def test_list_refuses_bad_query_parameters_with_422(client, query, field):
    assert_problem(client.get("/tickets", query_string=query, headers=portal()), 422, field)


@pytest.mark.parametrize("n", ["x", None, [1]], ids=["text", "null", "list"])
def test_list_refuses_a_forged_cursor_with_422(client, n):
    cursor = base64.urlsafe_b64encode(json.dumps({"n": n}).encode()).decode().rstrip("=")
    assert_problem(client.get("/tickets", query_string={"cursor": cursor}, headers=portal()), 422, "cursor")


def test_list_needs_a_token(client):
    assert_problem(client.get("/tickets"), 401)


# --- messages ---------------------------------------------------------------------------------


def test_message_answers_201_with_the_thread_entry_and_shows_in_the_thread(client, make_ticket, tap):
    ticket = make_ticket()
    response = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Still broken."}, headers=portal())

    assert response.status_code == 201, response.get_json()
    entry = response.get_json()
    assert set(entry) == THREAD_ENTRY_KEYS
    assert entry["kind"] == "message" and entry["body"] == "Still broken."
    assert entry["author"] == {"type": "requester", "name": ticket["requester"]["name"]}
    assert_time(entry["created_at"])
    after = get_ticket(client, ticket["id"])
    assert after["thread"] == [entry]
    assert after["status"] == "new"
    assert parse_time(after["updated_at"]) >= parse_time(ticket["updated_at"])

    (added,) = wait_for_envelopes(tap, ticket["id"], "ticket.message_added")
    assert added["data"] == {"message_id": entry["id"], "body": "Still broken.",
                             "author": {"type": "requester", **ticket["requester"]}}  # fmt: skip
    assert tap.envelopes(ticket_id=ticket["id"], type="ticket.reopened") == []


def test_a_messages_files_are_named_in_its_event_as_they_will_be_stored(client, make_ticket, tap):
    """The portal names the files it attaches next to the message (`files`): the event carries the names (for the
    agent's email), cleaned as a stored file's name is; the thread entry is as before."""
    ticket = make_ticket()
    names = ["C:\\Users\\ana\\screen.png", "\u202etxt.exe", "log.txt"]
    response = client.post(
        f"/tickets/{ticket['id']}/messages", json={"body": "Here.", "files": names}, headers=portal()
    )

    assert response.status_code == 201, response.get_json()
    assert set(response.get_json()) == THREAD_ENTRY_KEYS
    (added,) = wait_for_envelopes(tap, ticket["id"], "ticket.message_added")
    assert added["data"]["files"] == ["screen.png", "txt.exe", "log.txt"]


@pytest.mark.parametrize(
    ("files", "field"),
    [pytest.param(["a.txt"] * 51, "files", id="more-than-50"),
     pytest.param("a.txt", "files", id="not-a-list"),
     pytest.param(["a.txt", 7], "files.1", id="not-a-name")],
)  # fmt: skip
def test_a_messages_file_names_that_will_not_do_are_422_and_nothing_is_added(client, make_ticket, files, field):
    ticket = make_ticket()
    answer = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Here.", "files": files}, headers=portal())
    assert_problem(answer, 422, field)
    assert get_ticket(client, ticket["id"])["thread"] == []


def test_messages_keep_their_order_in_the_thread(client, make_ticket):
    ticket = make_ticket()
    bodies = ["first", "second", "third"]
    for body in bodies:
        assert (
            client.post(f"/tickets/{ticket['id']}/messages", json={"body": body}, headers=portal()).status_code == 201
        )
    assert [entry["body"] for entry in get_ticket(client, ticket["id"])["thread"]] == bodies


def test_message_on_a_closed_ticket_answers_409(client, make_ticket):
    ticket = make_ticket()
    assert client.post(f"/tickets/{ticket['id']}/close", headers=portal()).status_code == 200
    assert_problem(client.post(f"/tickets/{ticket['id']}/messages", json={"body": "hello?"}, headers=portal()), 409)
    assert get_ticket(client, ticket["id"])["thread"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param({"body": "   "}, "body", id="blank"),
     pytest.param({"body": ""}, "body", id="empty"),
     pytest.param({}, "body", id="missing"),
     pytest.param({"body": "hi", "cc": "x"}, "cc", id="unknown-field"),
     pytest.param({"body": "b" * 20001}, "body", id="too-long")],
)  # fmt: skip
def test_message_refuses_invalid_bodies_with_422(client, make_ticket, body, field):
    ticket = make_ticket()
    assert_problem(client.post(f"/tickets/{ticket['id']}/messages", json=body, headers=portal()), 422, field)
    assert get_ticket(client, ticket["id"])["thread"] == []


def test_message_is_refused_to_agents(client, make_ticket):
    ticket = make_ticket()
    response = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "hi"}, headers=auth_header("agent", "a"))
    assert_problem(response, 403)


@pytest.mark.slow
def test_message_on_a_resolved_ticket_reopens_it(client, make_ticket, tap, publish, intake_worker):
    intake_worker()
    ticket = make_ticket()
    publish("ticket.resolved", event_from("assignment", "ticket.resolved", ticket["id"],
                                          {"agent_id": "jane", "resolution": "fixed"}))  # fmt: skip
    wait_until(lambda: get_ticket(client, ticket["id"])["status"] == "resolved", timeout=EVENT_TIMEOUT,
               message="intake shows the ticket resolved")  # fmt: skip
    seen = client.get(f"/tickets/{ticket['id']}", headers=requester(ticket)).get_json()
    assert seen["resolution"] == "fixed"  # the requester's page says what was done

    request_id = f"reopen-{uuid.uuid4().hex}"
    headers = {**portal(), "X-Request-ID": request_id}
    response = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "It is back."}, headers=headers)

    assert response.status_code == 201, response.get_json()
    after = get_ticket(client, ticket["id"])
    assert after["status"] == "new" and after["assignee"] is None and after["resolution"] is None
    assert [earlier["resolution"] for earlier in after["earlier_resolutions"]] == ["fixed"]  # what was tried, kept
    assert after["earlier_resolutions"][0]["resolved_at"] == seen["resolved_at"]
    (added,) = wait_for_envelopes(tap, ticket["id"], "ticket.message_added")
    (reopened,) = wait_for_envelopes(tap, ticket["id"], "ticket.reopened")
    assert added["correlation_id"] == reopened["correlation_id"] == request_id
    assert reopened["producer"] == "intake" and reopened["data"]["reason"]


def test_a_resolve_decided_before_the_requesters_message_but_heard_after_it_reopens(client, make_ticket, tap):
    """The agent resolves; the requester writes before intake hears of it: the message must not be left unanswered."""
    ticket = make_ticket()
    learn(client.application, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data()))
    resolved_at = datetime.now(UTC)  # the agent resolves now, in assignment...
    response = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "One more thing."}, headers=portal())
    assert response.status_code == 201, response.get_json()  # ...the requester writes, still seeing it open...

    resolve = event_from("assignment", "ticket.resolved", ticket["id"], {"agent_id": "jane", "resolution": "fixed"},
                         occurred_at=resolved_at)  # fmt: skip
    learn(client.application, resolve)  # ...and intake hears of the resolve after the message

    after = get_ticket(client, ticket["id"])
    assert after["status"] == "assigned" and after["resolution"] is None and after["resolved_at"] is None
    (reopened,) = wait_for_envelopes(tap, ticket["id"], "ticket.reopened")
    assert reopened["producer"] == "intake" and reopened["data"] == {"reason": "requester replied"}


# --- reopen -----------------------------------------------------------------------------------


def test_an_agent_reopens_a_resolved_ticket_of_its_own_with_a_reason(client, make_ticket, tap):
    """The requester called: the fix did not hold. The event says who; reopening it again is 409 (an open ticket:
    perhaps resolved in assignment a moment before intake hears of it); a closed ticket stays closed; an agent of
    another team finds no such ticket; a requester may not; a reason longer than the event takes is 422."""
    ticket = make_ticket()
    learn_agent(client.application, "jane", ["network"])
    learn(client.application, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data()))
    resolve = {"agent_id": "jane", "resolution": "Replaced the profile."}
    learn(client.application, event_from("assignment", "ticket.resolved", ticket["id"], resolve))
    path, why = f"/tickets/{ticket['id']}/reopen", {"reason": "She called: it drops again."}

    omar = f"omar-{uuid.uuid4().hex[:6]}"
    learn_agent(client.application, omar, ["desk"])
    assert_problem(client.post(path, json=why, headers=auth_header("agent", omar)), 404)
    assert_problem(client.post(path, json={"reason": "x" * 1001}, headers=auth_header("agent", "jane")), 422)
    assert_problem(client.post(path, json=why, headers=portal()), 403)
    assert_problem(client.post(path, json={"reason": "  "}, headers=auth_header("agent", "jane")), 422)
    reopened = client.post(path, json=why, headers=auth_header("agent", "jane"))
    again = client.post(path, json=why, headers=auth_header("agent", "jane"))

    assert reopened.status_code == 200
    assert reopened.get_json()["status"] == "assigned" and reopened.get_json()["resolution"] is None
    assert "reopened already, or its resolve has not reached intake yet" in assert_problem(again, 409)["detail"]
    (event,) = wait_for_envelopes(tap, ticket["id"], "ticket.reopened")
    assert event["data"] == {"reason": "She called: it drops again.", "by": "jane", "by_name": "Agent jane"}
    assert event["producer"] == "intake"
    assert len(tap.envelopes(ticket_id=ticket["id"], type="ticket.reopened")) == 1  # the second changed nothing
    assert client.post(f"/tickets/{ticket['id']}/close", headers=portal()).status_code == 200
    closed = client.post(path, json=why, headers=auth_header("admin"))
    assert "stays closed" in assert_problem(closed, 409)["detail"]


# --- close ------------------------------------------------------------------------------------


def test_close_answers_200_and_closing_twice_publishes_once(client, make_ticket, tap, intake_db):
    ticket = make_ticket()

    first = client.post(f"/tickets/{ticket['id']}/close", headers=portal())
    again = client.post(f"/tickets/{ticket['id']}/close", headers=portal())

    assert first.status_code == 200 and again.status_code == 200
    assert set(first.get_json()) == TICKET_KEYS
    assert first.get_json()["status"] == again.get_json()["status"] == "closed"
    assert get_ticket(client, ticket["id"])["status"] == "closed"
    wait_for_envelopes(tap, ticket["id"], "ticket.closed")
    wait_until(lambda: outbox_empty(intake_db, ticket["id"]), timeout=EVENT_TIMEOUT, message="outbox cleared")
    closed = tap.envelopes(ticket_id=ticket["id"], type="ticket.closed")
    assert len(closed) == 1
    assert closed[0]["data"] == {"by": "requester", "previous_status": "new"} and closed[0]["producer"] == "intake"


def test_close_is_refused_to_agents_and_without_token(client, make_ticket):
    ticket = make_ticket()
    assert_problem(client.post(f"/tickets/{ticket['id']}/close", headers=auth_header("agent", "jane")), 403)
    assert_problem(client.post(f"/tickets/{ticket['id']}/close"), 401)
    assert get_ticket(client, ticket["id"])["status"] == "new"


# --- topics -----------------------------------------------------------------------------------


def test_topics_list_the_six_defaults(client):
    response = client.get("/topics", headers=portal())
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    assert all(set(item) == {"id", "name", "retired", "retirable"} and not item["retired"] for item in body["items"])
    assert {item["id"] for item in body["items"] if not item["retirable"]} == {"general"}
    names = {item["id"]: item["name"] for item in body["items"]}
    assert {topic: names.get(topic) for topic, _ in DEFAULT_TOPICS} == dict(DEFAULT_TOPICS)
    assert names["network"] == "Network & VPN"


def test_admin_creates_and_renames_a_topic_which_tickets_can_then_use(client, make_ticket):
    topic_id = f"printers-{uuid.uuid4().hex[:8]}"
    refused = client.post("/tickets", json=ticket_request(topic=topic_id), headers=portal())
    assert_problem(refused, 422, "topic")

    created = client.put(f"/topics/{topic_id}", json={"name": "Printers"}, headers=admin())
    assert created.status_code == 200, created.get_json()
    assert created.get_json() == {"id": topic_id, "name": "Printers", "retired": False, "retirable": True}
    renamed = client.put(f"/topics/{topic_id}", json={"name": "Printers & scanners"}, headers=admin())
    renamed_topic = {"id": topic_id, "name": "Printers & scanners", "retired": False, "retirable": True}
    assert renamed.status_code == 200 and renamed.get_json() == renamed_topic

    listed = client.get("/topics", headers=portal()).get_json()["items"]
    assert [item for item in listed if item["id"] == topic_id] == [renamed_topic]
    assert make_ticket(topic=topic_id)["topic"] == topic_id


def test_a_retired_topic_leaves_the_form_keeps_its_tickets_and_can_come_back(client, make_ticket):
    topic_id = f"fax-{uuid.uuid4().hex[:8]}"
    client.put(f"/topics/{topic_id}", json={"name": "Fax machines"}, headers=admin())
    older = make_ticket(topic=topic_id)

    retired = client.put(f"/topics/{topic_id}", json={"name": "Fax machines", "retired": True}, headers=admin())

    fax = {"id": topic_id, "name": "Fax machines", "retired": True, "retirable": True}
    assert retired.status_code == 200 and retired.get_json() == fax
    offered = {item["id"] for item in client.get("/topics", headers=portal()).get_json()["items"]}
    assert topic_id not in offered and "general" in offered
    every = client.get("/topics", query_string={"include_retired": "true"}, headers=admin()).get_json()["items"]
    assert fax in every
    assert_problem(client.post("/tickets", json=ticket_request(topic=topic_id), headers=portal()), 422, "topic")
    assert get_ticket(client, older["id"])["topic"] == topic_id  # its tickets keep it
    renamed = client.put(f"/topics/{topic_id}", json={"name": "Fax"}, headers=admin()).get_json()
    assert renamed["retired"] is True  # a rename without `retired` keeps it retired
    kept = client.put(f"/topics/{topic_id}", json={"retired": True}, headers=admin()).get_json()
    assert kept["name"] == "Fax"  # `retired` without a name keeps the name
    nothing = client.put(f"/topics/none-{uuid.uuid4().hex[:6]}", json={"retired": False}, headers=admin())
    assert_problem(nothing, 422, "name")  # no name: no new topic

    request, key = ticket_request(topic=topic_id), uuid.uuid4().hex
    client.put(f"/topics/{topic_id}", json={"name": "Fax", "retired": False}, headers=admin())
    first = client.post("/tickets", json=request, headers={**portal(), "Idempotency-Key": key})
    client.put(f"/topics/{topic_id}", json={"name": "Fax", "retired": True}, headers=admin())
    retried = client.post("/tickets", json=request, headers={**portal(), "Idempotency-Key": key})
    assert (first.status_code, retried.status_code) == (201, 200)  # a retry of the same request: the same ticket
    assert retried.get_json()["id"] == first.get_json()["id"]

    back = client.put(f"/topics/{topic_id}", json={"name": "Fax", "retired": False}, headers=admin())

    assert back.get_json()["retired"] is False
    assert make_ticket(topic=topic_id)["topic"] == topic_id


def test_the_general_topic_cannot_be_retired(client):
    refused = client.put("/topics/general", json={"name": "General", "retired": True}, headers=admin())
    assert_problem(refused, 422, "retired")
    assert "general" in {item["id"] for item in client.get("/topics", headers=portal()).get_json()["items"]}


def test_topic_put_is_admin_only(client):
    topic_id = f"denied-{uuid.uuid4().hex[:8]}"
    assert_problem(client.put(f"/topics/{topic_id}", json={"name": "No"}, headers=portal()), 403)
    assert_problem(client.put(f"/topics/{topic_id}", json={"name": "No"}, headers=auth_header("agent", "j")), 403)
    assert_problem(client.put(f"/topics/{topic_id}", json={"name": "No"}), 401)
    assert topic_id not in {item["id"] for item in client.get("/topics", headers=portal()).get_json()["items"]}


@pytest.mark.parametrize(
    ("topic_id", "body", "field"),
    [pytest.param("Bad-Case", {"name": "x"}, "id", id="upper-case"),
     pytest.param("-dash-first", {"name": "x"}, "id", id="dash-first"),
     pytest.param("t" * 41, {"name": "x"}, "id", id="41-chars"),
     pytest.param("ok-id", {"name": "x", "colour": "red"}, "colour", id="unknown-field"),
     pytest.param("ok-id", {}, "name", id="missing-name"),
     pytest.param("ok-id", {"name": "  "}, "name", id="blank-name"),
     pytest.param("ok-id", {"name": "x", "retired": "maybe"}, "retired", id="retired-not-a-boolean"),
     pytest.param("ok-id", {"name": "x", "retired": "yes"}, "retired", id="retired-yes"),
     pytest.param("ok-id", {"name": "x", "retired": 1}, "retired", id="retired-one")],
)  # fmt: skip
def test_topic_put_refuses_invalid_ids_and_bodies_with_422(client, topic_id, body, field):
    assert_problem(client.put(f"/topics/{topic_id}", json=body, headers=admin()), 422, field)
    assert topic_id not in {item["id"] for item in client.get("/topics", headers=admin()).get_json()["items"]}


@pytest.mark.parametrize("spelled", ["1", "yes", "True", "on"])
def test_include_retired_is_true_or_false_spelled_so(client, spelled):
    assert_problem(
        client.get("/topics", query_string={"include_retired": spelled}, headers=admin()), 422, "include_retired"
    )


@pytest.mark.parametrize(("method", "path"), [("post", "/tickets"), ("put", "/topics/empty-body")])
def test_an_empty_body_said_to_be_json_is_not_json_400(client, method, path):
    response = getattr(client, method)(path, data=b"", content_type="application/json", headers=admin())
    assert_problem(response, 400)
    assert "not valid JSON" in response.get_json()["detail"]


# --- timeline and events from other services (a real intake worker consumes them) -------------


@pytest.mark.slow
def test_timeline_tells_what_happened_oldest_first(client, publish, intake_worker):
    intake_worker()
    request_id = f"tl-{uuid.uuid4().hex}"
    response = client.post("/tickets", json=ticket_request(), headers={**portal(), "X-Request-ID": request_id})
    assert response.status_code == 201
    ticket = response.get_json()
    message = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Any news?"}, headers=portal())
    assert message.status_code == 201
    assigned = event_from("assignment", "ticket.assigned", ticket["id"], assigned_data(), correlation_id=request_id)
    publish("ticket.assigned", assigned)

    def timeline() -> list[dict]:
        response = client.get(f"/tickets/{ticket['id']}/timeline", headers=portal())
        assert response.status_code == 200
        return response.get_json()["items"]

    items = wait_until(lambda: len(found := timeline()) == 3 and found, timeout=EVENT_TIMEOUT,
                       message="three events on the timeline")  # fmt: skip

    assert all(set(item) == TIMELINE_ITEM_KEYS for item in items)
    assert [item["type"] for item in items] == ["ticket.created", "ticket.message_added", "ticket.assigned"]
    assert [item["producer"] for item in items] == ["intake", "intake", "assignment"]
    times = [assert_time(item["occurred_at"]) for item in items]
    assert times == sorted(times)
    assert items[0]["correlation_id"] == request_id and items[2]["correlation_id"] == request_id
    assert items[2]["event_id"] == assigned["event_id"]
    assert items[0]["summary"] == (f"Ticket #{ticket['number']} opened by Ana Ruiz via web: {ticket['subject']} "
                                   "(Network & VPN, normal priority)")  # the topic by its name  # fmt: skip
    assert items[1]["summary"] == "Ana Ruiz (requester) wrote a message"
    assert (
        items[2]["summary"] == "Assigned to Jane Doe (network) automatically: fewest open tickets, among 2 candidates"
    )

    wait_until(lambda: get_ticket(client, ticket["id"])["status"] == "assigned", timeout=EVENT_TIMEOUT,
               message="intake shows the assignment")  # fmt: skip
    view = get_ticket(client, ticket["id"])
    assert view["assignee"] == {"agent_id": "jane", "name": "Jane Doe"} and view["team"] == "network"

    pages = walk_pages(client, f"/tickets/{ticket['id']}/timeline", {"limit": 1}, portal())
    assert [len(page["items"]) for page in pages] == [1, 1, 1]
    assert [page["items"][0]["event_id"] for page in pages] == [item["event_id"] for item in items]


def test_timeline_refuses_a_bad_limit_or_cursor(client, make_ticket):
    ticket = make_ticket()
    for query, field in (({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "%%%"}, "cursor")):
        assert_problem(
            client.get(f"/tickets/{ticket['id']}/timeline", query_string=query, headers=portal()), 422, field
        )


@pytest.mark.slow
def test_an_agent_reply_appears_in_the_thread_once_however_often_it_arrives(client, make_ticket, publish,
                                                                            intake_db, intake_worker):  # fmt: skip
    intake_worker()
    ticket = make_ticket()
    data = replied_data()
    replied = event_from("assignment", "ticket.replied", ticket["id"], data)
    publish("ticket.replied", replied)
    publish("ticket.replied", replied)  # a redelivery: the same event id
    publish("ticket.replied", event_from("assignment", "ticket.replied", ticket["id"], data))  # a new id, same reply
    later = event_from("assignment", "ticket.replied", ticket["id"], replied_data(body="Fixed on our side."))
    publish("ticket.replied", later)  # consumed after the duplicates: when it is in, they have been handled
    handled(intake_db, later["event_id"])

    thread = get_ticket(client, ticket["id"])["thread"]
    assert [entry["id"] for entry in thread] == [data["reply_id"], later["data"]["reply_id"]]
    assert all(set(entry) == THREAD_ENTRY_KEYS for entry in thread)
    assert thread[0]["kind"] == "reply" and thread[0]["author"] == {"type": "agent", "name": "Jane Doe"}
    assert thread[0]["body"] == data["body"]
    assert thread[0]["created_at"] == replied["occurred_at"]


@pytest.mark.slow
def test_sla_warning_sets_the_due_time_and_breach_sets_breached(client, make_ticket, publish, intake_worker):
    intake_worker()
    ticket = make_ticket()
    first_due, resolution_due = "2030-01-01T10:00:00.000Z", "2030-01-02T10:00:00.000Z"
    publish("sla.warning", event_from("sla", "sla.warning", ticket["id"], sla_data("first_response", first_due,
                                                                                    percent=80)))  # fmt: skip
    sla = wait_until(lambda: (s := get_ticket(client, ticket["id"])["sla"])["first_response_due_at"] and s,
                     timeout=EVENT_TIMEOUT, message="the first response due time")  # fmt: skip
    assert sla == {
        "first_response_due_at": first_due,
        "next_response_due_at": None,
        "resolution_due_at": None,
        "breached": False,
    }

    breached = sla_data("resolution", resolution_due, breached_at="2030-01-02T10:00:01.000Z")
    publish("sla.breached", event_from("sla", "sla.breached", ticket["id"], breached))
    sla = wait_until(lambda: (s := get_ticket(client, ticket["id"])["sla"])["breached"] and s,
                     timeout=EVENT_TIMEOUT, message="the breach")  # fmt: skip
    assert sla == {
        "first_response_due_at": first_due,
        "next_response_due_at": None,
        "resolution_due_at": resolution_due,
        "breached": True,
    }


@pytest.mark.slow
def test_an_assignment_older_than_the_resolve_leaves_the_ticket_resolved(client, make_ticket, publish, intake_db,
                                                                         intake_worker):  # fmt: skip
    intake_worker()
    ticket = make_ticket()
    resolved_at = datetime.now(UTC)
    publish(
        "ticket.resolved",
        event_from(
            "assignment",
            "ticket.resolved",
            ticket["id"],
            {"agent_id": "jane", "resolution": "fixed"},
            occurred_at=resolved_at,
        ),
    )
    wait_until(lambda: get_ticket(client, ticket["id"])["status"] == "resolved", timeout=EVENT_TIMEOUT,
               message="intake shows the ticket resolved")  # fmt: skip

    late = event_from("assignment", "ticket.assigned", ticket["id"], assigned_data(),
                      occurred_at=resolved_at - timedelta(minutes=1))  # fmt: skip
    publish("ticket.assigned", late)
    handled(intake_db, late["event_id"])

    assert get_ticket(client, ticket["id"])["status"] == "resolved"

    # an assignment made after the resolve (a transfer, say) moves the assignee but does not reopen the ticket
    newer = event_from("assignment", "ticket.assigned", ticket["id"],
                       assigned_data(agent_id="omar", agent_name="Omar Haddad", agent_email="omar@example.com",
                                     team="access", reason="transfer", decision=None),
                       occurred_at=resolved_at + timedelta(seconds=1))  # fmt: skip
    publish("ticket.assigned", newer)
    handled(intake_db, newer["event_id"])

    view = get_ticket(client, ticket["id"])
    assert view["status"] == "resolved"
    assert view["assignee"] == {"agent_id": "omar", "name": "Omar Haddad"} and view["team"] == "access"


@pytest.mark.slow
def test_status_and_priority_follow_the_newest_event_whatever_the_arrival_order(client, make_ticket, publish,
                                                                                intake_db, intake_worker):  # fmt: skip
    intake_worker()
    ticket = make_ticket()
    t0 = datetime.now(UTC)

    def changed(kind: str, data: dict, seconds: int) -> dict:
        envelope = event_from("assignment", kind, ticket["id"], data, occurred_at=t0 + timedelta(seconds=seconds))
        publish(kind, envelope)
        return envelope

    changed("ticket.assigned", assigned_data(), 1)
    changed("ticket.status_changed", {"status": "in_progress", "previous_status": "waiting_on_requester"}, 3)
    changed("ticket.status_changed", {"status": "waiting_on_requester", "previous_status": "assigned"}, 2)  # late
    changed("ticket.priority_changed", {"priority": "emergency", "previous_priority": "high"}, 5)
    last = changed("ticket.priority_changed", {"priority": "high", "previous_priority": "normal"}, 4)  # late
    handled(intake_db, last["event_id"])

    view = get_ticket(client, ticket["id"])
    assert (view["status"], view["priority"]) == ("in_progress", "emergency")
    assert view["assignee"] == {"agent_id": "jane", "name": "Jane Doe"}


@pytest.mark.slow
def test_a_resolved_ticket_closes_by_itself_and_an_open_one_stays_open(client, make_ticket, publish, tap,
                                                                       intake_worker):  # fmt: skip
    intake_worker(TICKETFLOW_AUTO_CLOSE_HOURS="0.0003", TICKETFLOW_AUTO_CLOSE_INTERVAL="0.2")
    still_open, resolved = make_ticket(), make_ticket()
    resolve = event_from("assignment", "ticket.resolved", resolved["id"], {"agent_id": "jane", "resolution": "fixed"})
    publish("ticket.resolved", resolve)

    wait_until(lambda: get_ticket(client, resolved["id"])["status"] == "closed", timeout=EVENT_TIMEOUT,
               message="the resolved ticket closes by itself")  # fmt: skip
    (closed,) = wait_for_envelopes(tap, resolved["id"], "ticket.closed")
    assert closed["data"] == {"by": "auto", "previous_status": "resolved"} and closed["producer"] == "intake"
    waited = parse_time(closed["occurred_at"]) - parse_time(resolve["occurred_at"])
    assert waited >= timedelta(seconds=0.0003 * 3600 - 0.01), waited  # not before it was due
    assert get_ticket(client, still_open["id"])["status"] == "new"
    assert tap.envelopes(ticket_id=still_open["id"], type="ticket.closed") == []


# --- probes and documents ---------------------------------------------------------------------


def test_healthz_and_readyz_answer_without_a_token(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"mongodb": True, "rabbitmq": True}


def test_metrics_expose_the_request_latency_histogram(client):
    assert client.get("/healthz").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE ticketflow_http_request_duration_seconds histogram" in text
    counts = [line for line in text.splitlines() if line.startswith("ticketflow_http_request_duration_seconds_count{")]
    assert any('service="intake"' in line and 'route="/healthz"' in line for line in counts), counts


def test_openapi_document_describes_the_contract_paths_and_bearer_auth(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    expected = {
        "/tickets": {"get", "post"}, "/tickets/{ticket_id}": {"get"}, "/tickets/{ticket_id}/messages": {"post"},
        "/tickets/{ticket_id}/close": {"post"}, "/tickets/{ticket_id}/timeline": {"get"}, "/topics": {"get"},
        "/topics/{topic_id}": {"put"},
    }  # fmt: skip
    for path, methods in expected.items():
        assert methods <= set(spec["paths"].get(path, {})), path
        for method in methods:
            assert spec["paths"][path][method]["security"] == [{"bearerAuth": []}], (path, method)
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    create = spec["paths"]["/tickets"]["post"]
    assert {"200", "201"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create.get("parameters", []))


def test_openapi_document_says_errors_are_problem_json(client):
    responses = client.get("/openapi.json").get_json()["components"]["responses"]
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        assert set(responses[name]["content"]) == {PROBLEM_JSON}, name


def test_docs_page_answers_html(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "/openapi.json" in response.get_data(as_text=True)


# --- who reads which ticket: requester-scoped portal tokens and agents' teams ----------------------


def requester(ticket: dict, **kwargs) -> dict[str, str]:
    return requester_header(ticket["requester"]["email"], **kwargs)


def test_a_requester_scoped_token_lists_only_its_requesters_tickets_whatever_it_asks(client, make_ticket):
    mine, theirs = make_ticket(), make_ticket()
    also_mine = make_ticket(requester={"name": "Ana Ruiz", "email": mine["requester"]["email"]})
    headers = requester_header(mine["requester"]["email"].upper())  # emails compare case-insensitively
    for query in ({}, {"requester_email": mine["requester"]["email"]}, {"limit": 200}):
        listed = client.get("/tickets", query_string=query, headers=headers).get_json()["items"]
        assert {item["id"] for item in listed} == {mine["id"], also_mine["id"]}, query
    # another's address: none of theirs, and not its own either (a contract prober's find: its own came back)
    asked = {"requester_email": theirs["requester"]["email"]}
    assert client.get("/tickets", query_string=asked, headers=headers).get_json()["items"] == []
    only_one = client.get("/tickets", headers=requester(mine, ticket_id=mine["id"])).get_json()["items"]
    assert [item["id"] for item in only_one] == [mine["id"]]


def test_a_requester_scoped_token_gets_404_for_every_other_ticket_on_every_route(client, make_ticket, intake_db):
    mine, theirs = make_ticket(), make_ticket()
    for headers in (requester(mine), requester(mine, ticket_id=mine["id"])):
        for method, path, body in (
            ("get", f"/tickets/{theirs['id']}", None),
            ("get", f"/tickets/{theirs['id']}/timeline", None),
            ("post", f"/tickets/{theirs['id']}/messages", {"body": "Not my ticket"}),
            ("post", f"/tickets/{theirs['id']}/close", None),
        ):
            assert_problem(getattr(client, method)(path, json=body, headers=headers), 404)
    assert get_ticket(client, theirs["id"])["status"] == "new" and get_ticket(client, theirs["id"])["thread"] == []
    another_of_mine = make_ticket(requester={"name": "Ana Ruiz", "email": mine["requester"]["email"]})
    scoped = requester(mine, ticket_id=mine["id"])
    assert_problem(client.get(f"/tickets/{another_of_mine['id']}", headers=scoped), 404)
    assert client.get(f"/tickets/{mine['id']}", headers=scoped).status_code == 200
    assert client.post(f"/tickets/{mine['id']}/messages", json={"body": "Hi"}, headers=scoped).status_code == 201
    assert client.post(f"/tickets/{mine['id']}/close", headers=scoped).status_code == 200


def test_a_requester_reads_no_agent_email_webhook_url_or_delivery_error(client, make_ticket, intake_app):
    ticket = make_ticket()
    hook = "https://bob:s3cret@hooks.example.com/in?token=t0ps3cret"
    learn(intake_app, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data(
        agent_email="jane.agent@example.com", team_lead_email="lead.person@example.com")))  # fmt: skip
    for kind, data in (
        ("notification.sent", {"channel": "email", "recipient": "jane.agent@example.com", "error": None}),
        ("notification.sent", {"channel": "webhook", "recipient": hook, "error": None}),
        ("notification.failed", {"channel": "email", "recipient": "lead.person@example.com",
                                 "error": "550 5.1.1 mailbox unavailable: lead.person@example.com"}),
        ("notification.failed", {"channel": "webhook", "recipient": hook, "error": f"HTTP 500 from {hook}"}),
    ):  # fmt: skip
        data = {"notification_id": unique("n"), "event_type": "ticket.assigned", **data}
        learn(intake_app, event_from("notify", kind, ticket["id"], data))

    seen = client.get(f"/tickets/{ticket['id']}/timeline", headers=requester(ticket)).get_json()["items"]
    text = json.dumps(seen) + json.dumps(client.get(f"/tickets/{ticket['id']}", headers=requester(ticket)).get_json())
    for secret in ("jane.agent@", "lead.person@", "hooks.example.com", "t0ps3cret", "mailbox unavailable", "HTTP 500"):
        assert secret not in text, secret
    assert [item["summary"] for item in seen if item["type"].startswith("notification.")] == [
        "Email about the assignment sent"
    ]

    staff = client.get(f"/tickets/{ticket['id']}/timeline", headers=admin()).get_json()["items"]
    summaries = [item["summary"] for item in staff if item["type"].startswith("notification.")]
    assert len(summaries) == 4 and "Email about the assignment sent to jane.agent@example.com" in summaries
    assert "Webhook about the assignment sent to https://hooks.example.com/in" in summaries
    assert not any("s3cret" in summary or "t0ps3cret" in summary for summary in summaries), summaries

    agent = unique("net")  # an agent of the ticket's team reads its emails, not its webhooks' deliveries
    learn_agent(intake_app, agent, ["network"])
    old = {"_id": unique("e"), "ticket_id": ticket["id"], "type": "notification.sent", "occurred_at": datetime.now(UTC),
           "summary": "Webhook about the reply sent to https://hooks.example.com/services/T0/B0/s3cr3t"}  # fmt: skip
    intake_app.extensions["ticketflow.intake"].timeline.collection.insert_one(old)  # recorded before the mark
    read = client.get(f"/tickets/{ticket['id']}/timeline", headers=auth_header("agent", agent)).get_json()["items"]
    lines = [item["summary"] for item in read if item["type"].startswith("notification.")]
    assert len(lines) == 2 and all(line.startswith("Email about") for line in lines), lines


def test_an_agent_reads_only_its_teams_tickets_and_its_own_and_an_unknown_agent_none(client, make_ticket, intake_app):
    network, hardware, mine = make_ticket(), make_ticket(topic="hardware"), make_ticket(topic="hardware")
    agent, stranger = unique("net"), unique("nobody")
    learn_agent(intake_app, agent, ["network"])
    queued = {"agent_id": None, "agent_name": None, "agent_email": None}
    for ticket, data in (
        (network, assigned_data(**queued)),
        (hardware, assigned_data(**queued, team="hardware")),
        (mine, assigned_data(agent_id=agent, team="hardware")),
    ):
        learn(intake_app, event_from("assignment", "ticket.assigned", ticket["id"], data))
    headers = auth_header("agent", agent)
    for path in (f"/tickets/{hardware['id']}", f"/tickets/{hardware['id']}/timeline"):
        assert_problem(client.get(path, headers=headers), 404)
        assert_problem(client.get(path, headers=auth_header("agent", stranger)), 404)
    for ticket in (network, mine):
        assert client.get(f"/tickets/{ticket['id']}", headers=headers).status_code == 200
        assert client.get(f"/tickets/{ticket['id']}/timeline", headers=headers).status_code == 200
    pages = walk_pages(client, "/tickets", {"limit": 200}, headers, max_pages=1000)
    listed = {item["id"] for page in pages for item in page["items"]}
    assert {network["id"], mine["id"]} <= listed and hardware["id"] not in listed
    assert client.get("/tickets", headers=auth_header("agent", stranger)).get_json()["items"] == []


def test_a_requester_scoped_token_opens_tickets_for_its_requester_only(client):
    headers = requester_header("Ana@Example.com")
    mine = client.post("/tickets", json=ticket_request(requester={"name": "Ana", "email": "ana@example.com"}),
                       headers=headers)  # fmt: skip
    assert mine.status_code == 201, mine.get_json()
    assert_problem(client.post("/tickets", json=ticket_request(), headers=headers), 403)
    one_ticket = requester_header("ana@example.com", ticket_id=mine.get_json()["id"])  # it could read no other
    ana = ticket_request(requester={"name": "Ana", "email": "ana@example.com"})
    assert_problem(client.post("/tickets", json=ana, headers=one_ticket), 403)


@pytest.mark.slow
def test_the_worker_learns_agents_teams_from_agent_updated_and_keeps_them_off_the_timeline(client, make_ticket,
                                                                                          publish, intake_db,
                                                                                          intake_worker):  # fmt: skip
    intake_worker()
    ticket, agent = make_ticket(topic="hardware"), unique("hw")
    queued = assigned_data(agent_id=None, agent_name=None, agent_email=None, team="hardware")
    publish("ticket.assigned", event_from("assignment", "ticket.assigned", ticket["id"], queued))
    data = {"agent_id": agent, "name": "H", "email": "h@example.com", "teams": ["network"], "lead_of": [],
            "available": True}  # fmt: skip
    publish("agent.updated", event_from("assignment", "agent.updated", agent, data))
    moved = event_from("assignment", "agent.updated", agent, {**data, "teams": ["network", "hardware"]})
    publish("agent.updated", moved)
    handled(intake_db, moved["event_id"])
    wait_until(lambda: client.get(f"/tickets/{ticket['id']}", headers=auth_header("agent", agent)).status_code == 200,
               timeout=EVENT_TIMEOUT, message="the agent of hardware reads the hardware ticket")  # fmt: skip
    assert intake_db["timeline"].count_documents({"ticket_id": agent}) == 0


def test_a_requester_reads_entries_recorded_before_requester_summaries_but_no_notifications(client, make_ticket,
                                                                                         intake_db):  # fmt: skip
    ticket = make_ticket()
    at = datetime.now(UTC)
    for kind, summary in (
        ("ticket.status_changed", "Status changed from new to in_progress"),
        ("notification.sent", "Email about ticket.assigned sent to jane.agent@example.com"),
    ):
        intake_db["timeline"].insert_one({"_id": str(uuid.uuid4()), "event_id": "x", "ticket_id": ticket["id"],
                                          "type": kind, "producer": "assignment", "occurred_at": at,
                                          "correlation_id": None, "summary": summary})  # fmt: skip
    items = client.get(f"/tickets/{ticket['id']}/timeline", headers=requester(ticket)).get_json()["items"]
    assert [item["summary"] for item in items if item["type"] != "ticket.created"] == [
        "Status changed from new to in_progress"
    ]


def test_the_timeline_names_the_agent_a_ticket_was_taken_from(client, make_ticket):
    """`ticket.assigned` names the new agent and only the id of the one before: the timeline says who had it, by
    the name intake knew them by ("Taken over by Marta" read as if nobody had it)."""
    ticket = make_ticket()
    learn(client.application, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data()))
    taken = assigned_data(agent_id="tess", agent_name="Tess Lead", agent_email="tess@example.com", reason="manual",
                          previous_agent_id="jane", by_name="Tess Lead")  # fmt: skip
    learn(client.application, event_from("assignment", "ticket.assigned", ticket["id"], taken))
    items = client.get(f"/tickets/{ticket['id']}/timeline", headers=portal()).get_json()["items"]
    assert [item["summary"] for item in items if item["type"] == "ticket.assigned"][-1] == (
        "Taken over from Jane Doe by Tess Lead (network)"
    )


def test_the_timeline_names_the_agent_who_resolved_as_intake_knows_them(client, make_ticket):
    """`ticket.resolved` carries the agent's id alone: the timeline says the name its assignment gave."""
    ticket = make_ticket()
    learn(client.application, event_from("assignment", "ticket.assigned", ticket["id"], assigned_data()))
    learn(client.application, event_from("assignment", "ticket.resolved", ticket["id"],
                                         {"agent_id": "jane", "resolution": "Toner replaced."}))  # fmt: skip

    items = client.get(f"/tickets/{ticket['id']}/timeline", headers=portal()).get_json()["items"]
    summaries = [item["summary"] for item in items if item["type"] == "ticket.resolved"]
    assert summaries == ["Resolved by Jane Doe: Toner replaced."]
    seen = client.get(f"/tickets/{ticket['id']}/timeline", headers=requester(ticket)).get_json()["items"]
    assert "Resolved by Jane Doe: Toner replaced." in [item["summary"] for item in seen]  # as the reply's author

    other = make_ticket()  # the resolve heard before the assignment: intake knows no name yet, so the id
    learn(client.application, event_from("assignment", "ticket.resolved", other["id"],
                                         {"agent_id": "jane", "resolution": "Done."}))  # fmt: skip
    learn(client.application, event_from("assignment", "ticket.assigned", other["id"], assigned_data()))
    items = client.get(f"/tickets/{other['id']}/timeline", headers=portal()).get_json()["items"]
    assert [item["summary"] for item in items if item["type"] == "ticket.resolved"] == ["Resolved by jane: Done."]


def test_a_query_parameter_of_one_value_given_twice_is_refused_not_half_read(client):
    answer = client.get("/tickets?status=new&status=closed", headers=admin())
    assert "Give it once" in assert_problem(answer, 422, "status")["errors"]["status"][0]
    assert client.get("/tickets?status=new&limit=5", headers=admin()).status_code == 200


def test_while_the_secret_changes_a_token_signed_with_the_one_before_is_accepted(infra, monkeypatch):
    """TICKETFLOW_JWT_PREVIOUS_SECRET: integrations and links signed before a change of secret keep working until
    the operator drops it; a token signed with neither is refused."""
    old = os.environ["TICKETFLOW_JWT_SECRET"]
    new = secrets.token_urlsafe(32)
    monkeypatch.setenv("TICKETFLOW_JWT_SECRET", new)
    monkeypatch.setenv("TICKETFLOW_JWT_PREVIOUS_SECRET", old)
    with in_process_app("intake") as app:
        client = app.test_client()
        for key in (old, new):
            asked = client.get("/topics", headers={"Authorization": f"Bearer {issue_token(key, 'admin')}"})
            assert asked.status_code == 200, asked.get_json()
        stranger = client.get("/topics", headers={"Authorization": f"Bearer {issue_token('s' * 32, 'admin')}"})
        assert stranger.status_code == 401


def test_auto_close_s_list_leaves_out_the_tickets_it_is_told_to(intake_app, make_ticket, intake_db):
    svc = intake_app.extensions["ticketflow.intake"]
    long_ago = datetime.now(UTC) - timedelta(days=30)
    tickets = [make_ticket()["id"] for _ in range(3)]
    intake_db.tickets.update_many({"_id": {"$in": tickets}}, {"$set": {"status": "resolved", "resolved_at": long_ago}})

    found = svc.tickets.resolved_before(long_ago + timedelta(seconds=1), limit=10_000, without=[tickets[0]])

    assert tickets[0] not in found and {tickets[1], tickets[2]} <= set(found)
    intake_db.tickets.update_many({"_id": {"$in": tickets}}, {"$set": {"status": "closed"}})  # none left for others
