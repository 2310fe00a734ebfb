"""What one ticket may hold, what a list carries, and how often one requester address may write (intake in-process)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from pymongo import MongoClient, monitoring

from services.intake import domain, handlers
from services.intake.store import RateLimits
from shared.config import ConfigError, load_settings
from tests.harness import auth_header
from tests.integration.conftest import event_from, ticket_request

PROBLEM_JSON = "application/problem+json"


def portal() -> dict[str, str]:
    return auth_header("portal")


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["status"] == status and body["detail"], body
    return body


def message(client, ticket_id: str, body: str = "Still broken.") -> object:
    return client.post(f"/tickets/{ticket_id}/messages", json={"body": body}, headers=portal())


@pytest.fixture
def intake(intake_app) -> handlers.Intake:
    return intake_app.extensions["ticketflow.intake"]


def fill_thread(intake, ticket_id: str, entries: int, body_size: int = 10) -> None:
    """Give the ticket a thread of `entries` requester messages at once (through the database, for speed)."""
    at = handlers.now()
    thread = [
        {
            "id": uuid.uuid4().hex,
            "kind": "message",
            "author": {"type": "requester", "name": "Ana Ruiz"},
            "body": "x" * body_size,
            "created_at": at,
        }
        for _ in range(entries)
    ]
    intake.tickets.collection.update_one({"_id": ticket_id}, {"$set": {"thread": thread}})


def a_reply() -> dict:
    """The data of an agent's ticket.replied."""
    return {"reply_id": uuid.uuid4().hex, "agent_id": "jane", "agent_name": "Jane Doe", "body": "Try again.",
            "first_response": False}  # fmt: skip


# --- what one ticket holds ------------------------------------------------------------------------


def test_the_defaults_keep_a_ticket_far_below_mongodbs_16_mb():
    assert domain.MAX_THREAD_ENTRIES == 500 and domain.MAX_THREAD_BYTES == 4 * 1024 * 1024
    worst = domain.REPLY_HEADROOM * domain.MAX_THREAD_BYTES + 20_000 * 4 * 2  # replies' room, description, subject
    assert worst < 12 * 1024 * 1024


def test_a_message_past_the_thread_entries_limit_is_409_saying_why(client, make_ticket, intake):
    ticket = make_ticket()
    fill_thread(intake, ticket["id"], domain.MAX_THREAD_ENTRIES - 1)
    assert message(client, ticket["id"]).status_code == 201  # the 500th fits

    body = problem(message(client, ticket["id"], "One more."), 409)

    assert "maximum of 500 entries" in body["detail"] and "new ticket" in body["detail"]
    thread = client.get(f"/tickets/{ticket['id']}", headers=portal()).get_json()["thread"]
    assert len(thread) == 500 and thread[-1]["body"] == "Still broken."


def test_a_message_past_the_thread_size_limit_is_409_saying_why(client, make_ticket, intake):
    ticket = make_ticket()
    fill_thread(intake, ticket["id"], 208, body_size=20_000)  # 4.16 MB: 34 KB under 4 MiB

    assert message(client, ticket["id"], "y" * 20_000).status_code == 201
    body = problem(message(client, ticket["id"], "y" * 20_000), 409)  # would pass 4 MiB

    assert "maximum of 4 MB of text" in body["detail"]
    assert len(client.get(f"/tickets/{ticket['id']}", headers=portal()).get_json()["thread"]) == 209


def test_an_agents_reply_past_the_headroom_stays_on_the_timeline_and_the_ticket_stays_saveable(
    client, make_ticket, intake
):
    ticket = make_ticket()
    fill_thread(intake, ticket["id"], domain.MAX_THREAD_ENTRIES * domain.REPLY_HEADROOM)
    reply = a_reply()

    handlers.record_and_apply(intake, event_from("assignment", "ticket.replied", ticket["id"], reply))

    stored = client.get(f"/tickets/{ticket['id']}", headers=portal()).get_json()
    assert len(stored["thread"]) == 1000 and reply["reply_id"] not in {e["id"] for e in stored["thread"]}
    timeline = client.get(f"/tickets/{ticket['id']}/timeline", headers=portal()).get_json()["items"]
    assert "ticket.replied" in [item["type"] for item in timeline]
    assert client.post(f"/tickets/{ticket['id']}/close", headers=portal()).status_code == 200


