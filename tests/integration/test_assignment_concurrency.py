"""assignment under concurrency, as real processes: gunicorn serving claims, several workers consuming the bus.

Issue 3's acceptance: 20 agents claiming one ticket at once, three workers assigning 300 new tickets,
a ticket.created delivered twice, and the team backlog drained by a resolve within a second. What went
over the broker is read from the `tap` once the tickets' outboxes are empty; open counts are compared
with a recount from the tickets collection.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import wait_until
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    aclient_fixture,  # noqa: F401
    actx_fixture,  # noqa: F401
    as_agent,
    assignment_app_fixture,  # noqa: F401
    assignment_db_fixture,  # noqa: F401
    assignment_worker_fixture,  # noqa: F401
    created_event,
    declare_assignment_queue,
    make_agent_fixture,  # noqa: F401
    make_team_fixture,  # noqa: F401
    new_ticket_fixture,  # noqa: F401
    outbox_empty,
    read_agent_fixture,  # noqa: F401
    recount,
)

pytestmark = pytest.mark.slow


def assigned_events(tap, ticket_ids) -> dict[str, list[dict]]:
    """ticket id -> its ticket.assigned envelopes on the wire, in arrival order."""
    wanted, found = set(ticket_ids), defaultdict(list)
    for envelope in tap.envelopes(type="ticket.assigned"):
        if envelope["ticket_id"] in wanted:
            found[envelope["ticket_id"]].append(envelope)
    return found


def handled_tickets(db, ticket_ids) -> list[dict]:
    """The tickets that assignment stored and decided on (assigned or queued), whose events all went out."""
    fields = {"agent_id": 1, "status": 1, "team": 1, "history": 1, "_outbox_due": 1}
    docs = db.tickets.find({"_id": {"$in": list(ticket_ids)}}, fields)
    return [doc for doc in docs if doc.get("history") and "_outbox_due" not in doc]


# --- 20 agents claim one ticket at once ------------------------------------------------------------


def test_twenty_agents_claiming_one_ticket_at_once_exactly_one_wins(
    spawn_api, make_team, make_agent, new_ticket, read_agent, assignment_db, tap
):
    api = spawn_api("assignment", env={"GUNICORN_THREADS": "4"})  # 20 requests in flight at once
    team = make_team()
    agents = [make_agent(team["id"], available=False) for _ in range(20)]  # nobody auto-assigned: it waits
    ticket_id = new_ticket(team["topics"][0])
    assert assignment_db.tickets.find_one({"_id": ticket_id})["agent_id"] is None
    start = threading.Barrier(len(agents))

    def claim(agent: dict) -> tuple[str, int, dict]:
        with requests.Session() as session:
            session.get(f"{api.url}/healthz", timeout=10)  # connected before the race starts
            start.wait(timeout=30)
            response = session.post(f"{api.url}/tickets/{ticket_id}/claim", headers=as_agent(agent["id"]), timeout=30)
            return agent["id"], response.status_code, response.json()

    with ThreadPoolExecutor(len(agents)) as pool:
        results = list(pool.map(claim, agents))

    assert sorted(code for _, code, _ in results) == [200] + [409] * 19, results
    ((winner, _, ticket),) = [(agent_id, code, body) for agent_id, code, body in results if code == 200]
    assert (ticket["agent_id"], ticket["status"]) == (winner, "assigned")
    losers = [body for _, code, body in results if code == 409]
    assert all(body["status"] == 409 and body["type"].endswith("conflict") for body in losers), losers
    wait_until(lambda: outbox_empty(assignment_db, ticket_id), timeout=15, message="the claim went out")
    claims = [e for e in assigned_events(tap, [ticket_id])[ticket_id] if e["data"]["reason"] == "claim"]
    assert [e["data"]["agent_id"] for e in claims] == [winner]
    for agent in agents:
        expected = 1 if agent["id"] == winner else 0
        assert read_agent(agent["id"])["open_tickets"] == expected == recount(assignment_db, agent["id"])


# --- three workers, 300 new tickets --------------------------------------------------------------------


def test_three_workers_assign_300_new_tickets_each_exactly_once_within_capacity(
    make_team, make_agent, read_agent, assignment_worker, publish, infra, settings, assignment_db, tap
):
    teams = [make_team(topics=[f"topic-{uuid.uuid4().hex[:10]}" for _ in range(2)]) for _ in range(3)]
    a, b, c = (team["id"] for team in teams)
    agents = [
        make_agent(a, capacity=5), make_agent(a, capacity=10), make_agent(a, capacity=15),
        make_agent(b, capacity=8), make_agent(b, capacity=12),
        make_agent(a, b, capacity=10),  # two teams, one capacity
        make_agent(c, capacity=3), make_agent(c, capacity=7), make_agent(c, capacity=20),
        make_agent(c, capacity=50, available=False),  # never chosen
    ]  # fmt: skip
    capacity = sum(agent["capacity"] for agent in agents if agent["available"])
    assert capacity < 300
    topics = [topic for team in teams for topic in team["topics"]]
    team_of = {topic: team["id"] for team in teams for topic in team["topics"]}
    tickets = {uuid.uuid4().hex: topics[i % len(topics)] for i in range(300)}
    declare_assignment_queue(infra.amqp_url, settings)
    assignment_worker(3)

    for i, (ticket_id, topic) in enumerate(tickets.items()):
        publish("ticket.created", created_event(ticket_id, topic, ("low", "normal", "high", "emergency")[i % 4]))
    done = wait_until(
        lambda: (docs := handled_tickets(assignment_db, tickets)) and len(docs) == len(tickets) and docs,
        timeout=90,
        interval=0.5,
        message="every ticket assigned or queued, its events published",
    )

    members = {team["id"]: {agent["id"] for agent in agents if team["id"] in agent["teams"]} for team in teams}
    for doc in done:
        assert doc["team"] == team_of[tickets[doc["_id"]]]
        if doc["agent_id"] is None:
            assert doc["status"] == "new"
        else:
            assert doc["status"] == "assigned" and doc["agent_id"] in members[doc["team"]]
    events = assigned_events(tap, tickets)
    twice = {ticket_id: [e["data"]["agent_id"] for e in found] for ticket_id, found in events.items() if len(found) > 1}
    assert twice == {}, "a ticket was assigned (or queued) more than once"
    assert set(events) == set(tickets), "every ticket has its ticket.assigned (agent or team queue)"
    by_event = {ticket_id: found[0]["data"]["agent_id"] for ticket_id, found in events.items()}
    assert by_event == {doc["_id"]: doc["agent_id"] for doc in done}
    loads = Counter(doc["agent_id"] for doc in done if doc["agent_id"])
    for agent in agents:
        open_tickets = read_agent(agent["id"])["open_tickets"]
        assert open_tickets == recount(assignment_db, agent["id"]) == loads[agent["id"]], agent["id"]
        # more tickets than capacity in every team, and loads only grow here: every available agent ends full
        assert open_tickets == (agent["capacity"] if agent["available"] else 0), agent["id"]
    assert sum(loads.values()) == capacity


# --- the same ticket.created twice ----------------------------------------------------------------------


def test_the_same_ticket_created_delivered_twice_assigns_once(
    make_team, make_agent, read_agent, assignment_worker, publish, infra, settings, assignment_db, tap
):
    team = make_team()
    jane, omar = make_agent(team["id"]), make_agent(team["id"])
    declare_assignment_queue(infra.amqp_url, settings)
    assignment_worker(1)
    ticket_id, sentinel = uuid.uuid4().hex, uuid.uuid4().hex
    envelope = created_event(ticket_id, team["topics"][0])
    replayed = {**envelope, "event_id": str(uuid.uuid4())}  # the same ticket, published again under a new id

    for body in (envelope, envelope, replayed):
        publish("ticket.created", body)
    publish("ticket.created", created_event(sentinel, team["topics"][0]))
    # one worker handles its queue in order: once the sentinel is done, so are the three before it
    wait_until(lambda: len(handled_tickets(assignment_db, [ticket_id, sentinel])) == 2, timeout=30)

    assert assignment_db.tickets.count_documents({"_id": ticket_id}) == 1
    doc = assignment_db.tickets.find_one({"_id": ticket_id})
    assert [entry["action"] for entry in doc["history"]] == ["assigned"]
    assert doc["agent_id"] in (jane["id"], omar["id"])
    (event,) = assigned_events(tap, [ticket_id])[ticket_id]
    assert event["data"]["agent_id"] == doc["agent_id"]
    for agent in (jane, omar):
        assert read_agent(agent["id"])["open_tickets"] == recount(assignment_db, agent["id"])
    assert sum(read_agent(agent["id"])["open_tickets"] for agent in (jane, omar)) == 2  # the ticket and the sentinel


# --- the backlog ------------------------------------------------------------------------------------------


def test_a_full_team_queues_new_tickets_and_each_resolve_assigns_the_most_urgent_oldest_within_a_second(
    spawn_api, make_team, make_agent, assignment_worker, publish, infra, settings, assignment_db
):
    api = spawn_api("assignment")
    team = make_team()
    topic = team["topics"][0]
    jane, omar = make_agent(team["id"], capacity=1), make_agent(team["id"], capacity=2)
    declare_assignment_queue(infra.amqp_url, settings)
    assignment_worker(1)

    def create(priority: str) -> str:
        ticket_id = uuid.uuid4().hex
        publish("ticket.created", created_event(ticket_id, topic, priority))
        wait_until(lambda: handled_tickets(assignment_db, [ticket_id]), timeout=15, message=f"{priority} ticket")
        return ticket_id

    working = [create("normal") for _ in range(3)]  # jane 1 of 1, omar 2 of 2
    owner = {t: assignment_db.tickets.find_one({"_id": t})["agent_id"] for t in working}
    assert Counter(owner.values()) == {jane["id"]: 1, omar["id"]: 2}
    waiting = {name: create(name.split("-")[0]) for name in ("low-1", "high-1", "normal-1", "high-2", "low-2")}
    for ticket_id in waiting.values():
        doc = assignment_db.tickets.find_one({"_id": ticket_id})
        assert (doc["status"], doc["agent_id"]) == ("new", None)
    expected_order = ["high-1", "high-2", "normal-1", "low-1", "low-2"]
    to_resolve = list(working)

    for name in expected_order:
        resolving = to_resolve.pop(0)
        agent_id = assignment_db.tickets.find_one({"_id": resolving})["agent_id"]
        response = requests.post(
            f"{api.url}/tickets/{resolving}/resolve", json={"resolution": "Done."}, headers=as_agent(agent_id),
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        wait_until(
            lambda name=name, agent_id=agent_id: (
                assignment_db.tickets.find_one({"_id": waiting[name]})["agent_id"] == agent_id
            ),
            timeout=1.0,
            message=f"{name} assigned to {agent_id} within a second of the resolve",
        )
        later = expected_order[expected_order.index(name) + 1 :]
        assert [assignment_db.tickets.find_one({"_id": waiting[n]})["agent_id"] for n in later] == [None] * len(later)
        to_resolve.append(waiting[name])
    for agent in (jane, omar):
        stored = assignment_db.agents.find_one({"_id": agent["id"]})
        counted = assignment_db.reservations.count_documents({"agent_id": agent["id"]})
        assert stored["open_count"] == counted == recount(assignment_db, agent["id"]) == agent["capacity"]
