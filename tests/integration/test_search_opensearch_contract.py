"""The embedded engine's cases (tests/unit/test_search_engine.py), every one, against a real OpenSearch.

    TEST_OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/pytest tests/integration/test_search_opensearch_contract.py

Each test gets an index of its own (a generation of OpenSearchHome under a namespace of its own), deleted after.
Without TEST_OPENSEARCH_URL every case is skipped, saying so: `make test` has no OpenSearch to run.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.unit.test_search_engine import *  # noqa: F403 (the cases; `engine` and `reopen` are replaced below)

URL = os.environ.get("TEST_OPENSEARCH_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="TEST_OPENSEARCH_URL is not set: no OpenSearch to hold the engine's contract against"
)


@pytest.fixture
def engine():
    from services.search.opensearch import OpenSearchHome, connect

    home = OpenSearchHome(connect(URL), f"test-{uuid.uuid4().hex[:8]}")
    name = home.new_generation()
    yield home.open(name)
    home.client.indices.delete(index=name)


@pytest.fixture
def reopen():
    from services.search.opensearch import OpenSearchEngine

    return lambda engine: OpenSearchEngine(engine.client, engine.path)
