"""search's handlers on the real store and a real index: events late, repeated or out of order, restarts, reindex.

Events are handled in-process as the worker's consumer would hand them over; the index lives in the test's
temporary directory, so each test starts with none.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.search import api, handlers
from services.search.index import IndexHome, Writer, rebuild
from shared import mongo
from shared.auth import Principal
from shared.config import load_settings
from shared.runtime import bind
from tests.harness import auth_header
from tests.integration.conftest import event_from, ticket_request
from tests.unit.test_search_queries import index_made_before_the_copies

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
ADMIN = Principal("admin", "admin")
AUTHOR = {"type": "requester", "name": "Ana", "email": "ana@example.com"}


@pytest.fixture
def settings(infra, tmp_path):
    return dataclasses.replace(load_settings(), search_index_dir=str(tmp_path / "index"))


@pytest.fixture
def search(settings):
    mongo.close_client()
    svc = handlers.bootstrap(settings)
    svc.ensure_storage()
    svc.open_writer()
    yield svc
    svc.writer.close()
    mongo.close_client()


def handle(svc, kind: str, ticket_id: str, minutes: float, **data) -> dict:
    producer = (
        "intake"
        if kind in ("ticket.created", "ticket.message_added", "ticket.reopened", "ticket.closed")
        else "assignment"
    )
    envelope = event_from(producer, kind, ticket_id, data, occurred_at=T0 + timedelta(minutes=minutes))
    bind(handlers.HANDLERS, svc)[kind](envelope)
    return envelope


def create(svc, minutes: float = 0, **overrides) -> str:
    ticket_id = uuid.uuid4().hex
    data = {
        "number": 500_000 + uuid.uuid4().int % 400_000,
        "subject": "Mail bounces",
        "description": "Every message to the sales team bounces.",
        "requester": {"name": "Ana", "email": "ana@example.com"},
        "topic": "email",
        "priority": "normal",
        "source": "email",
    } | overrides
    handle(svc, "ticket.created", ticket_id, minutes, **data)
    return ticket_id


def find(svc, q: str, principal: Principal = ADMIN) -> list[str]:
    svc.writer.commit_round()
    result = handlers.search(svc, {"q": q, "limit": 50}, principal)
    return [item["ticket_id"] for item in result["items"]]


def test_a_repeated_message_is_indexed_once_and_found(search):
    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search)
    envelope = handle(search, "ticket.message_added", ticket, 1, message_id="m1", body=f"Still {word}.", author=AUTHOR)
    bind(handlers.HANDLERS, search)["ticket.message_added"](envelope)  # the same event delivered again
    handle(search, "ticket.replied", ticket, 2, reply_id="r1", agent_id="jane", agent_name="Jane", body="On it.",
           first_response=True)  # fmt: skip
    handle(search, "ticket.replied", ticket, 2, reply_id="r1", agent_id="jane", agent_name="Jane", body="On it.",
           first_response=True)  # fmt: skip
    assert [m["id"] for m in search.tickets.get(ticket).messages] == ["m1", "r1"]
    assert find(search, word) == [ticket]


def test_events_out_of_order_end_in_the_state_of_the_newest(search):
    ticket = uuid.uuid4().hex
    handle(search, "ticket.resolved", ticket, 5, agent_id="jane", resolution="Replaced the mail filter.")
    handle(search, "ticket.status_changed", ticket, 3, status="in_progress", previous_status="assigned")
    handle(search, "ticket.assigned", ticket, 1, agent_id="jane", agent_name="Jane", agent_email="jane@example.com",
           team="email", reason="auto", decision=None)  # fmt: skip
    assert find(search, "filter") == []  # no ticket.created yet: nothing to show
    create_data = {"subject": "Mail bounces", "description": "Sales mail bounces."}
    handle(search, "ticket.created", ticket, 0, number=777_001, requester={"name": "Ana", "email": "ana@example.com"},
           topic="email", priority="normal", source="email", **create_data)  # fmt: skip
    doc = search.tickets.get(ticket)
    assert (doc.status, doc.team, doc.agent_id, doc.resolution) == (
        "resolved",
        "email",
        "jane",
        "Replaced the mail filter.",
    )
    assert find(search, "filter") == [ticket]


def test_an_older_assignment_does_not_undo_a_transfer(search):
    ticket = create(search)
    moved = {"agent_id": "bo", "agent_name": "Bo", "agent_email": "bo@example.com", "team": "network"}
    handle(search, "ticket.assigned", ticket, 4, reason="transfer", decision=None, **moved)
    first = {"agent_id": "jane", "agent_name": "Jane", "agent_email": "jane@example.com", "team": "email"}
    handle(search, "ticket.assigned", ticket, 1, reason="auto", decision=None, **first)
    doc = search.tickets.get(ticket)
    assert (doc.team, doc.agent_id, doc.status) == ("network", "bo", "assigned")


def test_what_a_reopened_ticket_tried_is_still_found_by_its_words(search):
    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search)
    handle(search, "ticket.resolved", ticket, 5, agent_id="jane", resolution=f"Cleared the {word} rule.")
    handle(search, "ticket.reopened", ticket, 9, reason="requester replied")
    assert find(search, word) == [ticket]
    doc = search.tickets.get(ticket)  # as stored: a worker that starts again keeps it
    assert (doc.resolution, [m["body"] for m in doc.messages]) == (None, [f"Cleared the {word} rule."])


def test_a_closed_ticket_stays_closed_whatever_comes_late(search):
    ticket = create(search)
    handle(search, "ticket.closed", ticket, 10, by="requester")
    handle(search, "ticket.status_changed", ticket, 11, status="in_progress", previous_status="assigned")
    handle(search, "ticket.reopened", ticket, 12, reason="requester replied")
    assert search.tickets.get(ticket).status == "closed"


def test_a_worker_that_starts_on_an_empty_index_indexes_every_stored_document(search, settings):
    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search, description=f"The {word} fails.")
    assert find(search, word) == [ticket]
    search.writer.close()
    other = IndexHome(str(settings.search_index_dir) + "-lost")  # the index's volume was lost: a new one
    writer = Writer(other, search.tickets)
    writer.start()
    try:
        assert [h["ticket_id"] for h in writer.engine.search(word, scope=handlers.Scope(everything=True))[0]] == [
            ticket
        ]
    finally:
        writer.close()


def test_a_rebuild_switches_readers_and_the_worker_and_keeps_the_results(search):
    word = f"zq{uuid.uuid4().hex[:8]}"
    tickets = sorted(create(search, description=f"{word} number {n}") for n in range(3))
    assert sorted(find(search, word)) == tickets
    before = search.home.current()
    path, count = rebuild(search.home, search.tickets)
    assert path != before and search.home.current() == path and count >= 3
    assert sorted(find(search, word)) == tickets  # the reader reopened on the new generation
    assert search.writer.engine.path == path  # the worker followed it (in that commit round)
    late = create(search, description=f"{word} after the switch")
    assert sorted(find(search, word)) == sorted([*tickets, late])


def test_a_rebuild_that_fails_leaves_no_half_built_generation(search):
    create(search, description="before the failure")

    def generations() -> list[str]:  # the directory's (embedded), the cluster's indices (OpenSearch: the contract)
        home = search.home
        return sorted(
            os.listdir(home.root) if hasattr(home, "root") else home.client.indices.get(index=f"{home.alias}-*")
        )

    before = generations()

    class Failing:
        def indexable(self, since):
            raise RuntimeError("the store went away")

    for _ in range(3):  # as the worker tries again
        with pytest.raises(RuntimeError):
            rebuild(search.home, Failing())
    assert generations() == before  # no generation piles up


def test_a_rebuild_that_fails_half_way_lets_go_of_its_writer_before_its_generation_goes(search, monkeypatch):
    """Its writer's threads and lock file would otherwise write into the directory while it is removed."""
    create(search, description="indexed before the failure")
    opened = []
    real_open = search.home.open

    def open_and_keep(path, **options):
        opened.append(real_open(path, **options))
        return opened[-1]

    monkeypatch.setattr(search.home, "open", open_and_keep)

    class HalfWay:
        def indexable(self, since):
            yield from search.tickets.indexable(since)  # the writer has documents, then the store goes away
            raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        rebuild(search.home, HalfWay())
    [engine] = opened
    assert engine._writer is None  # closed: no thread or lock file of it is left
    assert not os.path.exists(engine.path)  # and its half-built generation gone


