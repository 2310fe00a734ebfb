"""assignment's HTTP API and event reactions: agents, teams, queue, work on tickets (issue 3's acceptance).

In-process app on the session's real MongoDB wire server and broker. A ticket enters through its
`ticket.created` envelope handled by the worker's own handler table; what went over the broker is
read from the `tap`, and "nothing more will be published" is the moment the ticket's document holds
no outbox (`settled`).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import AutoReconnect

from services.assignment import handlers
from services.assignment.timers import Reconciler
from shared.cursors import Paginator
from shared.events import format_time, parse_time
from tests.harness import auth_header, token, wait_until, walk_pages
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    AGENT_KEYS,
    HISTORY_KEYS,
    TEAM_KEYS,
    TICKET_KEYS,
    aclient_fixture,  # noqa: F401
    actx_fixture,  # noqa: F401
    admin,
    as_agent,
    assert_problem,
    assignment_app_fixture,  # noqa: F401
    assignment_db_fixture,  # noqa: F401
    events_of_fixture,  # noqa: F401
    handle_fixture,  # noqa: F401
    in_minutes,
    make_agent_fixture,  # noqa: F401
    make_team_fixture,  # noqa: F401
    new_ticket_fixture,  # noqa: F401
    read_agent_fixture,  # noqa: F401
    read_ticket_fixture,  # noqa: F401
    recount,
    settled_fixture,  # noqa: F401
    sla_breached,
    sla_deadlines,
    sla_warning,
    unique,
)
from tests.integration.conftest import event_from

REPLY_KEYS = {"id", "body", "by", "at", "first_response"}
NOTE_KEYS = {"id", "body", "by", "by_name", "at"}
CANDIDATE_KEYS = {"agent_id", "open_tickets", "capacity", "available"}


def candidates(decision: dict) -> dict[str, tuple[int, int, bool]]:
    """agent id -> (open_tickets, capacity, available), as a decision records them."""
    assert decision["rule"] and isinstance(decision["rule"], str), decision
    for candidate in decision["candidates"]:
        assert CANDIDATE_KEYS <= set(candidate), candidate
    return {c["agent_id"]: (c["open_tickets"], c["capacity"], c["available"]) for c in decision["candidates"]}


def only(items: list):
    assert len(items) == 1, items
    return items[0]


# --- agents and teams ------------------------------------------------------------------------------


def test_team_general_exists_and_takes_every_topic_no_team_names(aclient, new_ticket, read_ticket):
    response = aclient.get("/teams", headers=admin())

    assert response.status_code == 200
    page = response.get_json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert all(set(team) == TEAM_KEYS for team in page["items"])
    assert "general" in {team["id"] for team in page["items"]}
    assert read_ticket(new_ticket(unique("nobody-routes-this")))["team"] == "general"


def test_teams_are_created_listed_and_patched_with_the_contract_shape(aclient):
    body = {"id": unique("team"), "name": "Network", "topics": [unique("net"), unique("vpn")]}
    created = aclient.post("/teams", json=body, headers=admin())

    assert created.status_code == 201, created.get_json()
    team = created.get_json()
    assert set(team) == TEAM_KEYS
    assert {k: team[k] for k in ("id", "name", "topics")} == body
    assert parse_time(team["created_at"]) == parse_time(team["updated_at"])
    assert_problem(aclient.post("/teams", json=body, headers=admin()), 409)
    listed = aclient.get("/teams", headers=admin()).get_json()["items"]
    assert team in listed

    patched = aclient.patch(f"/teams/{body['id']}", json={"name": "Networks", "topics": []}, headers=admin())

    assert patched.status_code == 200, patched.get_json()
    assert {k: patched.get_json()[k] for k in ("id", "name", "topics")} == {**body, "name": "Networks", "topics": []}
    assert parse_time(patched.get_json()["updated_at"]) >= parse_time(team["updated_at"])
    assert_problem(aclient.patch(f"/teams/{unique('team')}", json={"name": "x"}, headers=admin()), 404)
    bare = aclient.post("/teams", json={"id": unique("team"), "name": "Bare"}, headers=admin())
    assert bare.status_code == 201 and bare.get_json()["topics"] == []


def test_only_a_team_with_no_agents_and_no_tickets_ever_is_deleted(
    aclient, make_team, make_agent, new_ticket, read_ticket
):
    mistake, staffed, used, left = make_team(), make_team(), make_team(), make_team()
    make_agent(staffed["id"])
    new_ticket(used["topics"][0])  # it waits in used's queue (no agents there)
    moved = new_ticket(left["topics"][0])
    assert aclient.post(f"/tickets/{moved}/assign", json={"team": staffed["id"]}, headers=admin()).status_code == 200

    assert aclient.delete(f"/teams/{mistake['id']}", headers=as_agent("someone")).status_code == 403
    assert aclient.delete(f"/teams/{mistake['id']}", headers=admin()).status_code == 204
    assert mistake["id"] not in {team["id"] for team in aclient.get("/teams", headers=admin()).get_json()["items"]}
    assert_problem(aclient.delete(f"/teams/{mistake['id']}", headers=admin()), 404)
    assert "has agents" in assert_problem(aclient.delete(f"/teams/{staffed['id']}", headers=admin()), 409)["detail"]
    for had_tickets in (used, left):  # one it has, and one that only moved out of it: its history names the team
        refused = assert_problem(aclient.delete(f"/teams/{had_tickets['id']}", headers=admin()), 409)
        assert "a team with tickets stays" in refused["detail"]
    assert_problem(aclient.delete("/teams/general", headers=admin()), 409)
    assert read_ticket(new_ticket(mistake["topics"][0]))["team"] == "general"  # its topic goes back to general
    # a team named as a status: the moved ticket's history has a transfer, and a status change "from" "assigned"
    assert read_ticket(moved)["status"] == "assigned"
    changed = aclient.post(f"/tickets/{moved}/status", json={"status": "waiting_on_requester"}, headers=admin())
    assert changed.status_code == 200 and changed.get_json()["history"][-1]["from"] == "assigned"
    make_team(id="assigned", topics=[])
    assert aclient.delete("/teams/assigned", headers=admin()).status_code == 204


def test_a_team_used_while_it_was_being_deleted_is_put_back(actx, aclient, make_team, make_agent, monkeypatch):
    """Between the checks and the delete an agent may be given the team (each reads the teams first)."""
    team = make_team()
    deleting = actx.teams.delete

    def given_meanwhile(team_id):
        deleting(team_id)
        make_agent(team["id"])  # as if its PATCH had read the team before it went  # noqa: B023

    read = actx.teams.require([team["id"]], "teams")
    monkeypatch.setattr(actx.teams, "delete", given_meanwhile)
    monkeypatch.setattr(actx.teams, "require", lambda team_ids, field: read)  # it read the team before the delete

    assert "has agents" in assert_problem(aclient.delete(f"/teams/{team['id']}", headers=admin()), 409)["detail"]
    assert team["id"] in {t["id"] for t in aclient.get("/teams", headers=admin()).get_json()["items"]}


@pytest.mark.parametrize("how", ["added", "moved"])
def test_an_agent_given_a_team_whose_delete_checked_before_it_was_stored_puts_the_team_back(
    how, actx, aclient, make_team, make_agent, monkeypatch
):
    """The delete's checks (no agent, no ticket) ran, and the team went, between the agent's read of its teams and
    its write: the agent was in a team that was no more, both answered 200 (a race hunter's find). Made, not waited
    for: the delete runs inside the agent's write."""
    team, other = make_team(), make_team()
    moving = make_agent(other["id"]) if how == "moved" else None
    deleted = []
    write = actx.agents.insert if how == "added" else actx.agents.update

    def deleted_first(*args, **kwargs):
        if not deleted:
            deleted.append(aclient.delete(f"/teams/{team['id']}", headers=admin()))
        return write(*args, **kwargs)

    monkeypatch.setattr(actx.agents, "insert" if how == "added" else "update", deleted_first)
    if how == "added":
        body = {"id": unique("agent"), "name": "Ines", "email": f"{unique('ines')}@example.com",
                "teams": [team["id"]], "capacity": 3}  # fmt: skip
        done = aclient.post("/agents", json=body, headers=admin())
    else:
        done = aclient.patch(f"/agents/{moving['id']}", json={"teams": [team["id"]]}, headers=admin())

    assert deleted and deleted[0].status_code == 204 and done.status_code in (200, 201)
    assert team["id"] in {t["id"] for t in aclient.get("/teams", headers=admin()).get_json()["items"]}  # put back


def test_a_team_deleted_as_a_ticket_is_routed_or_moved_to_it_is_put_back(
    actx, aclient, make_team, new_ticket, read_ticket, monkeypatch
):
    """Routing and a transfer read the team, then store the ticket: a delete in between, whose own check after
    the delete came before the ticket was stored, misses it. The team comes back as it was, as if the ticket had
    come first, and its queue is a team's again."""
    routed_to, moved_to, start = make_team(), make_team(), make_team()
    listing, reading = actx.teams.all, actx.teams.find

    def deleted_after_the_read(team: dict, read):
        def read_then_deleted(*args):
            found = read(*args)
            assert aclient.delete(f"/teams/{team['id']}", headers=admin()).status_code == 204  # no ticket yet
            return found

        return read_then_deleted

    monkeypatch.setattr(actx.teams, "all", deleted_after_the_read(routed_to, listing))
    ticket = new_ticket(routed_to["topics"][0])
    monkeypatch.setattr(actx.teams, "all", listing)
    moved = new_ticket(start["topics"][0])
    monkeypatch.setattr(actx.teams, "find", deleted_after_the_read(moved_to, reading))
    answer = aclient.post(f"/tickets/{moved}/assign", json={"team": moved_to["id"]}, headers=admin())
    monkeypatch.setattr(actx.teams, "find", reading)

    assert answer.status_code == 200, answer.get_json()
    assert (read_ticket(ticket)["team"], read_ticket(moved)["team"]) == (routed_to["id"], moved_to["id"])
    teams = {t["id"]: t for t in aclient.get("/teams", headers=admin()).get_json()["items"]}
    assert teams[routed_to["id"]]["topics"] == routed_to["topics"] and moved_to["id"] in teams


def test_a_name_with_control_or_bidi_characters_is_refused(aclient, make_team):
    """ "\u202eevil" shows as "live": a team's or an agent's name shows as typed, or is refused (422)."""
    team = make_team()
    for name in ("\u202eevil\u202c Team", "Night\nshift", "Desk\u2066x\u2069", "Net\u200bwork", "a\u2028b"):
        answer = aclient.post("/teams", json={"id": unique("team"), "name": name}, headers=admin())
        assert_problem(answer, 422)
        assert "control characters" in answer.get_json()["errors"]["name"][0]
        agent = {"id": unique("agent"), "name": name, "email": f"{unique('a')}@example.com", "teams": [team["id"]],
                 "capacity": 5}  # fmt: skip
        assert_problem(aclient.post("/agents", json=agent, headers=admin()), 422)
    for fine in ("שירות · Desk ✓", "👩\u200d💻 Devs", "कंप्यूटर"):  # a joiner is part of how they are written
        assert aclient.post("/teams", json={"id": unique("team"), "name": fine}, headers=admin()).status_code == 201


def test_agents_are_created_read_listed_and_patched_with_the_contract_shape(aclient, make_team):
    network, vpn = make_team(), make_team()
    body = {
        "id": unique("jane"),
        "name": "Jane Doe",
        "email": "jane.doe@example.com",
        "teams": [network["id"], vpn["id"]],
        "capacity": 10,
    }
    created = aclient.post("/agents", json=body, headers=admin())

    assert created.status_code == 201, created.get_json()
    agent = created.get_json()
    assert set(agent) == AGENT_KEYS
    assert created.headers["Location"] == f"/agents/{body['id']}"
    assert agent == {**body, "available": True, "lead": False, "lead_of": [], "open_tickets": 0,
                     "created_at": agent["created_at"], "updated_at": agent["updated_at"]}  # fmt: skip
    assert aclient.get(f"/agents/{body['id']}", headers=as_agent(body["id"])).get_json() == agent
    for team in (network, vpn):
        listed = aclient.get("/agents", query_string={"team": team["id"]}, headers=admin()).get_json()
        assert listed == {"items": [agent], "next_cursor": None}
    assert agent in aclient.get("/agents", headers=admin()).get_json()["items"]
    assert_problem(aclient.post("/agents", json=body, headers=admin()), 409)

    patched = aclient.patch(
        f"/agents/{body['id']}", json={"capacity": 3, "available": False, "lead": True}, headers=admin()
    )

    assert patched.status_code == 200, patched.get_json()
    assert {k: patched.get_json()[k] for k in ("capacity", "available", "lead", "lead_of", "name")} == {
        "capacity": 3, "available": False, "lead": True, "lead_of": body["teams"], "name": "Jane Doe",
    }  # fmt: skip
    assert aclient.get(f"/agents/{body['id']}", headers=admin()).get_json() == patched.get_json()
    assert_problem(aclient.get(f"/agents/{unique('nobody')}", headers=admin()), 404)
    assert_problem(aclient.patch(f"/agents/{unique('nobody')}", json={"capacity": 2}, headers=admin()), 404)


def test_two_agents_never_share_an_email_address_in_any_case(aclient, make_team, make_agent):
    """Each agent's emails go to its own address, and its account signs in with it: 409 with errors.email."""
    team = make_team()
    first = make_agent(team["id"])
    address = first["email"]
    body = {"id": unique("twin"), "name": "Twin", "email": address.upper(), "teams": [team["id"]], "capacity": 5}
    refused = aclient.post("/agents", json=body, headers=admin())
    assert_problem(refused, 409)
    assert first["id"] in refused.get_json()["errors"]["email"][0]
    assert aclient.get(f"/agents/{body['id']}", headers=admin()).status_code == 404  # nothing stored

    second = make_agent(team["id"])
    moved = aclient.patch(f"/agents/{second['id']}", json={"email": f" {address} ", "capacity": 3}, headers=admin())
    assert_problem(moved, 409)
    assert set(moved.get_json()["errors"]) == {"email"}
    assert aclient.get(f"/agents/{second['id']}", headers=admin()).get_json() == second  # nothing changed
    own = aclient.patch(f"/agents/{first['id']}", json={"email": address.upper()}, headers=admin())
    assert own.status_code == 200, own.get_json()  # its own address, in another case
    assert own.get_json()["email"].lower() == address


def test_an_empty_email_is_always_refused_with_the_other_fields_errors_and_nothing_is_stored(
    aclient, make_team, make_agent
):
    """The portal relies on it: it sends a form whose email it refuses with an empty one, for the other errors."""
    team = make_team()
    body = {"id": unique("pat"), "name": "", "email": "", "teams": [team["id"]], "capacity": "lots"}
    created = aclient.post("/agents", json=body, headers=admin())
    assert_problem(created, 422)
    assert {"name", "email", "capacity"} <= set(created.get_json()["errors"])
    assert aclient.get(f"/agents/{body['id']}", headers=admin()).status_code == 404

    agent = make_agent(team["id"])
    patched = aclient.patch(f"/agents/{agent['id']}", json={"email": "", "capacity": 3}, headers=admin())
    assert_problem(patched, 422)
    assert set(patched.get_json()["errors"]) == {"email"}
    assert aclient.get(f"/agents/{agent['id']}", headers=admin()).get_json()["capacity"] == agent["capacity"]


def test_an_agent_switches_its_own_availability_and_nothing_else(aclient, make_team, make_agent):
    team = make_team()
    jane, omar = make_agent(team["id"], prefix="jane"), make_agent(team["id"], prefix="omar")

    away = aclient.patch(f"/agents/{jane['id']}", json={"available": False}, headers=as_agent(jane["id"]))
    assert away.status_code == 200, away.get_json()
    assert away.get_json()["available"] is False
    back = aclient.patch(f"/agents/{jane['id']}", json={"available": True}, headers=as_agent(jane["id"]))
    assert back.status_code == 200 and back.get_json()["available"] is True
    before = [aclient.get(f"/agents/{a['id']}", headers=admin()).get_json() for a in (jane, omar)]
    for target, changes in (
        (jane, {"capacity": 99}),
        (jane, {"available": False, "capacity": 99}),
        (jane, {"lead_of": [team["id"]]}),
        (jane, {"teams": [team["id"]]}),
        (omar, {"available": False}),
    ):
        assert_problem(aclient.patch(f"/agents/{target['id']}", json=changes, headers=as_agent(jane["id"])), 403)
    assert [aclient.get(f"/agents/{a['id']}", headers=admin()).get_json() for a in (jane, omar)] == before


def test_open_tickets_counts_the_agents_tickets_until_resolved_or_closed(
    aclient, make_team, make_agent, new_ticket, read_agent, handle, assignment_db
):
    team = make_team()
    jane = make_agent(team["id"])
    tickets = [new_ticket(team["topics"][0]) for _ in range(3)]
    assert read_agent(jane["id"])["open_tickets"] == 3 == recount(assignment_db, jane["id"])

    resolved = aclient.post(
        f"/tickets/{tickets[0]}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"])
    )
    assert resolved.status_code == 200, resolved.get_json()
    assert read_agent(jane["id"])["open_tickets"] == 2 == recount(assignment_db, jane["id"])

    handle(event_from("intake", "ticket.closed", tickets[1], {"by": "requester"}))
    assert read_agent(jane["id"])["open_tickets"] == 1 == recount(assignment_db, jane["id"])

    handle(event_from("intake", "ticket.closed", tickets[0], {"by": "auto"}))  # closing a resolved ticket
    assert read_agent(jane["id"])["open_tickets"] == 1 == recount(assignment_db, jane["id"])