def test_a_reply_within_the_headroom_is_still_shown_when_the_requester_can_write_no_more(client, make_ticket, intake):
    ticket = make_ticket()
    fill_thread(intake, ticket["id"], domain.MAX_THREAD_ENTRIES)
    reply = a_reply()

    handlers.record_and_apply(intake, event_from("assignment", "ticket.replied", ticket["id"], reply))

    thread = client.get(f"/tickets/{ticket['id']}", headers=portal()).get_json()["thread"]
    assert thread[-1]["id"] == reply["reply_id"]
    assert message(client, ticket["id"]).status_code == 409


# --- lists carry no threads -----------------------------------------------------------------------


def test_a_list_carries_each_ticket_without_its_thread_but_with_its_length(client, make_ticket, intake):
    email = f"lists.{uuid.uuid4().hex[:8]}@example.com"
    quiet = make_ticket(requester={"name": "Ana Ruiz", "email": email})
    busy = make_ticket(requester={"name": "Ana Ruiz", "email": email})
    fill_thread(intake, busy["id"], 40, body_size=20_000)
    assert message(client, busy["id"]).status_code == 201

    response = client.get("/tickets", query_string={"requester_email": email, "limit": 200}, headers=portal())

    assert response.status_code == 200
    items = {item["id"]: item for item in response.get_json()["items"]}
    assert all("thread" not in item for item in items.values())
    assert (items[busy["id"]]["thread_count"], items[quiet["id"]]["thread_count"]) == (41, 0)
    assert len(response.get_data()) < 10_000  # not the 800 KB of the busy thread
    assert items[busy["id"]]["subject"] == busy["subject"] and items[busy["id"]]["status"] == "new"
    single = client.get(f"/tickets/{busy['id']}", headers=portal()).get_json()
    assert len(single["thread"]) == 41  # a single ticket still has its whole thread


def test_a_ticket_saved_before_thread_count_existed_is_listed_with_its_length(client, make_ticket, intake):
    email = f"legacy.{uuid.uuid4().hex[:8]}@example.com"
    ticket = make_ticket(requester={"name": "Ana Ruiz", "email": email})
    fill_thread(intake, ticket["id"], 3)
    intake.tickets.collection.update_one({"_id": ticket["id"]}, {"$unset": {"thread_count": ""}})

    (item,) = client.get("/tickets", query_string={"requester_email": email}, headers=portal()).get_json()["items"]

    assert item["thread_count"] == 3 and "thread" not in item


# --- how often one requester address may write -------------------------------------------------------


@pytest.fixture
def limits(intake, monkeypatch):
    """Low limits (3 tickets, 2 messages an hour) and a clock fixed mid-hour, so no window ends mid-test."""
    settings = dataclasses.replace(intake.settings, requester_tickets_per_hour=3, requester_messages_per_hour=2)
    monkeypatch.setattr(intake, "settings", settings)
    fixed = handlers.now().replace(minute=30, second=0, microsecond=0)
    monkeypatch.setattr(handlers, "now", lambda: fixed)
    return fixed


def test_a_requester_address_may_open_only_so_many_tickets_an_hour(client, limits):
    email = f"flood.{uuid.uuid4().hex[:8]}@example.com"
    opened = [
        client.post("/tickets", json=ticket_request(requester={"name": "A", "email": email}), headers=portal())
        for _ in range(3)
    ]
    assert [r.status_code for r in opened] == [201, 201, 201]

    shouting = {"name": "A", "email": email.upper()}  # the same address, whatever its case
    refused = client.post("/tickets", json=ticket_request(requester=shouting), headers=portal())

    body = problem(refused, 429)
    assert "limit of 3 tickets per hour" in body["detail"]
    assert refused.headers["Retry-After"] == "1800"  # the window ends on the hour
    other = {"name": "B", "email": f"other.{uuid.uuid4().hex[:8]}@example.com"}
    assert client.post("/tickets", json=ticket_request(requester=other), headers=portal()).status_code == 201


