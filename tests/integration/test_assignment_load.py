"""An agent's load: a count on the agent and a reservation per counted ticket, never a list that grows."""

from __future__ import annotations

import uuid

import bson

from services.assignment.timers import Reconciler
from shared import outbox
from shared.clock import now
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    aclient_fixture,  # noqa: F401
    actx_fixture,  # noqa: F401
    assignment_app_fixture,  # noqa: F401
    make_agent_fixture,  # noqa: F401
    make_team_fixture,  # noqa: F401
    new_ticket_fixture,  # noqa: F401
)


def _stored(actx, agent_id: str) -> dict:
    """The agent's document without its outbox (its agent.updated events leave it whenever they are out)."""
    return actx.agents.collection.find_one({"_id": agent_id}, outbox.NO_OUTBOX)


def test_an_agents_document_keeps_its_size_whatever_its_load(actx, make_team, make_agent, new_ticket):
    """The store decodes and rewrites a whole document on every read and write: a list of open tickets on
    the agent made each assignment cost more as the desk filled up."""
    team = make_team()
    jane = make_agent(team["id"], capacity=50)
    new_ticket(team["topics"][0])
    one = len(bson.encode(_stored(actx, jane["id"])))
    for _ in range(6):
        new_ticket(team["topics"][0])
    assert actx.agents.get(jane["id"])["open_tickets"] == 7
    assert len(bson.encode(_stored(actx, jane["id"]))) == one


def test_a_ticket_reserved_twice_for_an_agent_counts_once(actx, make_team, make_agent):
    team = make_team()
    jane = make_agent(team["id"], capacity=3)
    ticket_id = uuid.uuid4().hex
    actx.agents.reserve(actx.agents.get(jane["id"]), ticket_id, now())
    actx.agents.reserve(actx.agents.get(jane["id"]), ticket_id, now())  # a redelivery after a crash before the save
    assert actx.agents.get(jane["id"])["open_tickets"] == 1
    assert actx.agents.held()[jane["id"]] == [ticket_id]
    actx.agents.release(jane["id"], ticket_id)
    actx.agents.release(jane["id"], ticket_id)  # a repeated release gives back nothing more
    assert actx.agents.get(jane["id"])["open_tickets"] == 0
    assert jane["id"] not in actx.agents.held()


def test_an_agent_stored_with_a_list_of_open_tickets_is_converted(actx, make_team, make_agent, new_ticket):
    team = make_team()
    jane = make_agent(team["id"], capacity=5)
    kept = sorted(new_ticket(team["topics"][0]) for _ in range(2))
    for ticket_id in kept:  # back to the layout of before: the list on the agent, no reservations
        actx.agents.reservations.delete_one({"_id": f"{ticket_id}/{jane['id']}"})
    actx.agents.collection.update_one({"_id": jane["id"]}, {"$set": {"open": kept}, "$unset": {"open_count": ""}})
    assert actx.agents.get(jane["id"])["open_tickets"] == 2  # read as before, until converted

    actx.agents.ensure_indexes()
    stored = _stored(actx, jane["id"])
    assert "open" not in stored and stored["open_count"] == 2
    assert actx.agents.held()[jane["id"]] == kept
    actx.agents.release(jane["id"], kept[0])
    assert actx.agents.get(jane["id"])["open_tickets"] == 1
    assert Reconciler(actx).run() == 0