# --- routing and auto-assignment -----------------------------------------------------------------


def test_a_ticket_goes_to_the_team_that_lists_its_topic_else_to_general(make_team, new_ticket, read_ticket):
    network = make_team(topics=[unique("network"), unique("vpn")])
    email = make_team(topics=[unique("email")])

    routed = {topic: read_ticket(new_ticket(topic)) for topic in [*network["topics"], *email["topics"]]}
    unrouted = read_ticket(new_ticket(unique("printers")))

    assert {topic: ticket["team"] for topic, ticket in routed.items()} == {
        network["topics"][0]: network["id"],
        network["topics"][1]: network["id"],
        email["topics"][0]: email["id"],
    }
    assert all(ticket["topic"] == topic for topic, ticket in routed.items())
    assert unrouted["team"] == "general"


def test_auto_assignment_takes_the_least_loaded_and_ties_go_to_the_least_recently_assigned(
    make_team, make_agent, new_ticket, read_ticket, settled, events_of
):
    team = make_team()
    agents = {make_agent(team["id"])["id"], make_agent(team["id"])["id"]}
    topic = team["topics"][0]

    first = read_ticket(new_ticket(topic))["agent_id"]
    (second_agent,) = agents - {first}
    second = read_ticket(new_ticket(topic))["agent_id"]
    third_ticket = new_ticket(topic)
    third = read_ticket(third_ticket)["agent_id"]
    fourth = read_ticket(new_ticket(topic))["agent_id"]

    assert first in agents
    assert second == second_agent, "1 open ticket against 0: the least loaded takes it"
    assert third == first, "1 against 1: the one assigned least recently takes it"
    assert fourth == second_agent
    settled(third_ticket)
    event = only(events_of(third_ticket, "ticket.assigned"))
    assert candidates(event["data"]["decision"]) == {first: (1, 10, True), second_agent: (1, 10, True)}


def test_auto_assignment_never_picks_an_unavailable_or_full_agent_and_records_why(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, settled, events_of
):
    team = make_team()
    topic = team["topics"][0]
    full = make_agent(team["id"], capacity=1)
    new_ticket(topic)  # full: 1 of 1
    busy = make_agent(team["id"], capacity=5)
    new_ticket(topic), new_ticket(topic)  # busy: 2 of 5
    idle = make_agent(team["id"], available=False, lead=True)  # 0 open, but not available

    ticket_id = new_ticket(topic)
    ticket = read_ticket(ticket_id)

    assert (ticket["agent_id"], ticket["status"], ticket["team"]) == (busy["id"], "assigned", team["id"])
    settled(ticket_id)
    event = only(events_of(ticket_id, "ticket.assigned"))
    assert event["producer"] == "assignment"
    data = event["data"]
    assert {k: data[k] for k in data if k != "decision"} == {
        "agent_id": busy["id"],
        "agent_name": busy["name"],
        "agent_email": busy["email"],
        "team": team["id"],
        "team_name": team["name"],  # for the timeline's and the emails' words
        "team_lead_email": idle["email"],
        "team_lead_name": idle["name"],  # the breach emails' greeting
        "previous_agent_id": None,
        "reason": "auto",
    }
    expected = {full["id"]: (1, 1, True), busy["id"]: (2, 5, True), idle["id"]: (0, 10, False)}
    assert candidates(data["decision"]) == expected
    (entry,) = ticket["history"]
    assert HISTORY_KEYS <= set(entry)
    assert (entry["action"], entry["by"], entry["from"], entry["to"]) == ("assigned", "assignment", None, busy["id"])
    assert candidates(entry["decision"]) == expected
    assert read_agent(busy["id"])["open_tickets"] == 3 and read_agent(idle["id"])["open_tickets"] == 0

    aclient.patch(f"/agents/{busy['id']}", json={"available": False}, headers=admin())
    queued_id = new_ticket(topic, priority="high")
    queued = read_ticket(queued_id)

    assert (queued["agent_id"], queued["status"], queued["team"]) == (None, "new", team["id"])
    settled(queued_id)
    waiting = only(events_of(queued_id, "ticket.assigned"))["data"]
    assert (waiting["agent_id"], waiting["agent_name"], waiting["agent_email"]) == (None, None, None)
    assert (waiting["team"], waiting["reason"]) == (team["id"], "auto")
    assert candidates(waiting["decision"]) == {**expected, busy["id"]: (3, 5, False)}


# --- claim and assign ------------------------------------------------------------------------------


def test_a_ticket_names_as_its_lead_the_first_lead_at_work_else_the_first_lead(
    aclient, make_team, make_agent, new_ticket, settled, events_of
):
    team = make_team()
    away = make_agent(team["id"], prefix="a-lead", available=False, lead=True)  # first by id, on leave
    working = make_agent(team["id"], prefix="b-lead", lead=True, capacity=1)
    other = make_agent(team["id"], prefix="c-agent", available=False)

    first = new_ticket(team["topics"][0])  # the pick reads the team's agents: the lead comes from them
    settled(first)
    assert events_of(first, "ticket.assigned")[-1]["data"]["team_lead_email"] == working["email"]
    moved = aclient.post(f"/tickets/{first}/assign", json={"agent_id": other["id"]}, headers=admin())
    assert moved.status_code == 200, moved.get_json()  # a manual pick reads the lead alone (AgentStore.lead)
    settled(first)
    assert events_of(first, "ticket.assigned", count=2)[-1]["data"]["team_lead_email"] == working["email"]

    aclient.patch(f"/agents/{working['id']}", json={"available": False}, headers=admin())  # no lead at work now
    second = new_ticket(team["topics"][0])
    settled(second)
    assert events_of(second, "ticket.assigned")[-1]["data"]["team_lead_email"] == away["email"]


def test_claim_takes_a_waiting_ticket_once_and_another_agent_gets_409(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, settled, events_of
):
    team = make_team()
    jane = make_agent(team["id"], available=False, capacity=1)  # claiming ignores availability and capacity
    omar = make_agent(team["id"], available=False)
    ticket_id, other_id = new_ticket(team["topics"][0]), new_ticket(team["topics"][0])
    assert read_ticket(ticket_id)["agent_id"] is None

    claimed = aclient.post(f"/tickets/{ticket_id}/claim", headers={**as_agent(jane["id"]), "X-Request-ID": "claim-1"})

    assert claimed.status_code == 200, claimed.get_json()
    ticket = claimed.get_json()
    assert set(ticket) == TICKET_KEYS
    assert (ticket["ticket_id"], ticket["agent_id"], ticket["status"]) == (ticket_id, jane["id"], "assigned")
    entry = ticket["history"][-1]
    assert (entry["action"], entry["by"], entry["to"]) == ("claimed", jane["id"], jane["id"])
    assert_problem(aclient.post(f"/tickets/{ticket_id}/claim", headers=as_agent(omar["id"])), 409)
    again = aclient.post(f"/tickets/{ticket_id}/claim", headers=as_agent(jane["id"]))
    assert again.status_code == 200 and again.get_json()["agent_id"] == jane["id"]
    assert aclient.post(f"/tickets/{other_id}/claim", headers=as_agent(jane["id"])).status_code == 200  # 2 of 1
    assert read_agent(jane["id"])["open_tickets"] == 2 and read_agent(omar["id"])["open_tickets"] == 0
    # an admin claims as the agent its token names; one that names none is told to assign (a contract prober's find)
    third = new_ticket(team["topics"][0])
    assert "assign" in assert_problem(aclient.post(f"/tickets/{third}/claim", headers=admin()), 403)["detail"]
    as_admin_agent = auth_header("admin", omar["id"])
    assert aclient.post(f"/tickets/{third}/claim", headers=as_admin_agent).get_json()["agent_id"] == omar["id"]
    settled(ticket_id)
    claims = [e for e in events_of(ticket_id, "ticket.assigned") if e["data"]["reason"] == "claim"]
    event = only(claims)
    assert event["correlation_id"] == "claim-1"
    assert {k: event["data"][k] for k in ("agent_id", "agent_name", "agent_email", "team", "previous_agent_id")} == {
        "agent_id": jane["id"], "agent_name": jane["name"], "agent_email": jane["email"], "team": team["id"],
        "previous_agent_id": None,
    }  # fmt: skip


def test_the_request_that_frees_an_agent_or_adds_one_is_the_correlation_of_what_it_assigns(
    aclient, make_team, make_agent, new_ticket, read_ticket, settled, events_of
):
    team = make_team()
    jane = make_agent(team["id"], available=False)
    first, second = new_ticket(team["topics"][0]), new_ticket(team["topics"][0])
    assert read_ticket(first)["agent_id"] is None and read_ticket(second)["agent_id"] is None

    freed = aclient.patch(
        f"/agents/{jane['id']}", json={"available": True, "capacity": 1}, headers={**admin(), "X-Request-ID": "free-1"}
    )
    assert freed.status_code == 200, freed.get_json()
    omar_id = unique("omar")
    body = {"id": omar_id, "name": "Omar", "email": f"{omar_id}@example.com", "teams": [team["id"]], "capacity": 5}
    added = aclient.post("/agents", json=body, headers={**admin(), "X-Request-ID": "add-1"})
    assert added.status_code == 201, added.get_json()

    # jane (capacity 1) takes one of the two when freed, omar the other when added: whichever came first
    holders = {read_ticket(first)["agent_id"]: first, read_ticket(second)["agent_id"]: second}
    assert set(holders) == {jane["id"], omar_id}
    settled(first)
    settled(second)
    taken = lambda ticket_id: only([e for e in events_of(ticket_id, "ticket.assigned") if e["data"]["agent_id"]])  # noqa: E731
    assert (taken(holders[jane["id"]])["correlation_id"], taken(holders[omar_id])["correlation_id"]) == (
        "free-1",
        "add-1",
    )
    assert events_of(jane["id"], "agent.updated", count=2)[-1]["correlation_id"] == "free-1"
    assert only(events_of(omar_id, "agent.updated", count=1))["correlation_id"] == "add-1"


