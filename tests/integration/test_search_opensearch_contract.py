"""The embedded engine's cases, every one, and search's handler cases against a real OpenSearch.

    TEST_OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/pytest tests/integration/test_search_opensearch_contract.py

tests/unit/test_search_engine.py's cases: each test gets an index of its own (a generation of OpenSearchHome
under a namespace of its own), deleted after. tests/integration/test_search_handlers.py's (events to documents
to the index, the worker's commit rounds, a rebuild moving the alias, the api's rights): on the session's
namespace, as there; its indices are deleted after this module. Two of those are about the embedded index's
directory (a lost volume, a removed generation) and stay there; the index of an earlier schema is made here with
the mappings before the joined copies (`made_before_the_copies`). Without
TEST_OPENSEARCH_URL every case is skipped, saying so: `make test` has no OpenSearch to run.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from shared.config import load_settings
from tests.integration.test_search_handlers import *  # noqa: F403 (the handler cases and their `search` fixture)
from tests.unit.test_search_engine import *  # noqa: F403 (the engine cases; `engine`, `reopen` replaced below)

URL = os.environ.get("TEST_OPENSEARCH_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="TEST_OPENSEARCH_URL is not set: no OpenSearch to hold the engine's contract against"
)
# about the embedded index's directory (a lost volume, a `current` symlink to a removed generation)
del test_a_worker_that_starts_on_an_empty_index_indexes_every_stored_document  # noqa: F821
del test_a_reader_never_creates_an_index_where_none_is  # noqa: F821


def connected():
    from services.search.opensearch import connect

    return connect(URL)


@pytest.fixture
def engine():
    from services.search.opensearch import OpenSearchHome

    home = OpenSearchHome(connected(), f"test-{uuid.uuid4().hex[:8]}")
    name = home.new_generation()
    yield home.open(name)
    home.client.indices.delete(index=name)


@pytest.fixture
def reopen():
    from services.search.opensearch import OpenSearchEngine

    return lambda engine: OpenSearchEngine(engine.client, engine.path)


@pytest.fixture(scope="module")
def namespaces():
    """The handler cases' namespaces: their indices (`<namespace>-search-*`) are deleted after the module."""
    used: set[str] = set()
    yield used
    client = connected()
    for namespace in used:
        for name in client.indices.get(index=f"{namespace}-search-*"):
            client.indices.delete(index=name)


@pytest.fixture
def settings(infra, namespaces):
    settings = dataclasses.replace(load_settings(), search_engine="opensearch", opensearch_url=URL)
    namespaces.add(settings.namespace)
    return settings


@pytest.fixture
def made_before_the_copies():
    """An index of the mappings before the joined copies (no `.joined` multi-fields), holding the documents."""
    from services.search.opensearch import MAPPINGS, SETTINGS, OpenSearchEngine

    fields = MAPPINGS["properties"].items()
    before = {
        **MAPPINGS,
        "properties": {name: {k: v for k, v in spec.items() if k != "fields"} for name, spec in fields},
    }

    def made(home, docs: list[dict]) -> str:
        name = f"{home.alias}-19990101t000000-{uuid.uuid4().hex[:6]}"
        home.client.indices.create(index=name, body={"settings": SETTINGS, "mappings": before})
        engine = OpenSearchEngine(home.client, name)
        for doc in docs:
            engine.upsert(doc)
        engine.commit()
        return name

    return made