def test_a_repeat_with_its_idempotency_key_is_not_counted(client, limits):
    request = ticket_request(requester={"name": "A", "email": f"keys.{uuid.uuid4().hex[:8]}@example.com"})
    headers = {**portal(), "Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/tickets", json=request, headers=headers)
    repeats = [client.post("/tickets", json=request, headers=headers) for _ in range(5)]
    assert first.status_code == 201 and {r.status_code for r in repeats} == {200}
    assert client.post("/tickets", json=request, headers=portal()).status_code == 201  # the second of three


def test_a_requester_address_may_add_only_so_many_messages_an_hour(client, make_ticket, limits, intake):
    email = f"chatty.{uuid.uuid4().hex[:8]}@example.com"
    one, two = (make_ticket(requester={"name": "A", "email": email}) for _ in range(2))
    assert [message(client, one["id"]).status_code, message(client, two["id"]).status_code] == [201, 201]

    refused = message(client, one["id"], "And again.")

    assert "limit of 2 messages per hour" in problem(refused, 429)["detail"]
    assert int(refused.headers["Retry-After"]) == 1800
    assert len(client.get(f"/tickets/{one['id']}", headers=portal()).get_json()["thread"]) == 1
    counters = list(intake.limits.collection.find({"_id": {"$regex": f"^messages\\|{email}"}}))
    assert [c["expires_at"] for c in counters] == [limits.replace(minute=0) + timedelta(hours=1)]


def test_the_next_window_starts_afresh_and_old_windows_are_forgotten(client, make_ticket, limits, intake, monkeypatch):
    email = f"later.{uuid.uuid4().hex[:8]}@example.com"
    ticket = make_ticket(requester={"name": "A", "email": email})
    assert [message(client, ticket["id"]).status_code for _ in range(3)] == [201, 201, 429]

    monkeypatch.setattr(handlers, "now", lambda: limits + timedelta(hours=1))
    assert message(client, ticket["id"]).status_code == 201

    intake.limits.expire(limits + timedelta(hours=2))
    assert intake.limits.collection.count_documents({"_id": {"$regex": f"\\|{email}\\|"}}) == 0


class CommandNames(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


@pytest.fixture
def counted_limits(infra, intake):
    """intake's RateLimits on a client of its own that records the name of every command it sends."""
    listener = CommandNames()
    client = MongoClient(infra.mongo_url, tz_aware=True, event_listeners=[listener])
    yield RateLimits(client[intake.limits.collection.database.name]), listener
    client.close()


def test_a_windows_first_hit_is_one_store_call(counted_limits, limits):
    rate_limits, listener = counted_limits
    key, ends = f"tickets|first.{uuid.uuid4().hex[:8]}@example.com|window", limits + timedelta(minutes=30)
    listener.names.clear()

    assert [rate_limits.hit(key, ends), rate_limits.hit(key, ends)] == [1, 2]

    assert listener.names == ["findAndModify", "findAndModify"]  # no insert, no second try for a new window
    assert rate_limits.collection.find_one({"_id": key})["expires_at"] == ends


@pytest.mark.parametrize("name", ["TICKETFLOW_REQUESTER_TICKETS_PER_HOUR", "TICKETFLOW_REQUESTER_MESSAGES_PER_HOUR"])
def test_the_limits_are_settings_with_defaults_and_a_clear_error(name):
    settings = load_settings({})
    assert (settings.requester_tickets_per_hour, settings.requester_messages_per_hour) == (200, 600)
    assert getattr(load_settings({name: "7"}), name.removeprefix("TICKETFLOW_").lower()) == 7
    for bad in ("0", "-1", "ten", "1.5"):
        with pytest.raises(ConfigError, match=f"{name} must be a whole number of at least 1"):
            load_settings({name: bad})