def test_assign_to_an_agent_of_the_team_moves_the_ticket_and_both_counts(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, settled, events_of, assignment_db
):
    team, elsewhere = make_team(), make_team()
    jane = make_agent(team["id"])
    omar = make_agent(team["id"], available=False)
    stranger = make_agent(elsewhere["id"])
    lead = make_agent(team["id"], available=False, lead=True)
    ticket_id = new_ticket(team["topics"][0])
    assert read_ticket(ticket_id)["agent_id"] == jane["id"]

    moved = aclient.post(f"/tickets/{ticket_id}/assign", json={"agent_id": omar["id"]}, headers=admin())

    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["agent_id"], moved.get_json()["team"]) == (omar["id"], team["id"])
    entry = moved.get_json()["history"][-1]
    assert (entry["action"], entry["from"], entry["to"], entry["by"]) == (
        "assigned",
        jane["id"],
        omar["id"],
        "admin:admin",
    )
    for agent, count in ((jane, 0), (omar, 1)):
        assert read_agent(agent["id"])["open_tickets"] == count == recount(assignment_db, agent["id"])
    settled(ticket_id)
    event = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (event["agent_id"], event["agent_name"], event["agent_email"]) == (omar["id"], omar["name"], omar["email"])
    assert (event["previous_agent_id"], event["reason"], event["team"]) == (jane["id"], "manual", team["id"])
    assert (event["team_lead_email"], event["team_lead_name"]) == (lead["email"], lead["name"])  # read apart

    outside = aclient.post(f"/tickets/{ticket_id}/assign", json={"agent_id": stranger["id"]}, headers=admin())
    assert_problem(outside, 422, "agent_id")
    unknown = aclient.post(f"/tickets/{ticket_id}/assign", json={"agent_id": unique("nobody")}, headers=admin())
    assert_problem(unknown, 422, "agent_id")
    assert read_ticket(ticket_id)["agent_id"] == omar["id"] and read_agent(stranger["id"])["open_tickets"] == 0


def test_transfer_reruns_the_choice_of_agent_in_the_new_team(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, settled, events_of
):
    network, email = make_team(), make_team(name="Email & calendars")
    jane = make_agent(network["id"])
    busy = make_agent(email["id"], lead=True)
    new_ticket(email["topics"][0])  # busy: 1 open
    free = make_agent(email["id"])
    ticket_id = new_ticket(network["topics"][0])

    moved = aclient.post(f"/tickets/{ticket_id}/assign", json={"team": email["id"]}, headers=admin())

    assert moved.status_code == 200, moved.get_json()
    ticket = moved.get_json()
    assert (ticket["team"], ticket["agent_id"], ticket["status"]) == (email["id"], free["id"], "assigned")
    entry = ticket["history"][-1]
    assert (entry["action"], entry["from"], entry["to"]) == ("transferred", network["id"], email["id"])
    assert read_agent(jane["id"])["open_tickets"] == 0 and read_agent(free["id"])["open_tickets"] == 1
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["reason"], data["team"], data["agent_id"], data["previous_agent_id"]) == (
        "transfer", email["id"], free["id"], jane["id"],
    )  # fmt: skip
    assert (data["team_lead_email"], data["team_name"]) == (busy["email"], email["name"])
    assert data["by_name"] == "The help desk"  # moved by an admin who is no agent: never an address
    assert candidates(data["decision"]) == {busy["id"]: (1, 10, True), free["id"]: (0, 10, True)}


def test_transfer_to_a_team_where_nobody_is_free_queues_it_with_null_agent_fields(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, settled, events_of
):
    network, email = make_team(), make_team(name="Email & calendars")
    jane = make_agent(network["id"])
    away = make_agent(email["id"], available=False)
    ticket_id = new_ticket(network["topics"][0])

    moved = aclient.post(f"/tickets/{ticket_id}/assign", json={"team": email["id"]}, headers=admin())

    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["team"], moved.get_json()["agent_id"], moved.get_json()["status"]) == (
        email["id"], None, "new",
    )  # fmt: skip
    assert read_agent(jane["id"])["open_tickets"] == 0
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["agent_name"], data["agent_email"]) == (None, None, None)
    assert (data["team"], data["reason"], data["previous_agent_id"]) == (email["id"], "transfer", jane["id"])
    assert data["team_name"] == email["name"]  # read for the event: the transfer's request names the id only

    aclient.patch(f"/agents/{away['id']}", json={"available": True}, headers=admin())  # capacity frees
    assert read_ticket(ticket_id)["agent_id"] == away["id"]
    settled(ticket_id)
    drained = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (drained["agent_id"], drained["reason"], drained["team_name"]) == (away["id"], "auto", email["name"])


def test_a_ticket_in_progress_transferred_to_a_full_team_is_assigned_when_capacity_frees(
    aclient, make_team, make_agent, new_ticket, read_ticket
):
    network, email = make_team(), make_team()
    jane = make_agent(network["id"])
    away = make_agent(email["id"], available=False)
    ticket_id = new_ticket(network["topics"][0])
    reply = aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "Looking."}, headers=as_agent(jane["id"]))
    assert reply.status_code == 201 and read_ticket(ticket_id)["status"] == "in_progress"

    moved = aclient.post(f"/tickets/{ticket_id}/assign", json={"team": email["id"]}, headers=admin())
    assert moved.status_code == 200 and moved.get_json()["agent_id"] is None

    aclient.patch(f"/agents/{away['id']}", json={"available": True}, headers=admin())
    assert read_ticket(ticket_id)["agent_id"] == away["id"]


def test_a_ticket_moved_away_from_its_agent_gives_the_freed_place_to_the_agents_queue(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, assignment_db
):
    """A manual reassignment or a transfer frees a place for the previous agent: the team's queue gets it."""
    network, email = make_team(), make_team()
    jane = make_agent(network["id"], capacity=1)
    other = make_agent(network["id"], available=False)
    make_agent(email["id"])
    first, second, third = (new_ticket(network["topics"][0]) for _ in range(3))
    assert [read_ticket(t)["agent_id"] for t in (first, second, third)] == [jane["id"], None, None]

    aclient.patch(f"/agents/{other['id']}", json={"available": True, "capacity": 1}, headers=admin())
    assert read_ticket(second)["agent_id"] == other["id"]
    moved = aclient.post(f"/tickets/{first}/assign", json={"team": email["id"]}, headers=admin())  # a transfer
    assert moved.status_code == 200, moved.get_json()
    assert read_ticket(third)["agent_id"] == jane["id"]  # jane's freed place, given at once

    fourth = new_ticket(network["topics"][0])
    handed = aclient.post(f"/tickets/{third}/assign", json={"agent_id": other["id"]}, headers=admin())  # manual
    assert handed.status_code == 200, handed.get_json()
    assert read_ticket(fourth)["agent_id"] == jane["id"]
    assert read_agent(jane["id"])["open_tickets"] == 1 == recount(assignment_db, jane["id"])


def test_an_agent_taken_out_of_a_team_hands_that_team_s_open_tickets_back_to_it(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, assignment_db, settled, events_of, handle
):
    """The tickets stay the team's: each goes to another agent of the team by the rule, or to its queue when
    nobody is free; the agent's places free up. Its tickets of the teams it stays in, and closed ones, stay."""
    network, email = make_team(), make_team()
    jane = make_agent(network["id"], email["id"], capacity=10)
    kept, closed = new_ticket(email["topics"][0]), new_ticket(network["topics"][0])
    first, second = new_ticket(network["topics"][0], "high"), new_ticket(network["topics"][0])
    handle(event_from("intake", "ticket.closed", closed, {"by": "requester"}))
    bob = make_agent(network["id"], capacity=1)  # one place: the first (in the queue's order) to bob, then the queue
    assert [read_ticket(t)["agent_id"] for t in (kept, first, second)] == [jane["id"]] * 3

    changed = aclient.patch(f"/agents/{jane['id']}", json={"teams": [email["id"]]}, headers=admin())

    assert changed.status_code == 200, changed.get_json()
    assert (read_ticket(first)["agent_id"], read_ticket(second)["agent_id"]) == (bob["id"], None)
    assert read_ticket(kept)["agent_id"] == jane["id"]
    assert read_agent(jane["id"])["open_tickets"] == 1 == recount(assignment_db, jane["id"])
    settled([first, second])
    for ticket_id, agent_id in ((first, bob["id"]), (second, None)):
        data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
        assert (data["agent_id"], data["previous_agent_id"], data["reason"]) == (agent_id, jane["id"], "auto")

    aclient.patch(f"/agents/{bob['id']}", json={"capacity": 2}, headers=admin())  # the queue's ticket goes on
    assert read_ticket(second)["agent_id"] == bob["id"]


def test_what_an_agent_s_change_could_not_hand_back_the_reconciler_does(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, read_agent, assignment_db, monkeypatch
):
    """A change hands back a bounded number of tickets, and a fault on one leaves it with the agent while the others
    go on: the reconciler's next run hands back what stayed, read from the tickets (the change is long saved)."""
    network, email = make_team(), make_team()
    jane = make_agent(network["id"], email["id"], capacity=10)
    tickets = [new_ticket(network["topics"][0]) for _ in range(3)]
    assign = handlers._assign

    tried = []

    def faulty(svc, ticket_id, *args, **kwargs):
        if not kwargs.get("look_again", True):  # the queue's draining after a ticket went there: no hand-back
            return assign(svc, ticket_id, *args, **kwargs)
        tried.append(ticket_id)
        if len(tried) == 1:  # the first one tried
            raise AutoReconnect("the database went away")
        return assign(svc, ticket_id, *args, **kwargs)

    monkeypatch.setattr(handlers, "HAND_BACK_PER_REQUEST", 2)
    monkeypatch.setattr(handlers, "_assign", faulty)
    changed = aclient.patch(f"/agents/{jane['id']}", json={"teams": [email["id"]]}, headers=admin())

    assert changed.status_code == 200, changed.get_json()  # the agent's change is saved whatever the tickets do
    stayed = [t for t in tickets if read_ticket(t)["agent_id"] == jane["id"]]
    assert len(tried) == 2 and len(stayed) == 2 and tried[0] in stayed  # the faulty one, and one past the bound
    monkeypatch.setattr(handlers, "_assign", assign)

    Reconciler(actx).run()

    assert [read_ticket(t)["agent_id"] for t in tickets] == [None] * 3  # nobody else in network: its queue
    assert read_agent(jane["id"])["open_tickets"] == 0 == recount(assignment_db, jane["id"])


def test_an_agent_back_in_its_team_before_the_reconciler_ran_keeps_its_tickets(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, monkeypatch
):
    network, email = make_team(), make_team()
    jane = make_agent(network["id"], email["id"], capacity=10)
    ticket_id = new_ticket(network["topics"][0])
    monkeypatch.setattr(handlers, "HAND_BACK_PER_REQUEST", 0)  # the change hands back nothing itself
    aclient.patch(f"/agents/{jane['id']}", json={"teams": [email["id"]]}, headers=admin())
    assert read_ticket(ticket_id)["agent_id"] == jane["id"]
    aclient.patch(f"/agents/{jane['id']}", json={"teams": [network["id"], email["id"]]}, headers=admin())

    Reconciler(actx).run()

    assert read_ticket(ticket_id)["agent_id"] == jane["id"]


def test_a_ticket_transferred_into_a_queue_keeps_its_place_by_age(
    aclient, make_team, make_agent, new_ticket, read_ticket
):
    """Oldest first within a priority: a ticket transferred into a team's queue (or handed back, or reopened) is
    placed by its age, ahead of the younger ones waiting there, not behind every ticket that came meanwhile."""
    network, email = make_team(), make_team()
    make_agent(network["id"])
    now = datetime.now(UTC)
    older = new_ticket(network["topics"][0], occurred_at=now - timedelta(minutes=30))
    younger = new_ticket(email["topics"][0], occurred_at=now - timedelta(minutes=10))  # waits: nobody in email
    moved = aclient.post(f"/tickets/{older}/assign", json={"team": email["id"]}, headers=admin())
    assert moved.status_code == 200 and moved.get_json()["agent_id"] is None

    jane = make_agent(email["id"], capacity=1)

    assert (read_ticket(older)["agent_id"], read_ticket(younger)["agent_id"]) == (jane["id"], None)


def test_a_capacity_raised_past_a_queue_longer_than_a_page_empties_it(
    aclient, make_team, make_agent, new_ticket, read_ticket, handle
):
    team = make_team()
    jane = make_agent(team["id"], available=False, capacity=50)
    waiting = [new_ticket(team["topics"][0]) for _ in range(30)]
    handle(event_from("intake", "ticket.closed", waiting[3], {"by": "requester"}))  # closed: no longer waits

    aclient.patch(f"/agents/{jane['id']}", json={"available": True}, headers=admin())

    assert [t for t in waiting if read_ticket(t)["agent_id"] != jane["id"]] == [waiting[3]]


def test_a_waiting_ticket_an_agent_replied_to_still_ends_up_with_an_agent(
    aclient, make_team, make_agent, new_ticket, read_ticket
):
    team = make_team()
    jane = make_agent(team["id"], available=False)
    ticket_id = new_ticket(team["topics"][0])
    reply = aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "Looking."}, headers=as_agent(jane["id"]))
    assert reply.status_code == 201

    aclient.patch(f"/agents/{jane['id']}", json={"available": True}, headers=admin())  # capacity frees

    assert read_ticket(ticket_id)["agent_id"] == jane["id"]


# --- the agents' work: replies, notes, status, priority, resolve ---------------------------------


@pytest.fixture
def assigned(make_team, make_agent, new_ticket):
    """A team, its lead, and agent jane with a fresh ticket: (team, jane, lead, ticket_id)."""
    team = make_team()
    jane = make_agent(team["id"])
    lead = make_agent(team["id"], lead=True, available=False)
    return team, jane, lead, new_ticket(team["topics"][0])


