"""assignment's pure rules: routing, the choice of agent (with properties), the ticket's workflow, rights."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.assignment.domain import (
    NO_DEADLINE,
    Candidate,
    RuleViolation,
    Ticket,
    choose_agent,
    holder_of_email,
    lead_of,
    may_change_agent,
    may_manage,
    may_work_on,
    route,
    why_team_stays,
)
from shared import events

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TEAMS = [
    {"id": "network", "topics": ["network", "vpn"]},
    {"id": "hardware", "topics": ["hardware"]},
    {"id": "general", "topics": []},
]


def agent(agent_id, open_tickets=0, capacity=5, available=True, teams=("network",), last=None) -> Candidate:
    return Candidate(agent_id, tuple(teams), capacity, open_tickets, available, last)


def test_a_topic_goes_to_the_team_that_lists_it_else_general():
    assert route("vpn", TEAMS) == "network"
    assert route("hardware", TEAMS) == "hardware"
    assert route("printers", TEAMS) == "general"


def test_the_least_loaded_available_agent_under_capacity_is_chosen():
    agents = [
        agent("ana", 3),
        agent("bo", 1),
        agent("cy", 0, available=False),
        agent("di", 2, capacity=2),
        agent("ed", 0, teams=("hardware",)),
    ]
    decision = choose_agent("network", agents)
    assert decision.agent_id == "bo"
    assert [c["agent_id"] for c in decision.record()["candidates"]] == ["ana", "bo", "cy", "di"]
    assert decision.record()["candidates"][2] == {
        "agent_id": "cy",
        "open_tickets": 0,
        "capacity": 5,
        "available": False,
    }


def test_ties_go_to_the_agent_assigned_least_recently():
    agents = [agent("ana", 1, last=T0), agent("bo", 1, last=T0 - timedelta(minutes=5)), agent("cy", 1, last=None)]
    assert choose_agent("network", agents).agent_id == "cy"  # never assigned: the longest ago
    assert choose_agent("network", agents[:2]).agent_id == "bo"


def test_nobody_free_means_no_agent():
    assert choose_agent("network", [agent("ana", 5, capacity=5), agent("bo", available=False)]).agent_id is None


CANDIDATES = st.lists(
    st.builds(
        Candidate,
        agent_id=st.text("abcdefgh", min_size=1, max_size=4),
        teams=st.lists(st.sampled_from(["network", "hardware", "general"]), min_size=1, max_size=3, unique=True).map(
            tuple
        ),
        capacity=st.integers(1, 5),
        open_tickets=st.integers(0, 6),
        available=st.booleans(),
        last_assigned_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    ),
    max_size=12,
    unique_by=lambda c: c.agent_id,
)


@given(CANDIDATES, st.sampled_from(["network", "hardware", "general"]))
def test_the_choice_never_breaks_the_rules(agents, team):
    chosen = choose_agent(team, agents).agent_id
    eligible = [a for a in agents if team in a.teams and a.available and a.open_tickets < a.capacity]
    if not eligible:
        assert chosen is None
        return
    pick = next(a for a in agents if a.agent_id == chosen)
    assert team in pick.teams, "an agent outside the team"
    assert pick.available, "an unavailable agent"
    assert pick.open_tickets < pick.capacity, "over capacity"
    assert pick.open_tickets == min(a.open_tickets for a in eligible), "not the least loaded"


@given(
    st.text(min_size=1, max_size=10),
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["a", "b", "c", "general"]), "topics": st.lists(st.sampled_from(["x", "y", "z"]))}
        ),
        unique_by=lambda team: team["id"],  # a team's id is its key: assignment never holds two of one id
    ),
)
def test_routing_always_names_a_team_that_exists_or_general(topic, teams):
    team = route(topic, teams)
    assert (
        team == "general" or topic in next(t for t in sorted(teams, key=lambda t: t["id"]) if t["id"] == team)["topics"]
    )


def make_ticket(**kw) -> Ticket:
    return Ticket(
        id="t1", number=100001, subject="VPN", topic="network", priority="normal", team="network", created_at=T0, **kw
    )


JANE = {"id": "jane", "name": "Jane Doe", "email": "jane@example.com", "teams": ["network"], "lead_of": []}


def test_assigning_records_the_event_with_who_and_why():
    ticket = make_ticket()
    decision = {"rule": "r", "candidates": []}
    ticket.assign(JANE, "network", "auto", "assignment", T0, "lead@example.com", decision, "Network & VPN")
    ((kind, data),) = ticket.recorded
    assert (
        kind == "ticket.assigned"
        and data["agent_name"] == "Jane Doe"
        and (data["team"], data["team_name"]) == ("network", "Network & VPN")
        and data["team_lead_email"] == "lead@example.com"
        and data["decision"] == {"rule": "r", "candidates": []}
    )
    assert ticket.status == "assigned" and ticket.history[-1]["action"] == "assigned"


def test_a_move_names_the_team_the_ticket_was_in_so_that_a_hand_back_reads_as_one():
    ticket = make_ticket(agent_id="jane", status="assigned")
    ticket.assign(None, "network", "transfer", "agent:tess", T0, by_name="Tess Lead")  # back into its own team
    ticket.assign(JANE, "desk", "transfer", "agent:tess", T0, by_name="Tess Lead")
    assert [data["previous_team"] for _, data in ticket.recorded] == ["network", "network"]
    assert [(entry["from"], entry["to"]) for entry in ticket.history] == [("network", "network"), ("network", "desk")]
    assert ticket.history[0]["agent_before"] == "jane" and "agent_before" not in ticket.history[1]  # nobody had it
    events.make_event("ticket.assigned", "t1", ticket.recorded[0][1], producer="assignment")  # the schema knows it


def test_a_change_a_person_makes_names_them_in_its_event_and_the_systems_name_nobody():
    ticket = make_ticket(agent_id="jane", status="assigned")
    ticket.set_priority("high", "agent:tess", T0, by_name="Tess Lead")
    ticket.set_status("in_progress", "agent:jane", T0, by_name="Jane Doe")
    ticket.reply("r1", "jane", "Jane Doe", "On it.", "waiting_on_requester", T0)
    ticket.set_status("in_progress", "requester", T0)  # the requester's message: nobody named
    ticket.assign(JANE, "desk", "transfer", "agent:tess", T0, team_name="Desk", by_name="Tess Lead")
    named = [(kind, data.get("by_name")) for kind, data in ticket.recorded if kind != "ticket.replied"]
    assert named == [
        ("ticket.priority_changed", "Tess Lead"),
        ("ticket.status_changed", "Jane Doe"),
        ("ticket.status_changed", "Jane Doe"),
        ("ticket.status_changed", None),
        ("ticket.assigned", "Tess Lead"),
    ]
    assert "by_name" not in ticket.recorded[-2][1]  # absent, not null: an older reader sees the event it knew
    ticket.resolve("Fixed.", "admin:boss@example.com", T0, by_name="The help desk")  # an admin, on jane's ticket
    assert ticket.recorded[-1] == (
        "ticket.resolved", {"agent_id": "jane", "resolution": "Fixed.", "by_name": "The help desk"},
    )  # fmt: skip


def test_the_first_reply_is_the_first_response_and_may_wait_on_the_requester():
    ticket = make_ticket(agent_id="jane", status="assigned")
    assert ticket.reply("r1", "jane", "Jane", "Try this", None, T0) is True
    assert ticket.reply("r2", "jane", "Jane", "And this", "waiting_on_requester", T0 + timedelta(minutes=1)) is False
    kinds = [k for k, _ in ticket.recorded]
    assert kinds == ["ticket.replied", "ticket.status_changed", "ticket.replied", "ticket.status_changed"]
    assert ticket.status == "waiting_on_requester" and ticket.first_response_at == T0


def test_a_reply_with_files_names_them_in_its_event_and_one_without_says_nothing_of_files():
    ticket = make_ticket(agent_id="jane", status="assigned")
    ticket.reply("r1", "jane", "Jane", "The guide is attached.", None, T0, ["guide.pdf", "notes.txt"])
    ticket.reply("r2", "jane", "Jane", "Any luck?", None, T0 + timedelta(minutes=1), [])
    replied = [data for kind, data in ticket.recorded if kind == "ticket.replied"]
    assert replied[0]["files"] == ["guide.pdf", "notes.txt"] and "files" not in replied[1]


def test_a_requester_message_older_than_the_wait_does_not_end_it():
    ticket = make_ticket(agent_id="jane", status="in_progress")
    ticket.set_status("waiting_on_requester", "jane", T0 + timedelta(minutes=5))
    ticket.requester_wrote(T0 + timedelta(minutes=1))
    assert ticket.status == "waiting_on_requester"
    ticket.requester_wrote(T0 + timedelta(minutes=9))
    assert ticket.status == "in_progress"


def test_notes_are_never_events():
    ticket = make_ticket(agent_id="jane", status="assigned")
    ticket.add_note("n1", "password is on the sticky note", "jane", T0)
    assert ticket.recorded == [] and ticket.notes[0]["body"] == "password is on the sticky note"


def test_resolving_twice_is_refused_and_reopen_returns_to_work():
    ticket = make_ticket(agent_id="jane", status="in_progress")
    ticket.resolve("fixed", "jane", T0)
    with pytest.raises(RuleViolation):
        ticket.resolve("fixed", "jane", T0)
    assert ticket.reopen(T0 + timedelta(minutes=1)) and ticket.status == "assigned"
    assert not ticket.reopen(T0 + timedelta(minutes=1))  # the same reopen again changes nothing
    assert ticket.history[-1]["by"] == "requester"  # a requester's message reopened it
    ticket.resolve("fixed again", "jane", T0 + timedelta(minutes=2))
    assert ticket.reopen(T0 + timedelta(minutes=3), by="omar") and ticket.history[-1]["by"] == "omar"  # an agent


def test_the_queue_sorts_on_the_soonest_known_deadline():
    ticket = make_ticket()
    assert ticket.sla_sort == NO_DEADLINE
    ticket.sla_alert("warning", {"clock": "resolution", "instance": 0, "due_at": T0 + timedelta(hours=4)}, T0)
    ticket.sla_alert("warning", {"clock": "first_response", "instance": 0, "due_at": T0 + timedelta(hours=1)}, T0)
    assert ticket.sla_sort == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    "role, agent, assigned_to, expected",
    [
        ("admin", None, "bo", True),
        ("agent", JANE, "jane", True),
        ("agent", JANE, None, True),  # waiting unassigned in her team
        ("agent", JANE, "bo", False),  # someone else's
        ("agent", {**JANE, "teams": ["hardware"]}, None, False),  # another team's queue
        ("portal", None, None, False),
    ],
)
def test_who_may_work_on_a_ticket(role, agent, assigned_to, expected):
    assert may_work_on(role, agent, make_ticket(agent_id=assigned_to)) is expected


def test_only_admins_and_the_teams_leads_manage():
    ticket = make_ticket(agent_id="jane")
    assert may_manage("admin", None, ticket)
    assert may_manage("agent", {**JANE, "lead_of": ["network"]}, ticket)
    assert not may_manage("agent", JANE, ticket)
    assert not may_manage("agent", {**JANE, "lead_of": ["hardware"], "teams": ["hardware"]}, ticket)


def test_lead_is_per_team_a_lead_of_network_does_not_manage_general_tickets():
    lead = {**JANE, "teams": ["network", "general"], "lead_of": ["network"]}
    network, general = make_ticket(), make_ticket()
    general.team = "general"
    assert may_manage("agent", lead, network)
    assert not may_manage("agent", lead, general)


def test_lead_of_follows_lead_of_or_the_older_boolean_and_stays_within_the_teams():
    teams = ["network", "general"]
    assert lead_of(teams, {"lead_of": ["network"]}) == ["network"]
    assert lead_of(teams, {"lead": True}) == teams  # the older boolean: lead of all its teams
    assert lead_of(teams, {"lead": False}, ["network"]) == []
    assert lead_of(["general"], {}, ["network", "general"]) == ["general"]  # left network: no longer leads it
    assert lead_of(teams, {}) == []
    for fields in ({"lead_of": ["hardware"]}, {"lead_of": ["network"], "lead": True}):
        with pytest.raises(ValueError):
            lead_of(teams, fields)


def test_a_ticket_in_progress_sent_to_a_team_queue_waits_as_new():
    ticket = make_ticket(agent_id="jane", status="in_progress")
    ticket.assign(None, "hardware", "transfer", "lead", T0)
    assert (ticket.agent_id, ticket.team, ticket.status) == (None, "hardware", "new")
    assert ticket.recorded[-1][1]["agent_id"] is None


def test_a_reply_takes_met_deadlines_out_of_the_queues_order():
    ticket = make_ticket(agent_id="jane", status="assigned")
    for clock, hours in (("first_response", 1), ("next_response", 2), ("resolution", 8)):
        ticket.sla_alert("warning", {"clock": clock, "instance": 0, "due_at": T0 + timedelta(hours=hours)}, T0)
    assert ticket.sla_sort == T0 + timedelta(hours=1)
    ticket.reply("r1", "jane", "Jane", "On it", None, T0)
    assert ticket.sla_sort == T0 + timedelta(hours=8)  # first and next response met; resolution still runs


def test_on_reopen_the_previous_agent_takes_it_back_only_when_free_for_it():
    from services.assignment.domain import takes_back

    assert takes_back(agent("jane", 1), "network", still_counted=False)
    assert takes_back(agent("jane", 5, capacity=5), "network", still_counted=False)  # full: its own ticket still
    assert not takes_back(agent("jane", available=False), "network", still_counted=False)
    assert takes_back(agent("jane", available=False), "network", still_counted=False, reopened_it=True)  # her act
    assert not takes_back(agent("jane", teams=("hardware",)), "network", still_counted=False, reopened_it=True)
    assert not takes_back(agent("jane", teams=("hardware",)), "network", still_counted=False)  # left the team
    assert takes_back(agent("jane", 5, capacity=5), "network", still_counted=True)  # its slot is already counted
    assert not takes_back(None, "network", still_counted=False)


@pytest.mark.parametrize(
    ("role", "own", "target", "fields", "allowed"),
    [
        ("admin", None, "jane", {"capacity", "teams", "available"}, True),
        ("agent", "jane", "jane", {"available"}, True),  # going away and coming back: the agent's own choice
        ("agent", "jane", "jane", {"capacity"}, False),
        ("agent", "jane", "jane", {"available", "capacity"}, False),
        ("agent", "jane", "jane", {"lead_of"}, False),
        ("agent", "jane", "omar", {"available"}, False),  # never another agent's
        ("agent", None, "jane", {"available"}, False),
        ("portal", None, "jane", {"available"}, False),
    ],
)
def test_an_agent_changes_only_its_own_availability(role, own, target, fields, allowed):
    assert may_change_agent(role, own, target, fields) is allowed


def test_an_address_is_held_by_another_agent_in_any_case_never_by_the_agent_itself():
    agents = [{"id": "jane", "email": "Jane@Example.com"}, {"id": "omar", "email": "omar@example.com"}]
    assert holder_of_email(agents, "omar", " jane@example.COM ")["id"] == "jane"
    assert holder_of_email(agents, "jane", "jane@example.com") is None  # its own
    assert holder_of_email(agents, "new", "ana@example.com") is None


def test_only_a_team_with_no_agents_leads_or_tickets_may_be_deleted_and_never_general():
    ann = {"name": "Ann", "teams": ["sales"], "lead_of": []}
    bo = {"name": "Bo", "teams": ["it"], "lead_of": ["sales"]}
    assert "always exists" in why_team_stays("general", "General", [])
    assert why_team_stays("sales", "Sales", [ann]) == "Sales has agents (Ann): take them out of it first."
    assert why_team_stays("sales", "Sales", [bo]).startswith("Bo leads Sales")
    assert "#7 for one" in why_team_stays("sales", "Sales", [], {"number": 7})
    assert why_team_stays("sales", "Sales", [{"name": "Cy", "teams": ["it"], "lead_of": []}]) is None