def test_a_word_hyphenated_in_one_ticket_and_joined_up_in_another_is_found_either_way(search):
    word = f"zq{uuid.uuid4().hex[:8]}"
    hyphenated = create(search, subject="Wi-Fi down", description=f"The Wi-Fi drops in {word}.")
    together = create(search, subject="No wifi", description=f"The wifi drops in {word}.")
    handle(search, "ticket.message_added", together, 1, message_id="m1", body="My e-mail bounces.", author=AUTHOR)
    both = sorted([hyphenated, together])
    for q in (f"{word} wifi", f"{word} Wi-Fi", f"{word} WIFI", f'{word} "wifi drops"', f'{word} "wi-fi drops"'):
        assert sorted(find(search, q)) == both, q
    assert find(search, f"{word} email") == [together] and find(search, f"{word} e-mail") == [together]
    found = handlers.search(search, {"q": f"{word} wifi", "limit": 5}, ADMIN)
    assert found["total"] == 2
    assert {item["ticket_id"]: item["snippet"] for item in found["items"]} == {
        hyphenated: f"The <mark>Wi-Fi</mark> drops in <mark>{word}</mark>.",
        together: f"The <mark>wifi</mark> drops in <mark>{word}</mark>.",
    }
    assert find(search, f"{word} wifi", Principal("agent", "nobody", agent_id=f"nobody-{word}")) == []