def test_replies_first_is_the_first_response_and_may_wait_on_the_requester(
    aclient, assigned, read_ticket, settled, events_of
):
    team, jane, _, ticket_id = assigned
    headers = {**as_agent(jane["id"]), "X-Request-ID": "reply-1"}

    first = aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "Please restart the client."}, headers=headers)

    assert first.status_code == 201, first.get_json()
    reply = first.get_json()
    assert set(reply) == REPLY_KEYS
    assert (reply["body"], reply["by"], reply["first_response"]) == ("Please restart the client.", jane["id"], True)
    ticket = read_ticket(ticket_id)
    assert ticket["status"] == "in_progress" and ticket["first_response_at"] is not None

    second = aclient.post(
        f"/tickets/{ticket_id}/replies",
        json={"body": "Did that help?", "status": "waiting_on_requester"},
        headers=as_agent(jane["id"]),
    )

    assert second.status_code == 201, second.get_json()
    assert second.get_json()["first_response"] is False
    after = read_ticket(ticket_id)
    assert after["status"] == "waiting_on_requester"
    assert after["first_response_at"] == ticket["first_response_at"]
    assert [e["action"] for e in after["history"]].count("replied") == 2
    settled(ticket_id)
    replied = events_of(ticket_id, "ticket.replied")
    assert [e["data"] for e in replied] == [
        {"reply_id": reply["id"], "agent_id": jane["id"], "agent_name": jane["name"],
         "body": "Please restart the client.", "first_response": True},
        {"reply_id": second.get_json()["id"], "agent_id": jane["id"], "agent_name": jane["name"],
         "body": "Did that help?", "first_response": False},
    ]  # fmt: skip
    assert replied[0]["correlation_id"] == "reply-1"
    changes = [e["data"] for e in events_of(ticket_id, "ticket.status_changed")]
    assert changes == [  # each by the agent who replied
        {"status": "in_progress", "previous_status": "assigned", "by_name": jane["name"]},
        {"status": "waiting_on_requester", "previous_status": "in_progress", "by_name": jane["name"]},
    ]


def test_a_replys_files_are_named_in_its_event_and_too_many_names_are_422(
    aclient, assigned, read_ticket, settled, events_of
):
    """The portal names the files it attaches to the reply next (`files`), cleaned as intake stores a file's name:
    the requester's email says they came. More than 50 names: 422, and no reply."""
    _, jane, _, ticket_id = assigned
    path, headers = f"/tickets/{ticket_id}/replies", as_agent(jane["id"])

    too_many = aclient.post(path, json={"body": "Attached.", "files": ["a.pdf"] * 51}, headers=headers)
    sent = aclient.post(path, json={"body": "Attached.", "files": ["C:\\tmp\\guide.pdf", "notes.txt"]}, headers=headers)

    assert too_many.status_code == 422 and "files" in too_many.get_json()["errors"]
    assert sent.status_code == 201, sent.get_json()
    assert set(sent.get_json()) == REPLY_KEYS
    assert [e["action"] for e in read_ticket(ticket_id)["history"]].count("replied") == 1
    settled(ticket_id)
    [replied] = events_of(ticket_id, "ticket.replied")
    assert replied["data"]["files"] == ["guide.pdf", "notes.txt"]


def test_a_reply_by_an_admin_who_is_no_agent_is_the_help_desks_never_their_address(
    aclient, assigned, settled, events_of
):
    _, _, _, ticket_id = assigned
    boss = {"Authorization": f"Bearer {token('admin', sub='boss@example.com')}"}

    reply = aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "We are on it."}, headers=boss)

    assert reply.status_code == 201, reply.get_json()
    settled(ticket_id)
    [replied] = events_of(ticket_id, "ticket.replied")
    assert replied["data"]["agent_name"] == "The help desk"  # what the requester's page and email show


def test_notes_are_stored_and_shown_but_never_leave_in_any_event(aclient, assigned, read_ticket, settled, tap):
    team, jane, lead, ticket_id = assigned
    secret = f"internal: requester is on the watch list {uuid.uuid4().hex}"

    noted = aclient.post(f"/tickets/{ticket_id}/notes", json={"body": secret}, headers=as_agent(jane["id"]))

    assert noted.status_code == 201, noted.get_json()
    note = noted.get_json()
    assert set(note) == NOTE_KEYS and (note["body"], note["by"], note["by_name"]) == (secret, jane["id"], jane["name"])
    assert read_ticket(ticket_id)["notes"] == [note]
    # every move that publishes, after the note
    steps = [
        ("replies", {"body": "On it."}, as_agent(jane["id"]), 201),
        ("status", {"status": "waiting_on_requester"}, as_agent(jane["id"]), 200),
        ("priority", {"priority": "high"}, as_agent(lead["id"]), 200),
        ("assign", {"agent_id": lead["id"]}, admin(), 200),
        ("assign", {"agent_id": jane["id"]}, admin(), 200),
        ("notes", {"body": secret + " (again)"}, admin(), 201),
        ("resolve", {"resolution": "Fixed."}, as_agent(jane["id"]), 200),
    ]
    for path, body, headers, status in steps:
        response = aclient.post(f"/tickets/{ticket_id}/{path}", json=body, headers=headers)
        assert response.status_code == status, (path, response.get_json())
    settled(ticket_id)
    sent = tap.envelopes(ticket_id=ticket_id)
    assert {"ticket.assigned", "ticket.replied", "ticket.status_changed", "ticket.priority_changed",
            "ticket.resolved"} <= {e["type"] for e in sent}  # fmt: skip
    leaked = [e for e in tap.envelopes() if secret in json.dumps(e)]
    assert leaked == []
    assert [n["body"] for n in read_ticket(ticket_id)["notes"]] == [secret, secret + " (again)"]


def test_status_changes_publish_status_changed_and_a_repeat_is_a_conflict(
    aclient, assigned, read_ticket, settled, events_of
):
    team, jane, _, ticket_id = assigned

    changed = aclient.post(
        f"/tickets/{ticket_id}/status", json={"status": "waiting_on_requester"}, headers=as_agent(jane["id"])
    )

    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["status"] == "waiting_on_requester"
    entry = changed.get_json()["history"][-1]
    assert (entry["action"], entry["from"], entry["to"], entry["by"]) == (
        "status_changed", "assigned", "waiting_on_requester", jane["id"],
    )  # fmt: skip
    again = aclient.post(
        f"/tickets/{ticket_id}/status", json={"status": "waiting_on_requester"}, headers=as_agent(jane["id"])
    )
    assert_problem(again, 409)
    back = aclient.post(f"/tickets/{ticket_id}/status", json={"status": "in_progress"}, headers=as_agent(jane["id"]))
    assert back.status_code == 200 and read_ticket(ticket_id)["status"] == "in_progress"
    settled(ticket_id)
    assert [e["data"] for e in events_of(ticket_id, "ticket.status_changed")] == [
        {"status": "waiting_on_requester", "previous_status": "assigned", "by_name": jane["name"]},
        {"status": "in_progress", "previous_status": "waiting_on_requester", "by_name": jane["name"]},
    ]


def test_priority_changes_publish_priority_changed(aclient, assigned, read_ticket, settled, events_of):
    team, jane, lead, ticket_id = assigned

    changed = aclient.post(
        f"/tickets/{ticket_id}/priority", json={"priority": "emergency"}, headers=as_agent(lead["id"])
    )

    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["priority"] == "emergency" == read_ticket(ticket_id)["priority"]
    entry = changed.get_json()["history"][-1]
    assert (entry["action"], entry["from"], entry["to"], entry["by"]) == (
        "priority_changed", "normal", "emergency", lead["id"],
    )  # fmt: skip
    low = aclient.post(f"/tickets/{ticket_id}/priority", json={"priority": "low"}, headers=admin())
    assert low.status_code == 200
    settled(ticket_id)
    assert [e["data"] for e in events_of(ticket_id, "ticket.priority_changed")] == [
        {"priority": "emergency", "previous_priority": "normal", "by_name": lead["name"]},
        {"priority": "low", "previous_priority": "emergency", "by_name": "The help desk"},  # an admin: no address
    ]


def test_resolve_publishes_resolved_frees_the_agent_and_a_second_resolve_is_409(
    aclient, assigned, read_ticket, read_agent, settled, events_of
):
    team, jane, _, ticket_id = assigned
    assert read_agent(jane["id"])["open_tickets"] == 1

    resolved = aclient.post(
        f"/tickets/{ticket_id}/resolve", json={"resolution": "Replaced the router."}, headers=as_agent(jane["id"])
    )

    assert resolved.status_code == 200, resolved.get_json()
    ticket = resolved.get_json()
    assert ticket["status"] == "resolved" and ticket["resolved_at"] is not None
    assert (ticket["history"][-1]["action"], ticket["history"][-1]["by"]) == ("resolved", jane["id"])
    assert read_agent(jane["id"])["open_tickets"] == 0
    assert_problem(aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Again."}, headers=admin()), 409)
    assert_problem(aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "Hi"}, headers=admin()), 409)
    settled(ticket_id)
    event = only(events_of(ticket_id, "ticket.resolved"))
    assert event["data"] == {"agent_id": jane["id"], "resolution": "Replaced the router.", "by_name": jane["name"]}


def test_a_duplicate_is_resolved_with_the_number_it_was_merged_into_which_its_event_carries(
    aclient, assigned, read_ticket, settled, events_of
):
    team, jane, _, ticket_id = assigned
    own = read_ticket(ticket_id)["number"]
    for wrong in ("100042", 0, 1.5):
        body = {"resolution": "Merged.", "merged_into": wrong}
        problem = assert_problem(aclient.post(f"/tickets/{ticket_id}/resolve", json=body, headers=admin()), 422)
        assert "merged_into" in problem["errors"]
    itself = {"resolution": "Merged.", "merged_into": own}
    assert_problem(aclient.post(f"/tickets/{ticket_id}/resolve", json=itself, headers=admin()), 409)

    body = {"resolution": "Merged into your request #100042.", "merged_into": 100042}
    assert aclient.post(f"/tickets/{ticket_id}/resolve", json=body, headers=as_agent(jane["id"])).status_code == 200

    settled(ticket_id)
    event = only(events_of(ticket_id, "ticket.resolved"))
    assert event["data"]["merged_into"] == 100042 and event["data"]["resolution"] == body["resolution"]


# --- GET /queue -----------------------------------------------------------------------------------


def test_queue_orders_by_soonest_sla_deadline_then_priority_then_age_with_filters_and_cursor(
    aclient, make_team, make_agent, new_ticket, handle
):
    team = make_team()
    topic = team["topics"][0]
    jane = make_agent(team["id"], available=False)
    now = datetime.now(UTC)
    late = new_ticket(topic, "low", occurred_at=now - timedelta(minutes=30))
    soon = new_ticket(topic, "low", occurred_at=now - timedelta(minutes=1))
    emergency = new_ticket(topic, "emergency", occurred_at=now - timedelta(minutes=2))
    high_old = new_ticket(topic, "high", occurred_at=now - timedelta(minutes=20))
    high_new = new_ticket(topic, "high", occurred_at=now - timedelta(minutes=10))
    normal = new_ticket(topic, "normal", occurred_at=now - timedelta(minutes=40))
    gone = new_ticket(topic, "emergency", occurred_at=now - timedelta(minutes=50))
    handle(sla_warning(late, in_minutes(60), clock="resolution"))
    handle(sla_warning(soon, in_minutes(10)))
    handle(sla_warning(gone, in_minutes(1)))
    assert aclient.post(f"/tickets/{gone}/resolve", json={"resolution": "dup"}, headers=admin()).status_code == 200
    assert aclient.post(f"/tickets/{normal}/claim", headers=as_agent(jane["id"])).status_code == 200
    order = [soon, late, emergency, high_old, high_new, normal]

    listed = aclient.get("/queue", query_string={"team": team["id"]}, headers=as_agent(jane["id"]))

    assert listed.status_code == 200, listed.get_json()
    assert listed.get_json()["next_cursor"] is None
    assert [t["ticket_id"] for t in listed.get_json()["items"]] == order
    assert all(set(t) == TICKET_KEYS for t in listed.get_json()["items"])
    pages = walk_pages(aclient, "/queue", {"team": team["id"], "limit": 4}, admin())
    assert [len(p["items"]) for p in pages] == [4, 2]
    pages = walk_pages(aclient, "/queue", {"team": team["id"], "limit": 1}, admin())
    assert [t["ticket_id"] for p in pages for t in p["items"]] == order
    by_agent = aclient.get("/queue", query_string={"agent_id": jane["id"]}, headers=admin()).get_json()
    assert [t["ticket_id"] for t in by_agent["items"]] == [normal]
    waiting = aclient.get("/queue", query_string={"team": team["id"], "status": "new"}, headers=admin()).get_json()
    assert [t["ticket_id"] for t in waiting["items"]] == order[:-1]
    claimed = aclient.get("/queue", query_string={"team": team["id"], "status": "assigned"}, headers=admin())
    assert [t["ticket_id"] for t in claimed.get_json()["items"]] == [normal]


def test_the_deadlines_sla_sends_order_the_queue_the_latest_revision_kept(
    aclient, make_team, make_agent, new_ticket, handle
):
    """Every open ticket has its deadlines from the start (sla.deadlines_changed), not only after a warning: the
    queue is soonest deadline first; a revision older than the one kept changes nothing, nor does a warning."""
    team = make_team()
    make_agent(team["id"], available=False)
    topic = team["topics"][0]
    now = datetime.now(UTC)
    emergency = new_ticket(topic, "emergency", occurred_at=now - timedelta(minutes=3))
    relaxed = new_ticket(topic, "low", occurred_at=now - timedelta(minutes=2))
    urgent = new_ticket(topic, "low", occurred_at=now - timedelta(minutes=1))
    handle(sla_deadlines(relaxed, 1, first=in_minutes(240), resolution=in_minutes(1440)))
    handle(sla_deadlines(urgent, 1, first=in_minutes(30), resolution=in_minutes(60)))
    handle(sla_deadlines(emergency, 1, first=in_minutes(15), resolution=in_minutes(240)))

    def queue() -> list[str]:
        listed = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
        return [t["ticket_id"] for t in listed]

    assert queue() == [emergency, urgent, relaxed]

    resolution = in_minutes(180)  # between the others' (not equal to relaxed's: a tie would go to the priority)
    handle(sla_deadlines(emergency, 3, resolution=resolution))  # first response met: the resolution's counts
    handle(sla_deadlines(emergency, 2, first=in_minutes(1), resolution=resolution))  # older, read late
    handle(sla_warning(emergency, in_minutes(2)))  # its first response's warning, read late: the due time stays
    assert queue() == [urgent, emergency, relaxed]
    shown = aclient.get(f"/tickets/{emergency}", headers=admin()).get_json()["sla"]
    assert (shown["first_response_due_at"], shown["resolution_due_at"]) == (None, format_time(resolution))
    assert [alert["kind"] for alert in shown["alerts"]] == ["warning"]  # the warning itself is kept

    handle(sla_deadlines(urgent, 2))  # waiting on its requester: no clock runs, it comes after those with one
    assert queue() == [emergency, relaxed, urgent]


