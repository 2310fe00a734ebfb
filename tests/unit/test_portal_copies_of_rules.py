"""The portal says some of assignment's rules before it asks (a topic that would move another team's tickets, a
lead's teams, an address another agent has), from its own copies: a service never imports another's modules.
These tests hold each copy to assignment's rule on drawn desks, so that one cannot change alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.assignment import domain as assignment
from services.portal import domain as portal
from services.portal.admin import people as people_module
from services.portal.handlers import UserError

IDS = st.sampled_from(["general", "network", "desk", "hardware", "a-team"])
TOPICS = st.sampled_from(["vpn", "printers", "laptops", "general", "access"])
teams = st.lists(
    st.fixed_dictionaries({"id": IDS, "topics": st.lists(TOPICS, max_size=3, unique=True)}),
    max_size=5,
    unique_by=lambda t: t["id"],
)
agents = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["ann", "bo", "cy", "di"]),
            "name": st.just("Someone"),
            "email": st.sampled_from(["ann@example.com", "Bo@Example.com", "cy@example.com", " ANN@example.com "]),
            "teams": st.lists(IDS, max_size=3, unique=True),
            "lead_of": st.lists(IDS, max_size=3, unique=True),
        }
    ),
    max_size=4,
    unique_by=lambda a: a["id"],
)


@settings(max_examples=300, deadline=None)
@given(teams, TOPICS)
def test_the_portal_routes_a_topic_as_assignment_does(desk, topic):
    assert portal.topic_routes(desk).get(topic, assignment.GENERAL) == assignment.route(topic, desk)


@settings(max_examples=300, deadline=None)
@given(agents, IDS)
def test_the_portal_knows_a_lead_s_teams_as_assignment_does(people, team):
    for agent in people:
        assert (team in portal.led_teams(agent)) == assignment.leads(agent, team)


@settings(max_examples=300, deadline=None)
@given(
    agents,
    st.sampled_from(["ann", "bo", "cy", "di", "new"]),
    st.sampled_from(["ann@example.com", "BO@example.com", "eve@example.com"]),
)
def test_the_portal_finds_the_agent_an_address_belongs_to_as_assignment_does(people, agent_id, email):
    own = next((a for a in people if a["id"] == agent_id), None)
    if own is not None and own["email"].strip().lower() == email.lower():
        return  # its own address, unchanged: the portal asks nothing (agents that share one from before may)
    holder = assignment.holder_of_email(people, agent_id, email)
    try:
        people_module.email_of_nobody_else(None, {}, agent_id, email, agents=people)
    except UserError as refused:
        assert holder is not None and f"({holder['id']})" in refused.errors["email"][0]
    else:
        assert holder is None
