"""Fuzzing intake's HTTP API from its own OpenAPI document (schemathesis 3.x), in-process on the real stores.

Whatever the fuzzer sends, intake never answers 5xx, and every error is problem+json.
With an admin token the fuzzer reaches the handlers (half of the generated ticket ids are real tickets and
half of the generated topics real topics, so creates, messages, closes and timelines really happen);
without a token nothing but a refusal comes back.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error

from services.intake.domain import DEFAULT_TOPICS
from tests.harness import auth_header
from tests.integration.conftest import ticket_request
from tests.integration.fuzzing import (  # the fixture is autouse for this module
    close_the_mongo_client_after_the_module,  # noqa: F401
    errors_are_problem_json,
)

FUZZ_SETTINGS = settings(
    # per operation: every route of intake, 10 generated requests each, others at each run (no database, not
    # derandomized): the runs together meet far more; 20, then 14, a run held the suite past 15 minutes on a busy
    # machine
    max_examples=10,
    deadline=None,
    database=None,  # no .hypothesis files; a failure prints the request that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
KNOWN_TICKETS: list[str] = []  # filled by the intake_schema fixture: one open and one closed ticket
KNOWN_TOPICS = [topic for topic, _ in DEFAULT_TOPICS]


@pytest.fixture
def intake_schema(intake_app):
    """intake's OpenAPI document, loaded from the app itself; calls go to the app in-process (WSGI)."""
    client = intake_app.test_client()
    KNOWN_TICKETS.clear()
    for close in (False, True):
        created = client.post("/tickets", json=ticket_request(), headers=auth_header("portal"))
        assert created.status_code == 201, created.get_json()
        KNOWN_TICKETS.append(created.get_json()["id"])
        if close:
            assert client.post(f"/tickets/{KNOWN_TICKETS[-1]}/close", headers=auth_header("portal")).status_code == 200
    return schemathesis.from_wsgi(
        "/openapi.json",
        intake_app,
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


# schemathesis 3.39 warns (DeprecationWarning) about its own filter arguments unless they are passed as None.
schema = schemathesis.from_pytest_fixture(
    "intake_schema", method=None, endpoint=None, tag=None, operation_id=None, skip_deprecated_operations=None
)


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Half the time a real ticket id, so the handlers behind /tickets/{ticket_id}/... run, not just a 404.

    The default topics are left alone: the session's other tests rely on their names.
    """

    def maybe_known(params):
        if not (isinstance(params, dict) and "ticket_id" in params and KNOWN_TICKETS):
            return st.just(params)
        return st.one_of(st.just(params), st.sampled_from(KNOWN_TICKETS).map(lambda tid: {**params, "ticket_id": tid}))

    def not_a_default_topic(params) -> bool:
        return not (isinstance(params, dict) and params.get("topic_id") in KNOWN_TOPICS)

    return strategy.filter(not_a_default_topic).flatmap(maybe_known)


@schema.hook
def before_generate_body(context, strategy):
    """Half the time a real topic in POST /tickets, so tickets are really created (topics are data, not schema)."""
    if (context.operation.method.upper(), context.operation.path) != ("POST", "/tickets"):
        return strategy

    def maybe_known(body):
        if not (isinstance(body, dict) and isinstance(body.get("topic"), str)):
            return st.just(body)
        return st.one_of(st.just(body), st.sampled_from(KNOWN_TOPICS).map(lambda topic: {**body, "topic": topic}))

    return strategy.flatmap(maybe_known)


@schema.hook
def before_generate_query(context, strategy):
    """Drop null query values (sent as the text "null"): the document calls the filters nullable, which a query
    string cannot express, so those would all be 422s and GET /tickets would rarely get past validation."""

    def without_nulls(query):
        return {key: value for key, value in query.items() if value is not None} if isinstance(query, dict) else query

    return strategy.map(without_nulls)


def refused_without_a_token(ctx, response, case) -> None:
    """Without a token no operation succeeds (every one of intake's operations needs a role)."""
    assert response.status_code >= 400, f"{case.method} {case.formatted_path} answered {response.status_code}"


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_an_admin_token_never_get_a_5xx(case):
    response = case.call(headers=auth_header("admin"))
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=10)
def test_fuzzed_requests_without_a_token_are_refused_without_a_5xx(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json, refused_without_a_token))
