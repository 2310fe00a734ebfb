"""What every service's OpenAPI fuzzing (schemathesis 3.x) shares: the problem+json check, real ids, clean-up.

The admin's token gets the most examples per operation (9-14 a run, others at each run): it reaches every handler
and the store. The other roles (no token, a portal token, an agent's) are refused or limited before the body
matters, so fewer examples (6-12) test that; the fuzz tests are the suite's most CPU-hungry, and its time is
bounded.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from shared import mongo

PROBLEM_JSON = "application/problem+json"


def errors_are_problem_json(ctx, response, case) -> None:
    """Every 4xx/5xx answer is application/problem+json with type, title, status and detail."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("Content-Type", "")
    assert content_type == PROBLEM_JSON, f"{response.status_code} answered with Content-Type {content_type!r}"
    body = json.loads(response.get_data())
    missing = {"type", "title", "status", "detail"} - set(body)
    assert not missing, f"problem+json without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, f"problem status {body['status']} on a {response.status_code}"


def sometimes_known(values, keys: tuple[str, ...], known: dict[str, list]):
    """Half the time, each value named in keys is replaced by a real one from `known`."""
    if not isinstance(values, dict):
        return st.just(values)
    strategy = st.just(values)
    for key in keys:
        if key in values:
            strategy = strategy.flatmap(
                lambda current, key=key: st.one_of(
                    st.just(current), st.sampled_from(known[key]).map(lambda real: {**current, key: real})
                )
            )
    return strategy


@pytest.fixture(scope="module", autouse=True)
def close_the_mongo_client_after_the_module():
    """The process's MongoDB client stays open after the last in-process app; close it (import this fixture)."""
    yield
    mongo.close_client()