@pytest.fixture
def made_before_the_copies():
    """(home, documents) -> a generation of the schema before the joined copies, holding them (the OpenSearch
    contract tests give one of the mappings before them)."""

    def made(home, docs: list[dict]) -> str:
        path = home.new_generation()
        index_made_before_the_copies(path, *docs)
        return path

    return made


def kept(home, generation: str) -> bool:
    """Whether the generation is still there: a directory here, an index in OpenSearch (the contract tests)."""
    return os.path.isdir(generation) if hasattr(home, "root") else home.client.indices.exists(index=generation)


def test_a_worker_rebuilds_an_index_made_before_the_joined_copies_which_the_api_reads_meanwhile(
    search, made_before_the_copies
):
    """The index an upgrade finds (its schema has no joined copies): the apis read it as it is, and the worker,
    starting, builds a generation with them from the stored documents and moves to it, keeping the old one."""
    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search, subject="Wi-Fi down", description=f"The Wi-Fi drops in {word}.")
    search.writer.commit_round()
    search.writer.close()
    home = search.home
    old = made_before_the_copies(home, [doc.document() for doc in search.tickets.indexable(None)])
    home.switch(old)

    def found(q: str) -> list[str]:
        return [item["ticket_id"] for item in handlers.search(search, {"q": q, "limit": 50}, ADMIN)["items"]]

    assert home.outdated(old)
    assert found(f"{word} wi-fi") == [ticket] and found(f"{word} wifi") == []  # as before the copies
    writer = Writer(home, search.tickets)
    writer.start()
    search.writer = writer  # the fixture closes it
    new = home.current()
    assert new != old and writer.engine.path == new and not home.outdated(new)
    assert kept(home, old)  # the previous generation is kept, as a reindex keeps it
    assert found(f"{word} wifi") == [ticket]  # the api moved to the new generation
    late = create(search, subject="wifi slow", description=f"Slow in {word}.")
    assert sorted(find(search, f"{word} wi-fi")) == sorted([ticket, late])
    writer.close()
    restarted = Writer(home, search.tickets)
    restarted.start()  # a generation of this schema: opened as it is, not rebuilt again
    search.writer = restarted
    assert home.current() == new and restarted.engine.path == new