def test_a_met_first_response_deadline_no_longer_orders_the_queue(aclient, make_team, make_agent, new_ticket, handle):
    team = make_team()
    jane = make_agent(team["id"], capacity=5)
    answered, other = new_ticket(team["topics"][0]), new_ticket(team["topics"][0])
    handle(sla_warning(answered, in_minutes(5)))
    handle(sla_warning(answered, in_minutes(120), clock="resolution"))
    handle(sla_warning(other, in_minutes(30)))
    before = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
    assert [t["ticket_id"] for t in before] == [answered, other]

    reply = aclient.post(f"/tickets/{answered}/replies", json={"body": "Restarted."}, headers=as_agent(jane["id"]))
    assert reply.status_code == 201 and reply.get_json()["first_response"] is True

    after = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
    assert [t["ticket_id"] for t in after] == [other, answered], "due in 30 min before due in 120 min"


def test_a_met_next_response_deadline_no_longer_orders_the_queue(aclient, make_team, make_agent, new_ticket, handle):
    team = make_team()
    jane = make_agent(team["id"], capacity=5)
    answered, other = new_ticket(team["topics"][0]), new_ticket(team["topics"][0])
    reply = {"body": "Try this."}
    assert aclient.post(f"/tickets/{answered}/replies", json=reply, headers=as_agent(jane["id"])).status_code == 201
    message = {"message_id": unique("msg"), "body": "Still broken.", "author": {"type": "requester", "name": "Ana"}}
    handle(event_from("intake", "ticket.message_added", answered, message))  # the next-response clock starts
    handle(sla_warning(answered, in_minutes(5), clock="next_response", instance=1))
    handle(sla_warning(answered, in_minutes(120), clock="resolution"))
    handle(sla_warning(other, in_minutes(30)))
    before = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
    assert [t["ticket_id"] for t in before] == [answered, other]

    again = aclient.post(f"/tickets/{answered}/replies", json=reply, headers=as_agent(jane["id"]))  # met
    assert again.status_code == 201

    after = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
    assert [t["ticket_id"] for t in after] == [other, answered], "due in 30 min before due in 120 min"


def queue_ids(aclient, params: dict, headers: dict[str, str]) -> list[str]:
    """The ticket ids of a one-page queue, in its order."""
    response = aclient.get("/queue", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["next_cursor"] is None
    return [t["ticket_id"] for t in response.get_json()["items"]]


def test_queue_filters_by_priority_and_by_topic_in_the_queues_order(aclient, make_team, new_ticket, handle):
    vpn, mail = unique("topic"), unique("topic")
    team = make_team([vpn, mail])  # nobody in it: every ticket waits
    now = datetime.now(UTC)
    vpn_high = new_ticket(vpn, "high", occurred_at=now - timedelta(minutes=10))
    vpn_low = new_ticket(vpn, "low", occurred_at=now - timedelta(minutes=20))
    mail_high = new_ticket(mail, "high", occurred_at=now - timedelta(minutes=5))
    mail_normal = new_ticket(mail, "normal", occurred_at=now - timedelta(minutes=30))
    handle(sla_warning(mail_high, in_minutes(10)))  # deadlines lead, whatever the priority and the age
    handle(sla_warning(vpn_low, in_minutes(20)))
    assert queue_ids(aclient, {"team": team["id"]}, admin()) == [mail_high, vpn_low, vpn_high, mail_normal]

    assert queue_ids(aclient, {"team": team["id"], "priority": "high"}, admin()) == [mail_high, vpn_high]
    assert queue_ids(aclient, {"team": team["id"], "priority": "emergency"}, admin()) == []
    assert queue_ids(aclient, {"topic": vpn}, admin()) == [vpn_low, vpn_high]
    assert queue_ids(aclient, {"topic": mail}, admin()) == [mail_high, mail_normal]
    assert queue_ids(aclient, {"topic": vpn, "priority": "low"}, admin()) == [vpn_low]
    assert queue_ids(aclient, {"topic": unique("topic")}, admin()) == []


def test_queue_unassigned_true_lists_the_waiting_tickets_and_false_the_assigned_ones(
    aclient, make_team, make_agent, new_ticket
):
    team = make_team()
    topic = team["topics"][0]
    jane = make_agent(team["id"], available=False)
    now = datetime.now(UTC)
    old, claimed, young = (new_ticket(topic, occurred_at=now - timedelta(minutes=m)) for m in (30, 20, 10))
    urgent = new_ticket(topic, "emergency", occurred_at=now - timedelta(minutes=1))
    for ticket_id in (claimed, urgent):
        assert aclient.post(f"/tickets/{ticket_id}/claim", headers=as_agent(jane["id"])).status_code == 200

    assert queue_ids(aclient, {"team": team["id"], "unassigned": "true"}, admin()) == [old, young]
    assert queue_ids(aclient, {"team": team["id"], "unassigned": "false"}, admin()) == [urgent, claimed]
    assert queue_ids(aclient, {"agent_id": jane["id"], "unassigned": "false"}, admin()) == [urgent, claimed]
    assert queue_ids(aclient, {"team": team["id"], "status": "assigned", "unassigned": "true"}, admin()) == []
    assert queue_ids(aclient, {"team": team["id"], "status": "new", "unassigned": "false"}, admin()) == []
    everywhere = [
        t for p in walk_pages(aclient, "/queue", {"unassigned": "true", "limit": 200}, admin()) for t in p["items"]
    ]
    assert all(t["agent_id"] is None for t in everywhere), [t for t in everywhere if t["agent_id"]]
    listed = [t["ticket_id"] for t in everywhere]
    assert {old, young} <= set(listed) and not {claimed, urgent} & set(listed)


def test_queue_gives_only_the_fields_asked_for_and_reads_notes_and_history_only_when_asked(
    aclient, make_team, make_agent, new_ticket, monkeypatch
):
    """`fields` (the console's rows): only those keys, values as in the whole ticket, pages as without it; a
    ticket's notes and history (most of its bytes) are left unread by the store unless asked for."""
    team = make_team()
    jane = make_agent(team["id"], available=False)
    now = datetime.now(UTC)
    tickets = [new_ticket(team["topics"][0], occurred_at=now - timedelta(minutes=m)) for m in (30, 20, 10)]
    assert aclient.post(f"/tickets/{tickets[0]}/claim", headers=as_agent(jane["id"])).status_code == 200
    noted = aclient.post(f"/tickets/{tickets[0]}/notes", json={"body": "Called her."}, headers=as_agent(jane["id"]))
    assert noted.status_code in (200, 201), noted.get_json()
    whole = aclient.get("/queue", query_string={"team": team["id"]}, headers=admin()).get_json()["items"]
    claimed = next(ticket for ticket in whole if ticket["ticket_id"] == tickets[0])
    assert claimed["notes"] and claimed["history"] and len(whole) == 3
    projections = []
    page = Paginator.page

    def spied(paginator, collection, filters, limit, cursor, projection=None):  # what the store asks MongoDB for
        projections.append(sorted(name for name, shown in (projection or {}).items() if not shown))
        return page(paginator, collection, filters, limit, cursor, projection)

    monkeypatch.setattr(Paginator, "page", spied)
    row = ["ticket_id", "number", "subject", "priority", "status", "team", "agent_id", "sla", "first_response_at"]
    for names, unread in ((row, ["notes", "history"]), (["ticket_id", "notes"], ["history"]), (list(TICKET_KEYS), [])):
        query = {"team": team["id"], "fields": ",".join(names)}
        items = aclient.get("/queue", query_string=query, headers=as_agent(jane["id"])).get_json()["items"]
        assert items == [{name: ticket[name] for name in names} for ticket in whole], names
        assert [name for name in projections.pop() if not name.startswith("_outbox")] == sorted(unread)
        pages = walk_pages(aclient, "/queue", {**query, "limit": 1}, admin())
        assert [t for p in pages for t in p["items"]] == items


@pytest.mark.parametrize("fields", ["bogus", "ticket_id,bogus", "", "ticket_id,,number"])
def test_queue_refuses_a_field_a_ticket_has_not(aclient, fields):
    body = assert_problem(aclient.get("/queue", query_string={"fields": fields}, headers=admin()), 422)
    assert any(name.startswith("fields") for name in body["errors"]), body


def test_queue_refuses_a_parameter_given_twice_even_a_list_written_as_one(aclient):
    for query in ("fields=ticket_id&fields=number", "team=a&team=b"):
        body = assert_problem(aclient.get(f"/queue?{query}", headers=admin()), 422)
        assert body["errors"] == {query.split("=")[0]: ["Give it once: it takes one value."]}


def test_queue_refuses_unassigned_true_together_with_an_agent_id(aclient, make_team, make_agent):
    team = make_team()
    jane = make_agent(team["id"])
    query = {"agent_id": jane["id"], "unassigned": "true"}

    body = assert_problem(aclient.get("/queue", query_string=query, headers=as_agent(jane["id"])), 422, "unassigned")

    assert "agent_id" in " ".join(body["errors"]["unassigned"]), body
    assert_problem(aclient.get("/queue", query_string=query, headers=admin()), 422, "unassigned")


def test_an_agent_asking_for_unassigned_tickets_gets_its_teams_waiting_ones(aclient, make_team, make_agent, new_ticket):
    team, other = make_team(), make_team()
    topic = team["topics"][0]
    bob, jane = make_agent(team["id"], available=False), make_agent(team["id"], available=False)
    now = datetime.now(UTC)
    waiting_old = new_ticket(topic, occurred_at=now - timedelta(minutes=30))
    waiting_high = new_ticket(topic, "high", occurred_at=now - timedelta(minutes=5))
    bobs = new_ticket(topic, occurred_at=now - timedelta(minutes=40))
    janes = new_ticket(topic, occurred_at=now - timedelta(minutes=50))
    elsewhere = new_ticket(other["topics"][0])  # waits in a team bob is not in
    assert aclient.post(f"/tickets/{bobs}/claim", headers=as_agent(bob["id"])).status_code == 200
    assert aclient.post(f"/tickets/{janes}/claim", headers=as_agent(jane["id"])).status_code == 200
    assert queue_ids(aclient, {"team": other["id"], "unassigned": "true"}, admin()) == [elsewhere]

    assert queue_ids(aclient, {"unassigned": "true"}, as_agent(bob["id"])) == [waiting_high, waiting_old]
    assert queue_ids(aclient, {"team": team["id"], "unassigned": "true"}, as_agent(bob["id"])) == [
        waiting_high,
        waiting_old,
    ]
    assert queue_ids(aclient, {"unassigned": "true", "priority": "high"}, as_agent(bob["id"])) == [waiting_high]
    assert queue_ids(aclient, {"unassigned": "false"}, as_agent(bob["id"])) == [janes, bobs]
    assert queue_ids(aclient, {"agent_id": bob["id"]}, as_agent(bob["id"])) == [bobs]


def test_paging_a_filtered_queue_returns_every_matching_ticket_once_in_order(
    aclient, make_team, make_agent, new_ticket, handle
):
    vpn, mail = unique("topic"), unique("topic")
    team = make_team([vpn, mail])
    bob = make_agent(team["id"], available=False)
    now = datetime.now(UTC)
    specs = [
        (vpn, "high", 10), (mail, "high", 12), (vpn, "low", 14), (vpn, "high", 16), (mail, "normal", 18),
        (vpn, "normal", 20), (vpn, "high", 22), (mail, "emergency", 24), (vpn, "emergency", 26), (vpn, "low", 28),
    ]  # fmt: skip
    ids = [new_ticket(topic, priority, occurred_at=now - timedelta(minutes=age)) for topic, priority, age in specs]
    handle(sla_warning(ids[5], in_minutes(15)))
    handle(sla_warning(ids[9], in_minutes(45)))
    assert aclient.post(f"/tickets/{ids[3]}/claim", headers=as_agent(bob["id"])).status_code == 200
    cases = [  # filters, then every ticket they match: deadline, then emergency to low, then oldest first
        ({"topic": vpn, "unassigned": "true"}, [ids[5], ids[9], ids[8], ids[6], ids[0], ids[2]]),
        ({"team": team["id"], "priority": "high"}, [ids[6], ids[3], ids[1], ids[0]]),
        ({"topic": mail, "unassigned": "true", "status": "new"}, [ids[7], ids[1], ids[4]]),
    ]

    for filters, expected in cases:
        for headers in (admin(), as_agent(bob["id"])):
            for limit in (1, 2, 4):
                pages = walk_pages(aclient, "/queue", {**filters, "limit": limit}, headers)
                listed = [t["ticket_id"] for page in pages for t in page["items"]]
                assert listed == expected, (filters, limit)
                assert all(len(page["items"]) == limit for page in pages[:-1]), (filters, limit)


def test_a_cursor_from_another_query_still_pages_without_error(aclient, make_team, new_ticket):
    team = make_team()
    for _ in range(3):
        new_ticket(team["topics"][0])
    first = aclient.get("/queue", query_string={"team": team["id"], "limit": 1}, headers=admin()).get_json()
    assert first["next_cursor"]
    elsewhere = aclient.get(
        "/queue", query_string={"status": "assigned", "cursor": first["next_cursor"]}, headers=admin()
    )
    assert elsewhere.status_code == 200 and set(elsewhere.get_json()) == {"items", "next_cursor"}


FORGED_CURSORS = {
    "rank beyond 64 bits": {"s": "2026-11-27T09:30:00+00:00", "p": 2**70, "c": "2026-11-27T09:30:00+00:00"},
    "deadline before year 1 in UTC": {"s": "0001-01-01T00:00:00+01:00", "p": 1, "c": "2026-11-27T09:30:00+00:00"},
    "deadline after year 9999 in UTC": {"s": "9999-12-31T23:59:59-01:00", "p": 1, "c": "2026-11-27T09:30:00+00:00"},
    "age after year 9999 in UTC": {"s": "2026-11-27T09:30:00+00:00", "p": 1, "c": "9999-12-31T23:59:59-05:00"},
}


@pytest.mark.parametrize(
    "key",
    [pytest.param(key, id=name) for name, key in FORGED_CURSORS.items()],
)
def test_a_forged_cursor_is_a_422_not_a_500(key, aclient):
    forged = base64.urlsafe_b64encode(json.dumps({**key, "i": "x"}).encode()).decode().rstrip("=")

    assert_problem(aclient.get("/queue", query_string={"cursor": forged}, headers=admin()), 422, "cursor")


# --- reacting to other services' events -----------------------------------------------------------


def reopened(ticket_id: str) -> dict:
    return event_from("intake", "ticket.reopened", ticket_id, {"reason": "The requester wrote again."})


@pytest.mark.parametrize("full", [False, True], ids=["under-capacity", "at-capacity"])
def test_reopened_goes_back_to_the_previous_agent_when_available(
    full, aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, handle, settled, events_of
):
    team = make_team()
    jane = make_agent(team["id"])
    ticket_id = new_ticket(team["topics"][0])
    new_ticket(team["topics"][0])  # jane: 2 open, then 1 once resolved
    omar = make_agent(team["id"])  # 0 open: the rule alone would pick omar
    aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"]))
    if full:  # at capacity when it reopens: it is still her ticket (contract: only an unavailable one loses it)
        aclient.patch(f"/agents/{jane['id']}", json={"capacity": 1}, headers=admin())

    handle(reopened(ticket_id))

    ticket = read_ticket(ticket_id)
    assert (ticket["agent_id"], ticket["status"], ticket["resolved_at"]) == (jane["id"], "assigned", None)
    assert "reopened" in [e["action"] for e in ticket["history"]]
    assert read_agent(jane["id"])["open_tickets"] == 2 and read_agent(omar["id"])["open_tickets"] == 0
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["reason"]) == (jane["id"], "reopen")


