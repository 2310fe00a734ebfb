"""Fuzzing notify's HTTP API from its own OpenAPI document (schemathesis 3.x), in-process on the real stores.

Whatever the fuzzer sends, notify never answers 5xx, and every error is problem+json.
Half of the generated notification ids, webhook ids, ticket ids, recipients and statuses are real ones
(pending, failed, sent and dead notifications; registered webhooks), and half of the webhook bodies are
valid ones, so the handlers behind the validation really run. One pass carries an admin token, one an
agent's (who may read notifications and nothing else) and one no token at all, which must be refused.
The webhooks the fuzzer registers are removed afterwards (notify_app's teardown).
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error

from services.notify.domain import STATUSES
from tests.integration.fuzzing import (  # the fixture is autouse for this module
    close_the_mongo_client_after_the_module,  # noqa: F401
    errors_are_problem_json,
    sometimes_known,
)
from tests.integration.notify_fixtures import (  # fixtures: pytest finds them by their short names
    admin,
    agent,
    created_event,
    make_dead,
    make_failed,
    make_notification_fixture,  # noqa: F401
    make_sent,
    notify_app_fixture,  # noqa: F401
    notify_ctx_fixture,  # noqa: F401
    notify_event_fixture,  # noqa: F401
    webhook_body,
)

FUZZ_SETTINGS = settings(
    max_examples=14,  # per operation, others at each run (no database, not derandomized): the suite's time
    deadline=None,
    database=None,  # no .hypothesis files; a failure prints the request that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# filled by the notify_schema fixture: real values the fuzzer mixes into paths, queries and bodies
KNOWN: dict[str, list[str]] = {
    "notification_id": [],
    "webhook_id": [],
    "ticket_id": [],
    "recipient": [],
    "status": list(STATUSES),
}
PATTERNS = ["ticket.*", "sla.*", "*", "sla.breached", "ticket.created", "ticket.*_added"]
URLS = ["https://hooks.example.com/tf", "http://127.0.0.1:8099/hook", "https://[::1]:8443/h?x=1"]


@pytest.fixture
def notify_schema(notify_app, notify_ctx, notify_event, make_notification):
    """notify's OpenAPI document, loaded from the app itself; calls go to the app in-process (WSGI).

    A ticket whose creation gave a receipt and a webhook delivery, and notifications in every status.
    """
    for key in ("notification_id", "webhook_id", "ticket_id", "recipient"):
        KNOWN[key].clear()
    client = notify_app.test_client()
    hook = client.post("/webhooks", json=webhook_body(events=["ticket.*"]), headers=admin())
    assert hook.status_code == 201, hook.get_data(as_text=True)
    ticket_id = uuid.uuid4().hex
    records = notify_event(created_event(ticket_id))
    made = [make_notification(ticket_id=ticket_id) for _ in range(4)]
    make_failed(notify_ctx, made[0])
    make_sent(notify_ctx, made[1])
    for record in made[2:]:  # two: the first retry makes one pending again
        make_dead(notify_ctx, record)
    records = made[2:] + made[:2] + records  # the dead first: sampled_from favours the first values
    KNOWN["webhook_id"].append(hook.get_json()["id"])
    KNOWN["ticket_id"].append(ticket_id)
    KNOWN["notification_id"].extend(record.id for record in records)
    KNOWN["recipient"].extend({record.recipient for record in records})
    yield schemathesis.from_wsgi(
        "/openapi.json",
        notify_app,
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


# schemathesis 3.39 warns (DeprecationWarning) about its own filter arguments unless they are passed as None.
schema = schemathesis.from_pytest_fixture(
    "notify_schema", method=None, endpoint=None, tag=None, operation_id=None, skip_deprecated_operations=None
)


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Real notifications and webhooks half the time, so the handlers behind the paths run, not just a 404."""
    return strategy.flatmap(lambda params: sometimes_known(params, ("notification_id", "webhook_id"), KNOWN))


@schema.hook
def before_generate_query(context, strategy):
    """Drop null query values (sent as the text "null"); real tickets, recipients and statuses half the time."""

    def without_nulls(query):
        return {key: value for key, value in query.items() if value is not None} if isinstance(query, dict) else query

    return strategy.map(without_nulls).flatmap(
        lambda query: sometimes_known(query, ("ticket_id", "recipient", "status"), KNOWN)
    )


@schema.hook
def before_generate_body(context, strategy):
    """Webhook bodies with real URLs and patterns half the time (the generated ones are nearly always refused)."""
    if (context.operation.method.upper(), context.operation.path) != ("POST", "/webhooks"):
        return strategy
    valid = st.builds(
        lambda url, events, secret: {"url": url, "events": events, "secret": secret},
        st.sampled_from(URLS),
        st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=4),
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=16, max_size=40),
    )
    return st.one_of(strategy, valid)


def refused_without_a_token(ctx, response, case) -> None:
    """Without a token no operation succeeds: each of notify's operations needs a role (401)."""
    assert response.status_code == 401, f"{case.method} {case.formatted_path} answered {response.status_code}"


def agents_only_read_notifications(ctx, response, case) -> None:
    """An agent reads notifications and does nothing else: retries and webhooks are 403 (400: a body not JSON)."""
    reads = case.method.upper() == "GET" and case.path.startswith("/notifications")
    if reads:
        assert response.status_code not in (401, 403), f"{case.method} {case.formatted_path}: {response.status_code}"
    else:
        assert response.status_code in (400, 403), f"{case.method} {case.formatted_path}: {response.status_code}"


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_an_admin_token_never_get_a_5xx(case):
    response = case.call(headers=admin())
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json))


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=12)
def test_fuzzed_requests_with_an_agents_token_only_read_without_a_5xx(case):
    response = case.call(headers=agent())
    case.validate_response(
        response, checks=(not_a_server_error, errors_are_problem_json, agents_only_read_notifications)
    )


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=6)
def test_fuzzed_requests_without_a_token_are_refused_without_a_5xx(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error, errors_are_problem_json, refused_without_a_token))