def test_the_api_finds_with_the_askers_rights(search, settings):
    word = f"zq{uuid.uuid4().hex[:8]}"
    ticket = create(search, description=f"The {word} fails.", requester={"name": "Bo", "email": "bo@example.com"})
    search.writer.commit_round()
    app = api.create_app(settings)
    try:
        client = app.test_client()
        found = client.get(f"/search?q={word}", headers=auth_header("admin")).get_json()
        assert [i["ticket_id"] for i in found["items"]] == [ticket] and found["total"] == 1
        mine = client.get(f"/search?q={word}", headers=auth_header("portal", requester_email="bo@example.com"))
        assert [i["ticket_id"] for i in mine.get_json()["items"]] == [ticket]
        theirs = client.get(f"/search?q={word}", headers=auth_header("portal", requester_email="cy@example.com"))
        assert theirs.get_json() == {"items": [], "next_cursor": None, "total": 0}
        similar = client.get(
            f"/tickets/{ticket}/similar", headers=auth_header("portal", requester_email="cy@example.com")
        )
        assert similar.status_code == 404 and similar.content_type == "application/problem+json"
        stranger = client.get(f"/search?q={word}", headers=auth_header("agent", agent_id=f"nobody-{word}"))
        assert stranger.get_json()["total"] == 0
        bad = client.get("/search?q=x&cursor=not-a-cursor", headers=auth_header("admin"))
        assert bad.status_code == 422 and bad.content_type == "application/problem+json"
        assert client.get("/search?limit=0", headers=auth_header("admin")).status_code == 422
        assert client.get("/search?status=lost", headers=auth_header("admin")).status_code == 422
        assert client.get("/search?q=x").status_code == 401
    finally:
        app.extensions["ticketflow.readyz"].close()