@pytest.mark.parametrize("previous_is", ["unavailable", "out-of-the-team"])
def test_reopened_goes_to_the_team_when_the_previous_agent_cannot_take_it(
    previous_is, aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, handle, settled, events_of
):
    team = make_team()
    jane = make_agent(team["id"], capacity=1)
    ticket_id = new_ticket(team["topics"][0])
    aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"]))
    if previous_is == "unavailable":
        aclient.patch(f"/agents/{jane['id']}", json={"available": False}, headers=admin())
    else:  # moved to another team meanwhile
        aclient.patch(f"/agents/{jane['id']}", json={"teams": [make_team()["id"]]}, headers=admin())
    omar = make_agent(team["id"])

    handle(reopened(ticket_id))

    assert read_ticket(ticket_id)["agent_id"] == omar["id"]
    assert read_agent(omar["id"])["open_tickets"] == 1
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["previous_agent_id"], data["reason"]) == (omar["id"], jane["id"], "reopen")
    assert omar["id"] in candidates(data["decision"])


def test_reopened_by_its_own_agent_away_stays_with_them(
    aclient, make_team, make_agent, new_ticket, read_ticket, read_agent, handle, settled, events_of
):
    """An agent set away who reopens their own resolved ticket is at work on it: it stays theirs (it went to another
    agent, who resolved it again unasked, and its requester had two "resolved" emails: a tester's find). Another's
    reopen of an away agent's ticket still goes to the team (above)."""
    team = make_team()
    jane = make_agent(team["id"])
    ticket_id = new_ticket(team["topics"][0])
    aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"]))
    aclient.patch(f"/agents/{jane['id']}", json={"available": False}, headers=admin())
    omar = make_agent(team["id"])

    handle(event_from("intake", "ticket.reopened", ticket_id, {"reason": "Not fixed after all.", "by": jane["id"],
                                                                "by_name": jane["name"]}))  # fmt: skip

    ticket = read_ticket(ticket_id)
    assert (ticket["agent_id"], ticket["status"]) == (jane["id"], "assigned")
    assert read_agent(jane["id"])["open_tickets"] == 1 and read_agent(omar["id"])["open_tickets"] == 0
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["reason"]) == (jane["id"], "reopen")


def test_a_ticket_queued_while_a_slot_frees_in_the_team_is_given_to_that_agent(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, monkeypatch
):
    """A transfer into a team whose agent looked full, and that agent's resolve between the transfer's read of the
    agents and its save: the resolve's drain read the queue before the ticket was in it, and the ticket waited with
    an agent free (a race hunter's find). The interleaving is made, not waited for: the resolve runs inside the
    transfer's save, just before it."""
    full, other = make_team(), make_team()
    busy = make_agent(full["id"], capacity=1)
    held = new_ticket(full["topics"][0])  # takes busy's only place
    make_agent(other["id"])
    moving = new_ticket(other["topics"][0])
    save, resolved = actx.tickets.save, []

    def resolve_first(ticket, staged):
        if ticket.id == moving and ticket.agent_id is None and not resolved:
            resolved.append(aclient.post(f"/tickets/{held}/resolve", json={"resolution": "Done."}, headers=admin()))
        return save(ticket, staged)

    monkeypatch.setattr(actx.tickets, "save", resolve_first)
    aclient.post(f"/tickets/{moving}/assign", json={"team": full["id"]}, headers=admin())

    assert resolved and resolved[0].status_code == 200
    assert read_ticket(moving)["agent_id"] == busy["id"]  # not waiting in the queue with busy free


def moved_out_as_saved(aclient, actx, monkeypatch, ticket_id: str, agent_id: str, team: str) -> list:
    """The agent moved to `team` alone (out of the ticket's) as the ticket is about to be saved with it: the
    change's answer, in the list returned, once it ran."""
    save, changed = actx.tickets.save, []

    def moved_out_first(ticket, staged):
        if ticket.id == ticket_id and ticket.agent_id == agent_id and not changed:
            changed.append(aclient.patch(f"/agents/{agent_id}", json={"teams": [team]}, headers=admin()))
        return save(ticket, staged)

    monkeypatch.setattr(actx.tickets, "save", moved_out_first)
    return changed


def test_an_agent_taken_out_of_a_team_while_claiming_one_of_its_tickets_does_not_keep_it(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, monkeypatch
):
    """The claim read the agent in the team; the change of its teams came before the ticket was saved, and its
    hand-back read the agent's tickets before this one was there: the agent kept a ticket of a team it left, the
    claim answered 200 (a race hunter's find). Made, not waited for: the change runs inside the claim's save."""
    team, elsewhere = make_team(), make_team()
    jane = make_agent(team["id"], elsewhere["id"], available=False)  # away: the ticket waits in the queue
    waiting = new_ticket(team["topics"][0])
    assert read_ticket(waiting)["agent_id"] is None
    changed = moved_out_as_saved(aclient, actx, monkeypatch, waiting, jane["id"], elsewhere["id"])
    claimed = aclient.post(f"/tickets/{waiting}/claim", headers=as_agent(jane["id"]))

    assert changed and changed[0].status_code == 200
    assert claimed.status_code == 409, claimed.get_json()
    assert read_ticket(waiting)["agent_id"] is None  # back in its team's queue (nobody else there)
    assert read_agent_open(aclient, jane["id"]) == 0


def test_a_ticket_moved_to_an_agent_who_left_the_team_meanwhile_frees_its_previous_agent(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, monkeypatch
):
    """An admin moves a ticket from Ann to Bob while Bob is taken out of the team: it goes back to the team, and Ann
    no longer counts it (the hand-back skipped her release: a review's find)."""
    team, elsewhere = make_team(), make_team()
    ann = make_agent(team["id"])
    ticket = new_ticket(team["topics"][0])
    bob = make_agent(team["id"], elsewhere["id"], available=False)
    aclient.patch(f"/agents/{ann['id']}", json={"available": False}, headers=admin())  # nobody to take it back
    changed = moved_out_as_saved(aclient, actx, monkeypatch, ticket, bob["id"], elsewhere["id"])
    moved = aclient.post(f"/tickets/{ticket}/assign", json={"agent_id": bob["id"]}, headers=admin())

    assert changed and changed[0].status_code == 200 and moved.status_code == 409
    assert read_ticket(ticket)["agent_id"] is None  # back in the team's queue
    assert read_agent_open(aclient, bob["id"]) == 0 == read_agent_open(aclient, ann["id"])


def read_agent_open(aclient, agent_id: str) -> int:
    return aclient.get(f"/agents/{agent_id}", headers=admin()).get_json()["open_tickets"]


def test_reopened_waits_in_the_team_queue_when_nobody_is_free(
    aclient, make_team, make_agent, new_ticket, read_ticket, handle, settled, events_of
):
    team = make_team()
    jane = make_agent(team["id"])
    ticket_id = new_ticket(team["topics"][0])
    aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"]))
    aclient.patch(f"/agents/{jane['id']}", json={"available": False}, headers=admin())

    handle(reopened(ticket_id))

    ticket = read_ticket(ticket_id)
    assert (ticket["agent_id"], ticket["status"], ticket["team"]) == (None, "new", team["id"])
    settled(ticket_id)
    data = events_of(ticket_id, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["agent_name"], data["agent_email"], data["reason"]) == (None, None, None, "reopen")


def test_closed_frees_the_agents_capacity_for_the_team_queue(
    make_team, make_agent, new_ticket, read_ticket, read_agent, handle, assignment_db
):
    team = make_team()
    jane = make_agent(team["id"], capacity=1)
    first, waiting = new_ticket(team["topics"][0]), new_ticket(team["topics"][0])
    assert read_ticket(waiting)["agent_id"] is None

    handle(event_from("intake", "ticket.closed", first, {"by": "requester"}))

    assert read_ticket(first)["status"] == "closed"
    assert read_ticket(waiting)["agent_id"] == jane["id"]
    assert read_agent(jane["id"])["open_tickets"] == 1 == recount(assignment_db, jane["id"])


def test_message_added_turns_waiting_on_requester_back_to_in_progress(
    aclient, assigned, read_ticket, handle, settled, events_of
):
    team, jane, _, ticket_id = assigned
    aclient.post(
        f"/tickets/{ticket_id}/replies",
        json={"body": "Which version?", "status": "waiting_on_requester"},
        headers=as_agent(jane["id"]),
    )
    assert read_ticket(ticket_id)["status"] == "waiting_on_requester"
    message = {"message_id": unique("msg"), "body": "Version 2.", "author": {"type": "requester", "name": "Ana"}}

    handle(event_from("intake", "ticket.message_added", ticket_id, message))

    assert read_ticket(ticket_id)["status"] == "in_progress"
    handle(event_from("intake", "ticket.message_added", ticket_id, {**message, "message_id": unique("msg")}))
    settled(ticket_id)
    assert [e["data"] for e in events_of(ticket_id, "ticket.status_changed")] == [
        {"status": "waiting_on_requester", "previous_status": "assigned", "by_name": jane["name"]},  # her reply's
        {"status": "in_progress", "previous_status": "waiting_on_requester"},  # the requester's message: nobody
    ]  # the second message found the ticket in progress: nothing to change


def test_sla_warning_and_breached_are_kept_on_the_ticket(assigned, read_ticket, handle):
    team, jane, _, ticket_id = assigned
    due = in_minutes(15)
    warning = sla_warning(ticket_id, due, percent=80.0)

    handle(warning)
    handle(warning)  # a duplicate changes nothing

    sla = read_ticket(ticket_id)["sla"]
    assert parse_time(sla["first_response_due_at"]) == due and sla["breached"] is False
    assert [(a["kind"], a["clock"], a["percent"]) for a in sla["alerts"]] == [("warning", "first_response", 80.0)]

    handle(sla_breached(ticket_id, due))

    sla = read_ticket(ticket_id)["sla"]
    assert sla["breached"] is True
    assert [(a["kind"], a["clock"]) for a in sla["alerts"]] == [
        ("warning", "first_response"), ("breached", "first_response"),
    ]  # fmt: skip
    assert all(format_time(parse_time(a["due_at"])) == format_time(due) for a in sla["alerts"])


@pytest.mark.parametrize("frees", ["agent added", "more capacity", "agent available again"])
def test_a_waiting_ticket_is_assigned_as_soon_as_capacity_frees_emergency_first(
    frees, aclient, make_team, make_agent, new_ticket, read_ticket, settled, events_of
):
    team = make_team()
    topic = team["topics"][0]
    jane = make_agent(team["id"], capacity=1, available=frees != "agent available again")
    if frees != "agent available again":
        new_ticket(topic)  # jane: 1 of 1
    now = datetime.now(UTC)
    older_normal = new_ticket(topic, "normal", occurred_at=now - timedelta(minutes=10))
    newer_emergency = new_ticket(topic, "emergency", occurred_at=now - timedelta(minutes=1))
    assert read_ticket(older_normal)["agent_id"] is None and read_ticket(newer_emergency)["agent_id"] is None

    if frees == "agent added":
        taker = make_agent(team["id"], capacity=1)["id"]
    elif frees == "more capacity":
        taker = aclient.patch(f"/agents/{jane['id']}", json={"capacity": 2}, headers=admin()).get_json()["id"]
    else:
        taker = aclient.patch(f"/agents/{jane['id']}", json={"available": True}, headers=admin()).get_json()["id"]

    assert read_ticket(newer_emergency)["agent_id"] == taker
    assert (read_ticket(older_normal)["agent_id"], read_ticket(older_normal)["status"]) == (None, "new")
    settled(newer_emergency)
    data = events_of(newer_emergency, "ticket.assigned")[-1]["data"]
    assert (data["agent_id"], data["reason"]) == (taker, "auto")


