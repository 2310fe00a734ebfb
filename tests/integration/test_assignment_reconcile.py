"""The reconciliation that keeps agents' open counts exact after a process died between its two writes."""

from __future__ import annotations

from services.assignment.timers import Reconciler
from shared.clock import now
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    aclient_fixture,  # noqa: F401
    actx_fixture,  # noqa: F401
    assignment_app_fixture,  # noqa: F401
    make_agent_fixture,  # noqa: F401
    make_team_fixture,  # noqa: F401
    new_ticket_fixture,  # noqa: F401
)


def test_a_slot_left_by_a_crash_is_repaired_only_once_the_difference_lasts(actx, make_team, make_agent, new_ticket):
    team = make_team()
    jane = make_agent(team["id"], capacity=3)
    kept = new_ticket(team["topics"][0])  # assigned to jane for real
    agent = actx.agents.get(jane["id"])
    actx.agents.reserve(agent, "ghost-ticket", now())  # reserved, then the process died before the ticket
    assert actx.agents.get(jane["id"])["open_tickets"] == 2

    reconciler = Reconciler(actx)
    assert reconciler.run() == 0  # seen once: it may be an assignment in flight
    assert actx.agents.held()[jane["id"]] == sorted([kept, "ghost-ticket"])
    assert reconciler.run() == 1  # the same difference a run later: repaired from the tickets
    assert actx.agents.held()[jane["id"]] == [kept]
    assert actx.agents.get(jane["id"])["open_tickets"] == 1


def test_an_assignment_completed_between_two_runs_is_left_alone(actx, make_team, make_agent, new_ticket):
    team = make_team()
    jane = make_agent(team["id"], capacity=3)
    reconciler = Reconciler(actx)
    agent = actx.agents.get(jane["id"])
    actx.agents.reserve(agent, "in-flight", now())  # the slot is reserved; the ticket comes next
    reconciler.run()
    new_ticket(team["topics"][0], ticket_id="in-flight")  # the ticket is saved: the difference is gone
    reconciler.run()
    assert actx.agents.held()[jane["id"]] == ["in-flight"]
    assert actx.agents.get(jane["id"])["open_tickets"] == 1


def test_a_count_left_wrong_by_a_crash_is_repaired_though_the_counted_tickets_agree(
    actx, make_team, make_agent, new_ticket
):
    team = make_team()
    jane = make_agent(team["id"], capacity=3)
    kept = new_ticket(team["topics"][0])
    actx.agents.reservations.delete_one({"_id": f"{kept}/{jane['id']}"})
    actx.agents.collection.update_one({"_id": jane["id"]}, {"$inc": {"open_count": 1}})  # died between the writes
    actx.agents.reservations.insert_one({"_id": f"{kept}/{jane['id']}", "ticket_id": kept, "agent_id": jane["id"]})
    assert actx.agents.get(jane["id"])["open_tickets"] == 2

    reconciler = Reconciler(actx)
    assert reconciler.run() == 0
    assert reconciler.run() == 1
    assert actx.agents.get(jane["id"])["open_tickets"] == 1
    assert actx.agents.held()[jane["id"]] == [kept]
