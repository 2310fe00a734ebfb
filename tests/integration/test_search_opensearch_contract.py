"""The embedded engine's cases, every one, and search's handler cases against a real OpenSearch.

    TEST_OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/pytest tests/integration/test_search_opensearch_contract.py

tests/unit/test_search_engine.py's cases: each test gets an index of its own (a generation of OpenSearchHome
under a namespace of its own), deleted after. tests/integration/test_search_handlers.py's (events to documents
to the index, the worker's commit rounds, a rebuild moving the alias, the api's rights): on the session's
namespace, as there; its indices are deleted after this module. Three of those are about the embedded index's
directory (a lost volume, a removed generation, one of an earlier schema) and stay there. Without
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
# about the embedded index's directory (a lost volume, a `current` symlink to a removed generation, one of an
# earlier schema)
del test_a_worker_that_starts_on_an_empty_index_indexes_every_stored_document  # noqa: F821
del test_a_reader_never_creates_an_index_where_none_is  # noqa: F821
del test_a_worker_rebuilds_an_index_made_before_the_joined_copies_which_the_api_reads_meanwhile  # noqa: F821


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


def test_an_index_made_before_the_joined_copies_is_read_as_it_is_and_rebuilt(search):
    """OpenSearch's side of the embedded case deleted above: an index whose mapping has no `.joined` copies (as one
    made before them) answers as it did, and the worker, starting, builds one with them and moves the alias."""
    from services.search.index import Writer
    from services.search.opensearch import MAPPINGS, SETTINGS, OpenSearchEngine

    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search, subject="Wi-Fi down", description=f"The Wi-Fi drops in {word}.")  # noqa: F405
    search.writer.commit_round()
    search.writer.close()
    home = search.home
    fields = MAPPINGS["properties"].items()
    before = {
        **MAPPINGS,
        "properties": {name: {k: v for k, v in spec.items() if k != "fields"} for name, spec in fields},
    }
    old = f"{home.alias}-19990101t000000-{uuid.uuid4().hex[:6]}"
    home.client.indices.create(index=old, body={"settings": SETTINGS, "mappings": before})
    engine = OpenSearchEngine(home.client, old)
    for doc in search.tickets.indexable(None):
        engine.upsert(doc.document())
    engine.commit()
    home.switch(old)

    def found(q: str) -> list[str]:
        return [item["ticket_id"] for item in handlers.search(search, {"q": q, "limit": 50}, ADMIN)["items"]]  # noqa: F405

    assert home.outdated(old)
    assert found(f"{word} wi-fi") == [ticket] and found(f"{word} wifi") == []  # as before the copies
    writer = Writer(home, search.tickets)
    writer.start()
    search.writer = writer  # the fixture closes it
    new = home.current()
    assert new != old and writer.engine.path == new and not home.outdated(new)
    assert home.client.indices.exists(index=old)  # the previous index is kept, as a reindex keeps it
    assert found(f"{word} wifi") == [ticket]