def test_every_event_handled_twice_has_no_second_effect(
    aclient, assigned, handle, settled, tap, assignment_db, read_agent
):
    team, jane, _, ticket_id = assigned
    aclient.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed."}, headers=as_agent(jane["id"]))
    message = {"message_id": unique("msg"), "body": "Thanks, but no.", "author": {"type": "requester", "name": "Ana"}}

    def settle_and_read() -> tuple:
        settled(ticket_id)
        doc = assignment_db.tickets.find_one({"_id": ticket_id})
        return (
            doc["_v"],
            doc["status"],
            doc["agent_id"],
            len(tap.envelopes(ticket_id=ticket_id)),
            read_agent(jane["id"]),
        )

    steps = [
        reopened(ticket_id),
        "wait on the requester",
        event_from("intake", "ticket.message_added", ticket_id, message),
        sla_warning(ticket_id, in_minutes(30), clock="resolution"),
        sla_breached(ticket_id, in_minutes(30), clock="resolution"),
        event_from("intake", "ticket.closed", ticket_id, {"by": "requester"}),
    ]
    for step in steps:
        if step == "wait on the requester":
            assert aclient.post(f"/tickets/{ticket_id}/status", json={"status": "waiting_on_requester"},
                                headers=as_agent(jane["id"])).status_code == 200  # fmt: skip
            continue
        handle(step)
        once = settle_and_read()
        handle(step)
        assert settle_and_read() == once, step["type"]
    assert once[1:3] == ("closed", jane["id"]) and once[4]["open_tickets"] == 0


def test_a_requester_message_older_than_the_wait_does_not_end_it(aclient, assigned, read_ticket, handle):
    team, jane, _, ticket_id = assigned
    written = datetime.now(UTC) - timedelta(minutes=1)  # sent before the agent asked, delivered after
    asked = aclient.post(
        f"/tickets/{ticket_id}/replies",
        json={"body": "Which version?", "status": "waiting_on_requester"},
        headers=as_agent(jane["id"]),
    )
    assert asked.status_code == 201
    message = {"message_id": unique("msg"), "body": "Hello?", "author": {"type": "requester", "name": "Ana"}}

    handle(event_from("intake", "ticket.message_added", ticket_id, message, occurred_at=written))

    assert read_ticket(ticket_id)["status"] == "waiting_on_requester"


# --- rights: every endpoint x every role --------------------------------------

ROLES = ("portal", "assignee", "teammate", "lead", "outsider", "admin", "anonymous")


OTHER_TEAM: dict = {}


class World:
    """Two teams, a ticket in the first, and one principal per role.

    state "assigned": the ticket is the assignee's; "waiting": it waits unassigned in the team (every
    agent of the team is unavailable, which claiming ignores).
    """

    def __init__(self, state: str, make_team, make_agent, new_ticket) -> None:
        if not OTHER_TEAM:  # the other team and its agent only receive transfers: every world shares them
            other = make_team()
            OTHER_TEAM.update(team=other, outsider=make_agent(other["id"], prefix="outsider", capacity=1000))
        self.state, self.team, self.other = state, make_team(), OTHER_TEAM["team"]
        available = state == "assigned"
        if state == "assigned":
            self.assignee = make_agent(self.team["id"], prefix="assignee")
            self.ticket = new_ticket(self.team["topics"][0])
        else:
            self.ticket = new_ticket(self.team["topics"][0])
            self.assignee = make_agent(self.team["id"], prefix="assignee", available=False)
        self.teammate = make_agent(self.team["id"], prefix="mate", available=available)
        self.lead = make_agent(self.team["id"], prefix="lead", lead=True, available=available)
        self.outsider = OTHER_TEAM["outsider"]
        self.new_agent, self.new_team = unique("newcomer"), unique("newteam")

    def headers(self, role: str) -> dict[str, str]:
        agents = {"assignee": self.assignee, "teammate": self.teammate, "lead": self.lead, "outsider": self.outsider}
        if role in agents:
            return as_agent(agents[role]["id"])
        return {} if role == "anonymous" else auth_header(role)


ENDPOINTS = {
    "POST /agents": lambda w: ("post", "/agents", {"id": w.new_agent, "name": "New", "email": "new@example.com",
                                                   "teams": [w.team["id"]], "capacity": 3}),
    "GET /agents": lambda w: ("get", "/agents", None),
    "GET /agents/{id}": lambda w: ("get", f"/agents/{w.assignee['id']}", None),
    "PATCH /agents/{id}": lambda w: ("patch", f"/agents/{w.assignee['id']}", {"capacity": 1}),
    "POST /teams": lambda w: ("post", "/teams", {"id": w.new_team, "name": "New", "topics": []}),
    "GET /teams": lambda w: ("get", "/teams", None),
    "PATCH /teams/{id}": lambda w: ("patch", f"/teams/{w.team['id']}", {"name": "Renamed"}),
    "GET /queue": lambda w: ("get", "/queue", None),
    "GET /tickets/{id}": lambda w: ("get", f"/tickets/{w.ticket}", None),
    "claim": lambda w: ("post", f"/tickets/{w.ticket}/claim", None),
    "assign agent": lambda w: ("post", f"/tickets/{w.ticket}/assign", {"agent_id": w.teammate["id"]}),
    "assign team": lambda w: ("post", f"/tickets/{w.ticket}/assign", {"team": w.other["id"]}),
    "replies": lambda w: ("post", f"/tickets/{w.ticket}/replies", {"body": "Hello."}),
    "notes": lambda w: ("post", f"/tickets/{w.ticket}/notes", {"body": "Internal."}),
    "status": lambda w: ("post", f"/tickets/{w.ticket}/status", {"status": "waiting_on_requester"}),
    "priority": lambda w: ("post", f"/tickets/{w.ticket}/priority", {"priority": "high"}),
    "resolve": lambda w: ("post", f"/tickets/{w.ticket}/resolve", {"resolution": "Done."}),
}  # fmt: skip

# status codes by endpoint, role order as in ROLES: portal, assignee, teammate, lead, outsider, admin, anonymous
ADMIN_ONLY_CREATE = (403, 403, 403, 403, 403, 201, 401)
ADMIN_ONLY = (403, 403, 403, 403, 403, 200, 401)
READ = (403, 200, 200, 200, 200, 200, 401)
RIGHTS = {
    "assigned": {
        "POST /agents": ADMIN_ONLY_CREATE,
        "GET /agents": READ,
        "GET /agents/{id}": READ,
        "PATCH /agents/{id}": ADMIN_ONLY,
        "POST /teams": ADMIN_ONLY_CREATE,
        "GET /teams": READ,
        "PATCH /teams/{id}": ADMIN_ONLY,
        "GET /queue": READ,
        # an outsider (another team's agent) is answered as for a ticket that does not exist: 404
        "GET /tickets/{id}": (403, 200, 200, 200, 404, 200, 401),
        "claim": (403, 200, 409, 409, 404, 403, 401),
        "assign agent": (403, 403, 403, 200, 404, 200, 401),
        "assign team": (403, 403, 403, 200, 404, 200, 401),
        "replies": (403, 201, 403, 403, 404, 201, 401),
        "notes": (403, 201, 201, 201, 404, 201, 401),  # a teammate or a lead leaves a word for the assignee
        "status": (403, 200, 403, 403, 404, 200, 401),
        "priority": (403, 403, 403, 200, 404, 200, 401),
        "resolve": (403, 200, 403, 403, 404, 200, 401),
    },
    "waiting": {  # the assignee is just another agent of the team here
        "GET /tickets/{id}": (403, 200, 200, 200, 404, 200, 401),
        "claim": (403, 200, 200, 200, 404, 403, 401),
        "assign agent": (403, 403, 403, 200, 404, 200, 401),
        "assign team": (403, 403, 403, 200, 404, 200, 401),
        "replies": (403, 201, 201, 201, 404, 201, 401),
        "notes": (403, 201, 201, 201, 404, 201, 401),
        "status": (403, 200, 200, 200, 404, 200, 401),
        "priority": (403, 403, 403, 200, 404, 200, 401),
        "resolve": (403, 403, 403, 403, 404, 200, 401),
    },
}
SHARED_WORLDS: dict[str, World] = {}


def rights_cases():
    for state, table in RIGHTS.items():
        for endpoint, codes in table.items():
            for role, code in zip(ROLES, codes, strict=True):
                yield pytest.param(state, endpoint, role, code, id=f"{state}-{endpoint}-{role}")


def snapshot(aclient, world: World, assignment_db) -> dict:
    """Everything a refused call must leave as it was, read as an admin sees it."""
    teams = {t["id"]: t for t in aclient.get("/teams", headers=admin()).get_json()["items"]}
    return {
        "ticket": aclient.get(f"/tickets/{world.ticket}", headers=admin()).get_json(),
        "ticket_version": assignment_db.tickets.find_one({"_id": world.ticket}, {"_v": 1})["_v"],
        "agents": [aclient.get("/agents", query_string={"team": t}, headers=admin()).get_json()["items"]
                   for t in (world.team["id"], world.other["id"])],
        "teams": [teams.get(world.team["id"]), teams.get(world.other["id"]), teams.get(world.new_team)],
        "new_agent": aclient.get(f"/agents/{world.new_agent}", headers=admin()).status_code,
    }  # fmt: skip


@pytest.mark.parametrize(("state", "endpoint", "role", "expected"), list(rights_cases()))
def test_rights_every_endpoint_and_role(
    state, endpoint, role, expected, aclient, make_team, make_agent, new_ticket, settled, tap, assignment_db
):
    if expected < 400 and not endpoint.startswith("GET"):  # the call changes the world: one of its own
        world = World(state, make_team, make_agent, new_ticket)
    else:  # reads and refused calls change nothing (which is what the test checks): they share a world
        if state not in SHARED_WORLDS:
            SHARED_WORLDS[state] = World(state, make_team, make_agent, new_ticket)
        world = SHARED_WORLDS[state]
    method, path, body = ENDPOINTS[endpoint](world)
    settled(world.ticket)
    refused = expected >= 400
    before = snapshot(aclient, world, assignment_db) if refused else None
    events_before = len(tap.envelopes(ticket_id=world.ticket))

    response = getattr(aclient, method)(path, json=body, headers=world.headers(role))

    assert response.status_code == expected, response.get_data(as_text=True)
    if refused:
        assert_problem(response, expected)
        settled(world.ticket)
        assert snapshot(aclient, world, assignment_db) == before
        assert len(tap.envelopes(ticket_id=world.ticket)) == events_before, "a refused call published an event"


# --- invalid input on every endpoint ------------------------------------------------------------------

