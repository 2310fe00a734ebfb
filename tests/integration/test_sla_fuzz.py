"""Fuzzing sla's HTTP API from its own OpenAPI document (schemathesis 3.x), in-process on the real stores.

Whatever the fuzzer sends, sla never answers 5xx, and every error is problem+json.
Half of the generated priorities, ticket ids and calendar ids are real ones (tickets with running, met and
breached clocks; the calendars that exist), and so are the calendars named in policy bodies, so the
handlers behind the validation really run. One pass carries an admin token, one an agent's (who may read
but not write) and one no token at all, which must be refused. Policies changed by the admin pass are
restored afterwards; its tickets and breaches are removed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error

from services.sla import handlers
from shared.events import BY_URGENCY
from tests.integration.fuzzing import (  # the fixture is autouse for this module
    close_the_mongo_client_after_the_module,  # noqa: F401
    errors_are_problem_json,
    sometimes_known,
)
from tests.integration.sla_fixtures import (  # fixtures: pytest finds them by their short names
    admin,
    agent,
    breached_event,
    calendar_body,
    created_event,
    forget_tickets_fixture,  # noqa: F401
    policies_restored_fixture,  # noqa: F401
    sla_app_fixture,  # noqa: F401
    sla_ctx_fixture,  # noqa: F401
    sla_db_fixture,  # noqa: F401
    ticket_event,
    unique,
    utc,
)

FUZZ_SETTINGS = settings(
    max_examples=10,  # per operation, others at each run (no database, not derandomized); 20, then 14, held it long
    deadline=None,
    database=None,  # no .hypothesis files; a failure prints the request that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
CALENDAR_PUT = {"method": "PUT", "path": "/calendars/{calendar_id}"}
# filled by the sla_schema fixture: real values the fuzzer mixes into paths, queries and bodies
KNOWN: dict[str, list[str]] = {"priority": list(BY_URGENCY), "ticket_id": [], "calendar_id": ["24x7"]}
SINCE = ["2026-01-01T00:00:00Z", "2100-01-01T00:00:00.000Z"]


@pytest.fixture
def sla_schema(sla_app, sla_ctx, sla_db, policies_restored, forget_tickets):
    """sla's OpenAPI document, loaded from the app itself; calls go to the app in-process (WSGI).

    Tickets with running, met, paused and breached clocks, two breaches recorded, a calendar if one can be
    stored and two ids free for new ones. The calendars the test creates are removed afterwards.
    """
    KNOWN["ticket_id"].clear()
    KNOWN["calendar_id"][:] = ["24x7", unique("fuzznew"), unique("fuzznew")]
    began = handlers.now()
    start = began - timedelta(hours=5)
    for priority in ("normal", "emergency", "low"):
        ticket_id = uuid.uuid4().hex
        handlers.on_created(sla_ctx, created_event(ticket_id, priority, start))
        KNOWN["ticket_id"].append(ticket_id)
    answered, waiting, _ = KNOWN["ticket_id"]
    handlers.on_moment("replied")(sla_ctx, ticket_event("ticket.replied", answered, start + timedelta(minutes=5)))
    handlers.on_message_added(sla_ctx, ticket_event("ticket.message_added", answered, start + timedelta(minutes=9)))
    waits = ticket_event("ticket.status_changed", waiting, start, status="waiting_on_requester")
    handlers.on_status_changed(sla_ctx, waits)
    for ticket_id in KNOWN["ticket_id"][:2]:
        handlers.on_breached(sla_ctx, breached_event(ticket_id, utc(2100, 1, 1, 0, 5)))
    forget_tickets.extend(KNOWN["ticket_id"])
    calendar_id = unique("fuzzcal")
    created = sla_app.test_client().put(f"/calendars/{calendar_id}", json=calendar_body(), headers=admin())
    if created.status_code == 201:  # else the nested-arrays bug: only 24x7 exists
        KNOWN["calendar_id"].append(calendar_id)
    yield schemathesis.from_wsgi(
        "/openapi.json",
        sla_app,
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )
    sla_db.calendars.delete_many({"updated_at": {"$gte": began}})


# schemathesis 3.39 warns (DeprecationWarning) about its own filter arguments unless they are passed as None.
schema = schemathesis.from_pytest_fixture(
    "sla_schema", method=None, endpoint=None, tag=None, operation_id=None, skip_deprecated_operations=None
)


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Real priorities, tickets and calendars half the time, so the handlers behind the paths run, not just a 404."""
    return strategy.flatmap(lambda params: sometimes_known(params, ("priority", "ticket_id", "calendar_id"), KNOWN))


