"""Fuzzing assignment's HTTP API from its own OpenAPI document (schemathesis 3.x), in-process on the real stores.

Whatever the fuzzer sends, assignment never answers 5xx, and every error is problem+json.
Half of the generated ticket, agent and team ids are real ones (and so are the teams and agents named in
bodies), so the handlers behind the validation really run: claims, transfers, replies, resolves. One pass
carries an admin token, one the token of a team lead, and one no token at all, which must be refused.
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error

from services.assignment import handlers
from tests.harness import auth_header
from tests.integration.assignment_fixtures import (  # fixtures: pytest finds them by their short names
    admin,
    as_agent,
    assignment_app_fixture,  # noqa: F401
    created_event,
    unique,
)
from tests.integration.fuzzing import (  # the fixture is autouse for this module
    close_the_mongo_client_after_the_module,  # noqa: F401
    errors_are_problem_json,
)

FUZZ_SETTINGS = settings(
    max_examples=9,  # per operation, others at each run (no database, not derandomized); 18, then 13, held it long
    deadline=None,
    database=None,  # no .hypothesis files; a failure prints the request that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# filled by the assignment_schema fixture: real ids the fuzzer mixes into paths, queries and bodies
KNOWN: dict[str, list[str]] = {"ticket_id": [], "agent_id": [], "team_id": []}
LEAD: list[str] = []  # the lead of the known team, for the agent pass
PATH_KEYS = {"ticket_id": "ticket_id", "agent_id": "agent_id", "team_id": "team_id"}
BODY_KEYS = {"agent_id": "agent_id", "team": "team_id"}


@pytest.fixture
def assignment_schema(assignment_app):
    """assignment's OpenAPI document, loaded from the app itself; calls go to the app in-process (WSGI).

    A team with a lead and an agent, and tickets in it: assigned, waiting (the agents are at capacity) and resolved.
    """
    client, app = assignment_app.test_client(), assignment_app.extensions["ticketflow.assignment"]
    for values in KNOWN.values():
        values.clear()
    team = {"id": unique("fuzzteam"), "name": "Fuzz", "topics": [unique("fuzz")]}
    assert client.post("/teams", json=team, headers=admin()).status_code == 201
    agents = []
    for lead in (True, False):
        agent_id = unique("fuzzer")
        agent = {"id": agent_id, "name": "Fuzz Agent", "email": f"{agent_id}@example.com", "teams": [team["id"]],
                 "capacity": 1, "lead": lead}  # fmt: skip
        assert client.post("/agents", json=agent, headers=admin()).status_code == 201
        agents.append(agent["id"])
    tickets = [uuid.uuid4().hex for _ in range(4)]
    for ticket_id in tickets:
        handlers.on_created(app, created_event(ticket_id, team["topics"][0]))
    resolved = client.post(f"/tickets/{tickets[0]}/resolve", json={"resolution": "Done."}, headers=admin())
    assert resolved.status_code == 200, resolved.get_json()
    KNOWN.update(ticket_id=tickets, agent_id=agents, team_id=[team["id"]])
    LEAD[:] = agents[:1]
    return schemathesis.from_wsgi(
        "/openapi.json",
        assignment_app,
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


# schemathesis 3.39 warns (DeprecationWarning) about its own filter arguments unless they are passed as None.
schema = schemathesis.from_pytest_fixture(
    "assignment_schema", method=None, endpoint=None, tag=None, operation_id=None, skip_deprecated_operations=None
)


def _sometimes_known(values: dict, keys: dict[str, str]):
    """Half the time, each id named in keys is replaced by a real one."""
    if not isinstance(values, dict):
        return st.just(values)
    strategy = st.just(values)
    for key, kind in keys.items():
        if key in values and KNOWN[kind]:
            strategy = strategy.flatmap(
                lambda current, key=key, kind=kind: st.one_of(
                    st.just(current), st.sampled_from(KNOWN[kind]).map(lambda real: {**current, key: real})
                )
            )
    return strategy


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Real ids half the time, so the handlers behind the paths run, not just a 404. Team general is left alone:
    the session's other tests route to it."""

    def not_general(params) -> bool:
        return not (isinstance(params, dict) and params.get("team_id") == "general")

    return strategy.filter(not_general).flatmap(lambda params: _sometimes_known(params, PATH_KEYS))


@schema.hook
def before_generate_body(context, strategy):
    """Real agents and teams in bodies half the time (they are data, not schema)."""
    operation = (context.operation.method.upper(), context.operation.path)
    if operation == ("POST", "/agents"):

        def known_teams(body):
            if not (isinstance(body, dict) and isinstance(body.get("teams"), list)):
                return st.just(body)
            return st.one_of(st.just(body), st.just({**body, "teams": KNOWN["team_id"]}))

        return strategy.flatmap(known_teams)
    if operation == ("POST", "/tickets/{ticket_id}/assign"):

        def valid_moves():  # what a lead or an admin sends: one real agent, or one real team
            moves = [{"agent_id": agent} for agent in KNOWN["agent_id"]] + [{"team": t} for t in KNOWN["team_id"]]
            return st.sampled_from(moves + [{"team": "general"}])

        return strategy.flatmap(lambda body: st.one_of(_sometimes_known(body, BODY_KEYS), valid_moves()))
    return strategy


@schema.hook
def before_generate_query(context, strategy):
    """Drop null query values (sent as the text "null"), and use real agents and teams half the time."""

    def without_nulls(query):
        return {key: value for key, value in query.items() if value is not None} if isinstance(query, dict) else query

    return strategy.map(without_nulls).flatmap(
        lambda query: _sometimes_known(query, {"agent_id": "agent_id", "team": "team_id"})
    )


def refused_without_a_token(ctx, response, case) -> None:
    """Without a token no operation succeeds: each of assignment's operations needs a role (401)."""
    assert response.status_code == 401, f"{case.method} {case.formatted_path} answered {response.status_code}"


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_an_admin_token_never_get_a_5xx(case):
    response = case.call(headers=admin())
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=12)
def test_fuzzed_requests_with_a_team_leads_token_never_get_a_5xx(case):
    response = case.call(headers=as_agent(LEAD[0]))
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=6)
def test_fuzzed_requests_without_a_token_are_refused_without_a_5xx(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json, refused_without_a_token))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=6)
def test_fuzzed_requests_with_a_portal_token_are_forbidden_without_a_5xx(case):
    response = case.call(headers=auth_header("portal"))
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))
    assert response.status_code in (400, 403), f"{case.method} {case.formatted_path} answered {response.status_code}"