TOO_LONG = "x" * 20001
INVALID = [
    # (name, method, path, body (dict, or str sent raw as JSON), status, field)
    ("agent unknown team", "post", "/agents", {"teams": ["{unknown_team}"]}, 422, "teams"),
    ("agent capacity 0", "post", "/agents", {"capacity": 0}, 422, "capacity"),
    ("agent capacity negative", "post", "/agents", {"capacity": -3}, 422, "capacity"),
    ("agent capacity not an integer", "post", "/agents", {"capacity": "5"}, 422, "capacity"),
    ("agent bad email", "post", "/agents", {"email": "not-an-email"}, 422, "email"),
    ("agent bad id", "post", "/agents", {"id": "Jane Doe"}, 422, "id"),
    ("agent no teams", "post", "/agents", {"teams": []}, 422, "teams"),
    ("agent unknown field", "post", "/agents", {"role": "admin"}, 422, "role"),
    ("agent malformed JSON", "post", "/agents", '{"id": "x",', 400, None),
    ("agent exists", "post", "/agents", {"id": "{agent}"}, 409, None),
    ("patch unknown agent", "patch", "/agents/{unknown_agent}", {"capacity": 2}, 404, None),
    ("patch capacity 0", "patch", "/agents/{agent}", {"capacity": 0}, 422, "capacity"),
    ("patch capacity negative", "patch", "/agents/{agent}", {"capacity": -1}, 422, "capacity"),
    ("patch unknown team", "patch", "/agents/{agent}", {"teams": ["{unknown_team}"]}, 422, "teams"),
    ("patch unknown field", "patch", "/agents/{agent}", {"open_tickets": 0}, 422, "open_tickets"),
    ("patch available not a boolean", "patch", "/agents/{agent}", {"available": "yes"}, 422, "available"),
    ("patch nothing", "patch", "/agents/{agent}", {}, 422, None),
    ("patch agent malformed JSON", "patch", "/agents/{agent}", "[1, 2", 400, None),
    ("get unknown agent", "get", "/agents/{unknown_agent}", None, 404, None),
    ("list agents bad team", "get", "/agents?team=Not%20A%20Team", None, 422, "team"),
    ("team exists", "post", "/teams", {"id": "{team}"}, 409, None),
    ("team bad id", "post", "/teams", {"id": "Team!"}, 422, "id"),
    ("team blank name", "post", "/teams", {"name": " "}, 422, "name"),
    ("team unknown field", "post", "/teams", {"lead": "jane"}, 422, "lead"),
    ("team malformed JSON", "post", "/teams", "{", 400, None),
    ("patch unknown team", "patch", "/teams/{unknown_team}", {"name": "X"}, 404, None),
    ("patch team unknown field", "patch", "/teams/{team}", {"members": []}, 422, "members"),
    ("patch team malformed JSON", "patch", "/teams/{team}", "nope", 400, None),
    ("queue unknown status", "get", "/queue?status=sleeping", None, 422, "status"),
    ("queue resolved status", "get", "/queue?status=resolved", None, 422, "status"),
    ("queue limit 0", "get", "/queue?limit=0", None, 422, "limit"),
    ("queue limit 201", "get", "/queue?limit=201", None, 422, "limit"),
    ("queue bad cursor", "get", "/queue?cursor=not-a-cursor", None, 422, "cursor"),
    ("queue unknown priority", "get", "/queue?priority=urgent", None, 422, "priority"),
    ("queue bad topic", "get", "/queue?topic=Not%20A%20Topic", None, 422, "topic"),
    ("queue unassigned yes", "get", "/queue?unassigned=yes", None, 422, "unassigned"),
    ("queue unassigned 1", "get", "/queue?unassigned=1", None, 422, "unassigned"),
    ("queue agent and unassigned", "get", "/queue?agent_id={agent}&unassigned=true", None, 422, "unassigned"),
    ("get unknown ticket", "get", "/tickets/{unknown_ticket}", None, 404, None),
    ("claim unknown ticket", "post", "/tickets/{unknown_ticket}/claim", None, 404, None),
    ("assign unknown ticket", "post", "/tickets/{unknown_ticket}/assign", {"team": "general"}, 404, None),
    ("assign unknown agent", "post", "/tickets/{ticket}/assign", {"agent_id": "{unknown_agent}"}, 422, "agent_id"),
    ("assign unknown team", "post", "/tickets/{ticket}/assign", {"team": "{unknown_team}"}, 422, "team"),
    (
        "assign agent and team",
        "post",
        "/tickets/{ticket}/assign",
        {"agent_id": "{agent}", "team": "general"},
        422,
        None,
    ),
    ("assign nothing", "post", "/tickets/{ticket}/assign", {}, 422, None),
    ("assign unknown field", "post", "/tickets/{ticket}/assign", {"team": "general", "why": "x"}, 422, "why"),
    ("assign malformed JSON", "post", "/tickets/{ticket}/assign", '{"team": }', 400, None),
    ("reply unknown ticket", "post", "/tickets/{unknown_ticket}/replies", {"body": "Hi"}, 404, None),
    ("reply empty", "post", "/tickets/{ticket}/replies", {"body": ""}, 422, "body"),
    ("reply blank", "post", "/tickets/{ticket}/replies", {"body": "   \n"}, 422, "body"),
    ("reply missing body", "post", "/tickets/{ticket}/replies", {}, 422, "body"),
    ("reply over 20000", "post", "/tickets/{ticket}/replies", {"body": TOO_LONG}, 422, "body"),
    ("reply unknown status", "post", "/tickets/{ticket}/replies", {"body": "Hi", "status": "sleeping"}, 422, "status"),
    ("reply status resolved", "post", "/tickets/{ticket}/replies", {"body": "Hi", "status": "resolved"}, 422, "status"),
    ("reply unknown field", "post", "/tickets/{ticket}/replies", {"body": "Hi", "internal": True}, 422, "internal"),
    ("reply malformed JSON", "post", "/tickets/{ticket}/replies", '{"body": "Hi"', 400, None),
    ("note empty", "post", "/tickets/{ticket}/notes", {"body": ""}, 422, "body"),
    ("note over 20000", "post", "/tickets/{ticket}/notes", {"body": TOO_LONG}, 422, "body"),
    ("note unknown field", "post", "/tickets/{ticket}/notes", {"body": "x", "public": True}, 422, "public"),
    ("note malformed JSON", "post", "/tickets/{ticket}/notes", "{", 400, None),
    ("note unknown ticket", "post", "/tickets/{unknown_ticket}/notes", {"body": "x"}, 404, None),
    ("status unknown", "post", "/tickets/{ticket}/status", {"status": "sleeping"}, 422, "status"),
    ("status resolved", "post", "/tickets/{ticket}/status", {"status": "resolved"}, 422, "status"),
    ("status closed", "post", "/tickets/{ticket}/status", {"status": "closed"}, 422, "status"),
    ("status new", "post", "/tickets/{ticket}/status", {"status": "new"}, 422, "status"),
    ("status missing", "post", "/tickets/{ticket}/status", {}, 422, "status"),
    ("status malformed JSON", "post", "/tickets/{ticket}/status", "status", 400, None),
    ("status unknown ticket", "post", "/tickets/{unknown_ticket}/status", {"status": "in_progress"}, 404, None),
    ("priority unknown", "post", "/tickets/{ticket}/priority", {"priority": "urgent"}, 422, "priority"),
    ("priority missing", "post", "/tickets/{ticket}/priority", {}, 422, "priority"),
    ("priority unknown field", "post", "/tickets/{ticket}/priority", {"priority": "high", "x": 1}, 422, "x"),
    ("priority malformed JSON", "post", "/tickets/{ticket}/priority", "{{", 400, None),
    ("priority unknown ticket", "post", "/tickets/{unknown_ticket}/priority", {"priority": "high"}, 404, None),
    ("resolve empty", "post", "/tickets/{ticket}/resolve", {"resolution": ""}, 422, "resolution"),
    ("resolve over 5000", "post", "/tickets/{ticket}/resolve", {"resolution": "x" * 5001}, 422, "resolution"),
    (
        "resolve unknown field",
        "post",
        "/tickets/{ticket}/resolve",
        {"resolution": "x", "status": "resolved"},
        422,
        "status",
    ),
    ("resolve malformed JSON", "post", "/tickets/{ticket}/resolve", "]", 400, None),
    ("resolve unknown ticket", "post", "/tickets/{unknown_ticket}/resolve", {"resolution": "x"}, 404, None),
]


INVALID_WORLD: dict = {}


def state_of(aclient, agent_id: str, ticket_id: str) -> tuple[dict, dict]:
    return (
        aclient.get(f"/agents/{agent_id}", headers=admin()).get_json(),
        aclient.get(f"/tickets/{ticket_id}", headers=admin()).get_json(),
    )


def _fill(value, names: dict):
    """The body with each "{name}" placeholder replaced by the test's own id."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in names:
        return names[value[1:-1]]
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])  # fmt: skip
def test_invalid_input_gets_its_problem_json(
    method, path, body, status, field, aclient, make_team, make_agent, new_ticket, settled, tap, assignment_db
):
    if not INVALID_WORLD:  # invalid input changes nothing (which is what the test checks): one world for all
        team = make_team()
        INVALID_WORLD.update(team=team, agent=make_agent(team["id"]), ticket=new_ticket(team["topics"][0]))
    team, agent, ticket_id = INVALID_WORLD["team"], INVALID_WORLD["agent"], INVALID_WORLD["ticket"]
    names = {"team": team["id"], "agent": agent["id"], "ticket": ticket_id, "unknown_team": unique("noteam"),
             "unknown_agent": unique("noagent"), "unknown_ticket": uuid.uuid4().hex}  # fmt: skip
    headers = as_agent(agent["id"]) if path.endswith("/claim") else admin()
    settled(ticket_id)
    before = state_of(aclient, agent["id"], ticket_id)
    events_before = len(tap.envelopes(ticket_id=ticket_id))
    url = path.format(**names)
    if isinstance(body, str):
        response = getattr(aclient, method)(url, data=body, content_type="application/json", headers=headers)
    elif method == "post" and path == "/agents":
        valid = {"id": unique("new"), "name": "New", "email": "new@example.com", "teams": [team["id"]], "capacity": 2}
        response = aclient.post(url, json={**valid, **_fill(body, names)}, headers=headers)
    elif method == "post" and path == "/teams":
        response = aclient.post(url, json={"id": unique("new"), "name": "New", **_fill(body, names)}, headers=headers)
    else:
        response = getattr(aclient, method)(url, json=_fill(body, names), headers=headers)

    assert_problem(response, status, field)
    settled(ticket_id)
    assert state_of(aclient, agent["id"], ticket_id) == before
    assert len(tap.envelopes(ticket_id=ticket_id)) == events_before


def test_a_body_that_is_not_json_is_400_and_an_oversized_one_413(aclient, assigned):
    team, jane, _, ticket_id = assigned
    as_text = aclient.post(
        f"/tickets/{ticket_id}/replies", data="body=hello", content_type="text/plain", headers=as_agent(jane["id"])
    )
    assert_problem(as_text, 400)
    huge = json.dumps({"body": "x" * (1024 * 1024 + 10)})
    too_big = aclient.post(
        f"/tickets/{ticket_id}/notes", data=huge, content_type="application/json", headers=as_agent(jane["id"])
    )
    assert_problem(too_big, 413)
    bound = aclient.post(f"/tickets/{ticket_id}/replies", json={"body": "x" * 20000}, headers=as_agent(jane["id"]))
    assert bound.status_code == 201, "20000 characters are allowed"


SURROGATE_BODIES = {
    "POST /agents": ("post", "/agents", '{{"id": "{new}", "name": "A\\ud800", "email": "a@example.com", '
                     '"teams": ["{team}"], "capacity": 1}}'),
    "PATCH /agents/{id}": ("patch", "/agents/{agent}", '{{"name": "A\\ud800"}}'),
    "POST /teams": ("post", "/teams", '{{"id": "{new}", "name": "T\\udfff"}}'),
    "replies": ("post", "/tickets/{ticket}/replies", '{{"body": "Hi \\ud800"}}'),
    "notes": ("post", "/tickets/{ticket}/notes", '{{"body": "Hi \\ud800"}}'),
    "resolve": ("post", "/tickets/{ticket}/resolve", '{{"resolution": "Done \\ud800"}}'),
}  # fmt: skip


@pytest.mark.parametrize("endpoint", list(SURROGATE_BODIES))
def test_a_lone_surrogate_in_a_string_is_a_4xx_not_a_500(endpoint, aclient, assigned):
    team, jane, _, ticket_id = assigned
    method, path, template = SURROGATE_BODIES[endpoint]
    names = {"team": team["id"], "agent": jane["id"], "ticket": ticket_id, "new": unique("new")}
    body = template.format(**names)

    response = getattr(aclient, method)(path.format(**names), data=body, content_type="application/json",
                                        headers=admin())  # fmt: skip

    assert 400 <= response.status_code < 500, response.status_code
    assert_problem(response, response.status_code)


# --- lead is per team; agents announce themselves (agent.updated) ---------------------------------


def test_a_lead_of_one_team_does_not_manage_the_tickets_of_another_team_it_is_in(
    aclient, make_team, make_agent, new_ticket
):
    network, general = make_team(), make_team()
    lead = make_agent(network["id"], general["id"], prefix="lead", lead_of=[network["id"]])
    other = make_agent(general["id"], network["id"])
    general_ticket, network_ticket = new_ticket(general["topics"][0]), new_ticket(network["topics"][0])

    for path, body in (("assign", {"agent_id": other["id"]}), ("priority", {"priority": "high"})):
        assert_problem(aclient.post(f"/tickets/{general_ticket}/{path}", json=body, headers=as_agent(lead["id"])), 403)
        response = aclient.post(f"/tickets/{network_ticket}/{path}", json=body, headers=as_agent(lead["id"]))
        assert response.status_code == 200, response.get_json()


def test_the_older_boolean_lead_still_means_lead_of_all_its_teams_and_lead_of_stays_within_them(
    aclient, make_team, make_agent
):
    network, general = make_team(), make_team()
    old_style = make_agent(network["id"], general["id"], lead=True)
    assert old_style["lead_of"] == [network["id"], general["id"]] and old_style["lead"] is True
    body = {"id": unique("agent"), "name": "A", "email": "a@example.com", "teams": [general["id"]], "capacity": 1}
    assert_problem(aclient.post("/agents", json={**body, "lead_of": [network["id"]]}, headers=admin()), 422, "lead_of")
    patched = aclient.patch(f"/agents/{old_style['id']}", json={"teams": [general["id"]]}, headers=admin())
    assert patched.get_json()["lead_of"] == [general["id"]]


def test_assign_checks_rights_on_the_ticket_it_saves_not_on_an_earlier_read(
    aclient, actx, make_team, make_agent, new_ticket, read_ticket, monkeypatch
):
    network, hardware = make_team(), make_team()
    lead = make_agent(network["id"], prefix="lead", lead_of=[network["id"]])
    make_agent(network["id"])
    hardware_agent = make_agent(hardware["id"])
    ticket_id = new_ticket(network["topics"][0])
    before = actx.tickets.get(ticket_id)  # what a read just before an admin's transfer saw
    transfer = aclient.post(f"/tickets/{ticket_id}/assign", json={"team": hardware["id"]}, headers=admin())
    assert transfer.status_code == 200, transfer.get_json()

    real_get, reads = actx.tickets.get, []

    def get(wanted: str):
        reads.append(wanted)
        return before if len(reads) == 1 else real_get(wanted)  # the first read is from before the transfer

    monkeypatch.setattr(actx.tickets, "get", get)
    response = aclient.post(f"/tickets/{ticket_id}/assign", json={"team": network["id"]}, headers=as_agent(lead["id"]))
    monkeypatch.undo()

    assert_problem(response, 404)  # the ticket as saved is another team's: the lead no longer reads it
    assert read_ticket(ticket_id)["team"] == hardware["id"] and hardware_agent


def test_creating_or_changing_an_agent_publishes_agent_updated_with_its_teams(aclient, make_team, make_agent, tap):
    network, general = make_team(), make_team()
    agent = make_agent(network["id"], general["id"], lead_of=[network["id"]])
    aclient.patch(f"/agents/{agent['id']}", json={"teams": [general["id"]], "available": False}, headers=admin())

    found = wait_until(
        lambda: len(envelopes := tap.envelopes(ticket_id=agent["id"], type="agent.updated")) >= 2 and envelopes,
        timeout=15,
        message="two agent.updated events",
    )
    assert [envelope["producer"] for envelope in found] == ["assignment", "assignment"]
    assert found[0]["data"] == {"agent_id": agent["id"], "name": agent["name"], "email": agent["email"],
                                "teams": [network["id"], general["id"]], "lead_of": [network["id"]],
                                "available": True}  # fmt: skip
    assert (found[1]["data"]["teams"], found[1]["data"]["lead_of"], found[1]["data"]["available"]) == (
        [general["id"]], [], False,
    )  # fmt: skip


def test_the_worker_announces_every_agent_at_start_so_projections_catch_up(actx, make_team, make_agent, tap,
                                                                             monkeypatch):  # fmt: skip
    from services.assignment import handlers

    agent = make_agent(make_team()["id"])
    wait_until(lambda: tap.envelopes(ticket_id=agent["id"], type="agent.updated"), timeout=15, message="created")
    monkeypatch.setattr(actx.agents, "all", lambda team=None: [actx.agents.get(agent["id"])])
    assert handlers.announce_agents(actx) == 1
    found = wait_until(
        lambda: len(envelopes := tap.envelopes(ticket_id=agent["id"], type="agent.updated")) >= 2 and envelopes,
        timeout=15,
        message="the agent announced again",
    )
    assert found[1]["data"] == found[0]["data"] and found[1]["event_id"] != found[0]["event_id"]