@schema.hook
def before_generate_body(context, strategy):
    """Policies naming real calendars, and calendars in real time zones, half the time (they are data)."""
    operation = (context.operation.method.upper(), context.operation.path)
    if operation == ("PUT", "/policies/{priority}"):
        return strategy.flatmap(_with_calendar)
    if operation == ("PUT", "/calendars/{calendar_id}"):
        zones = st.sampled_from(["UTC", "Europe/Madrid", "America/New_York", "Asia/Kolkata"])

        def real_zone(body):
            if not (isinstance(body, dict) and "timezone" in body):
                return st.just(body)
            return st.one_of(st.just(body), zones.map(lambda zone: {**body, "timezone": zone}))

        return st.one_of(strategy.flatmap(real_zone), st.just(calendar_body()))
    return strategy


def _with_calendar(body):
    if not (isinstance(body, dict) and "calendar" in body):
        return st.just(body)
    return st.one_of(st.just(body), st.sampled_from(KNOWN["calendar_id"]).map(lambda cal: {**body, "calendar": cal}))


@schema.hook
def before_generate_query(context, strategy):
    """Drop null query values (sent as the text "null"); `since` a UTC time ending in Z half the time."""

    def without_nulls(query):
        return {key: value for key, value in query.items() if value is not None} if isinstance(query, dict) else query

    def maybe_since(query):
        if not (isinstance(query, dict) and "since" in query):
            return st.just(query)
        return st.one_of(st.just(query), st.sampled_from(SINCE).map(lambda since: {**query, "since": since}))

    return strategy.map(without_nulls).flatmap(maybe_since)


def refused_without_a_token(ctx, response, case) -> None:
    """Without a token no operation succeeds: each of sla's operations needs a role (401)."""
    assert response.status_code == 401, f"{case.method} {case.formatted_path} answered {response.status_code}"


def agents_only_read(ctx, response, case) -> None:
    """An agent reads everything and writes nothing: a PUT, a DELETE, and the admins' what-if (a POST), are 403 (or
    400 for a body that is not JSON)."""
    if case.method.upper() in ("PUT", "POST", "DELETE"):
        assert response.status_code in (400, 403), f"{case.method} {case.formatted_path}: {response.status_code}"
    else:
        assert response.status_code not in (401, 403), f"{case.method} {case.formatted_path}: {response.status_code}"


@schema.exclude(**CALENDAR_PUT).parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_an_admin_token_never_get_a_5xx(case):
    response = case.call(headers=admin())
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))


def test_fuzzed_calendars_with_an_admin_token_never_get_a_5xx(sla_schema, sla_app):
    """PUT /calendars/{calendar_id} alone, with more examples than the other operations get.

    One valid calendar first, so that the store is surely reached, whatever the fuzzer draws.
    """
    client = sla_app.test_client()
    assert client.put(f"/calendars/{unique('fuzzcal')}", json=calendar_body(), headers=admin()).status_code < 500
    operation = sla_schema["/calendars/{calendar_id}"]["PUT"]
    methods = (DataGenerationMethod.positive, DataGenerationMethod.negative)
    cases = st.one_of([operation.as_strategy(hooks=schema.hooks, data_generation_method=m) for m in methods])

    @given(case=cases)
    @settings(FUZZ_SETTINGS, max_examples=28)
    def put(case):
        response = case.call(headers=admin())
        case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))

    put()


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=12)
def test_fuzzed_requests_with_an_agents_token_only_read_without_a_5xx(case):
    response = case.call(headers=agent())
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json, agents_only_read))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=6)
def test_fuzzed_requests_without_a_token_are_refused_without_a_5xx(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json, refused_without_a_token))