def test_pages_follow_the_cursor_to_the_end(search, settings):
    word = f"zq{uuid.uuid4().hex[:8]}"
    tickets = {create(search, description=f"{word} {n}") for n in range(5)}
    search.writer.commit_round()
    seen, cursor = [], None
    while True:
        page = handlers.search(search, {"q": word, "limit": 2, "cursor": cursor}, ADMIN)
        seen += [item["ticket_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(tickets)


def test_a_reader_never_creates_an_index_where_none_is(search):
    before = search.reader.engine()
    missing = os.path.join(search.home.root, "gen-gone")
    search.home.switch(missing)  # `current` names a generation that was removed meanwhile
    try:
        assert search.reader.engine() is before  # it keeps reading the one it has
    finally:
        search.home.switch(search.writer.engine.path)
    assert not os.path.exists(missing)


def test_a_new_ticket_is_inserted_without_a_read_and_a_late_created_learns_into_what_is_there(search, monkeypatch):
    reads = []
    real = search.tickets.find
    monkeypatch.setattr(search.tickets, "find", lambda ticket_id: reads.append(ticket_id) or real(ticket_id))
    ticket_id = create(search, subject="Scanner jams on every page")
    assert reads == []  # the first news of a ticket: inserted at once
    assert find(search, "scanner") == [ticket_id]

    late = uuid.uuid4().hex  # its assignment came first: the created event finds the document and learns into it
    handle(search, "ticket.assigned", late, 2, agent_id="jane", agent_name="Jane", agent_email="jane@example.com",
           team="network", team_lead_email=None, previous_agent_id=None, reason="auto", decision=None)  # fmt: skip
    ana = {"name": "Ana", "email": "ana@example.com"}
    handle(search, "ticket.created", late, 1, number=900_001, subject="Plotter offline", description="The plotter.",
           requester=ana, topic="email", priority="normal", source="email")  # fmt: skip
    assert reads[-1] == late
    doc = real(late)
    assert (doc.team, doc.subject) == ("network", "Plotter offline")


def test_a_ticket_is_found_by_its_requesters_name_and_a_reindex_names_those_learnt_before(search):
    """A requester's name is learnt from ticket.created; the documents search stored before it learnt names get
    theirs from intake's API at a reindex (intake's list, a page at a time), and are found by it since."""
    from werkzeug.serving import make_server

    from services.intake.api import create_app
    from services.search.reindex import reindex

    intake_app = create_app()  # on search's MongoDB client (the intake_app fixture would close it)
    made = []
    for name in ("Ingrid Halvorsen", "Tomasz Wójcik"):
        response = intake_app.test_client().post(
            "/tickets", json=ticket_request(requester={"name": name, "email": f"{uuid.uuid4().hex[:8]}@example.com"}),
            headers=auth_header("portal"),
        )  # fmt: skip
        assert response.status_code == 201, response.get_json()
        made.append(response.get_json())
    for ticket in made:
        created = {key: ticket[key] for key in ("number", "subject", "description", "requester", "topic", "priority")}
        handle(search, "ticket.created", ticket["id"], 0, **created, source="web")
    ingrid, tomasz = (ticket["id"] for ticket in made)
    assert find(search, "Halvorsen") == [ingrid] and find(search, '"Tomasz Wojcik"') == [tomasz]

    search.tickets.collection.update_one({"_id": tomasz}, {"$unset": {"requester_name": ""}})  # learnt before
    assert search.tickets.nameless()
    handle(search, "ticket.status_changed", tomasz, 5, status="in_progress", previous_status="new")  # saved whole
    assert search.tickets.collection.find_one({"_id": tomasz})["requester_name"] is None and search.tickets.nameless()
    server = make_server("127.0.0.1", 0, intake_app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        done = reindex(search, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        serving.join(timeout=10)
        intake_app.extensions["ticketflow.intake"].flusher.drain()
        intake_app.extensions["ticketflow.readyz"].close()
    assert done["names_from_intake"] == 1 and done["imported_from_intake"] == 0 and not search.tickets.nameless()
    search.writer.close()
    search.open_writer()  # the worker, moved to the new generation
    assert find(search, "wojcik") == [tomasz] and find(search, "Ingrid") == [ingrid]


def test_a_reindex_import_fills_in_a_document_an_event_began_before_its_creation(search):
    """search new beside a desk: an agent's reply to an old ticket came in while the reindex took the tickets from
    intake; its document (no number: not indexable) made the import's insert skip the ticket, which was never found
    (a race hunter's find). The import fills it in, keeping what the event brought."""
    from services.search.domain import TicketDoc
    from services.search.reindex import _imported

    ticket_id, word = uuid.uuid4().hex, f"zq{uuid.uuid4().hex[:8]}"
    handle(search, "ticket.replied", ticket_id, 20, reply_id="r-late", agent_id="ada", agent_name="Ada",
           body="Reset the router, please.", first_response=False)  # fmt: skip
    assert search.tickets.get(ticket_id).number is None
    whole = TicketDoc(
        ticket_id, number=777_001, subject=f"Router {word} keeps dropping", description=f"Since {word} it drops.",
        requester_email="ana@example.com", requester_name="Ana", status="assigned", team="network",
        messages=[{"id": "m-1", "body": "Still dropping today.", "at": T0 + timedelta(minutes=10)}],
        created_at=T0, watermarks={"status": T0 + timedelta(minutes=15), "assignee": T0 + timedelta(minutes=15),
                                   "resolution": T0 + timedelta(minutes=15)},
    )  # fmt: skip

    assert _imported(search, whole)

    doc = search.tickets.get(ticket_id)
    assert (doc.number, doc.subject, doc.team) == (777_001, f"Router {word} keeps dropping", "network")
    assert [m["id"] for m in doc.messages] == ["m-1", "r-late"]  # the event's reply kept, in time order
    assert not _imported(search, whole)  # once
    search.writer.upsert(doc.document())
    assert find(search, word) == [ticket_id]
