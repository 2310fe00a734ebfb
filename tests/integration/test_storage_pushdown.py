"""Lists answered through an index keep MongoDB's semantics, and every list the services serve is an index path.

Issue 16: FerretDB's SQLite backend answers a find whose filter has equalities (and a range) on an index's leading
keys, and whose sort is that index's following keys, by walking the index in SQL (scripts/ferretdb.patch). A walk
that is fast but wrong is worse than a scan, so:

- the oracle tests give the same documents and queries to the session's FerretDB (with indexes) and to a second
  FerretDB of the same binary that filters and sorts in memory (upstream's MongoDB semantics) and want the same
  documents in the same order. The documents hold, in a minority, what a naive pushdown gets wrong: arrays (equal
  to a value when an element is), null and missing, 1 and 1.0 and Int64, dates and numbers of the same
  milliseconds, ObjectIds and their hex strings, booleans and 1/0, nested documents, mixed types in sorted fields;
- the index-path tests call each store's real list method, capture the finds it sends and ask the session's
  FerretDB to explain them: SQLite must search an index (not scan the table) and the sort must be pushed down.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson
import pytest
from bson import Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import ASCENDING, DESCENDING, MongoClient, monitoring
from pymongo.errors import OperationFailure

from shared.access import ListScope, TicketAccess
from shared.cursors import Paginator
from ticketflow import local

MISSING = object()  # a field the document does not have
EPOCH = datetime(1970, 1, 1)
DATES = [
    datetime(1965, 3, 1, 12, 0),  # negative milliseconds
    datetime(2020, 1, 1),
    datetime(2024, 6, 1),
    datetime(2024, 6, 1, 0, 0, 0, 1000),
    datetime(2025, 2, 3, 4, 5, 6, 7000),
    datetime(2030, 12, 31),
]
OIDS = [
    ObjectId("65a000000000000000000001"),
    ObjectId("65a000000000000000000002"),
    ObjectId("65a000000000000000000003"),
]


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


# Each field's common values, then the awkward ones a minority of documents hold instead.
COMMON = {
    "team": ["red", "blue", "green"],
    "status": ["new", "open", "done"],
    "at": DATES,
    "n": list(range(10)),
    "email": ["a@x.org", "b@x.org", "c@x.org"],
    "ref": OIDS,
    "flag": [True, False],
}
AWKWARD = {
    "team": [["red", "blue"], ["green"], [], ["red", None], None, MISSING, 7, OIDS[0], {"name": "red"}, "", "Red"],
    "status": [["open"], ["new", "done"], None, MISSING, 1, True, "open ", {"s": "open"}],
    "at": [_ms(DATES[2]), float(_ms(DATES[1])), None, MISSING, [DATES[0], DATES[5]], [DATES[2]], [], "2024-06-01", 0],
    "n": [  # equal to common ones in another type, near 2**53 (where doubles lose integers), of other types
        2.0,
        Int64(3),
        3.5,
        -0.0,
        True,
        False,
        "2",
        DATES[2],
        None,
        MISSING,
        [1, 8],
        [],
        [5.0],
        Int64(2**53 + 1),
        float(2**53),
        -7,
        1e300,
    ],
    "email": [None, MISSING, ["a@x.org", "z@x.org"], "A@X.ORG", 5, {"v": "a@x.org"}],
    "ref": [str(OIDS[0]), None, MISSING, [OIDS[1]], OIDS[0].binary, 3],
    "flag": [1, 0, None, MISSING, [True], "true", 1.0],
}
# The collection's indexes on the side under test: compound, descending keys, a dotted key, a unique one.
INDEXES = [
    ([("team", ASCENDING), ("status", ASCENDING), ("at", DESCENDING)], False),
    ([("status", ASCENDING), ("n", DESCENDING), ("at", ASCENDING), ("_id", ASCENDING)], False),
    ([("requester.email", ASCENDING), ("n", DESCENDING)], False),
    ([("number", DESCENDING)], True),
    ([("ref", ASCENDING), ("at", ASCENDING)], False),
    ([("flag", ASCENDING), ("n", ASCENDING), ("_id", DESCENDING)], False),
    ([("at", DESCENDING), ("_id", DESCENDING)], False),  # a date first: the patch's date ranges apply too
    ([("requester.email", ASCENDING), ("n", DESCENDING), ("at", ASCENDING), ("_id", ASCENDING)], False),
]
FIELD_POOL = {"requester.email": "email"}  # a dotted key's values come from this pool
RANGED = {
    "at": DATES + [datetime(1900, 1, 1), datetime(2100, 1, 1)],
    "n": [0, 2, 2.5, 3, Int64(5), 9, 2**53],
    "number": [100, 150.5, Int64(200), 1000],
}
EXTRA_CONDITIONS = [
    {"extra": {"$in": [1, 2, 3]}},
    {"extra": {"$gte": 4}},
    {"note": {"$exists": True}},
    {"extra": {"$ne": 0}, "note": {"$ne": "skip"}},
]


def _orderable(value: object) -> bool:
    return not isinstance(value, list | dict | bytes)


def _value(rng: random.Random, field: str, plain: bool) -> object:
    pool = AWKWARD[field] if rng.random() < 0.15 else COMMON[field]
    return rng.choice([v for v in pool if _orderable(v)] if plain else pool)


def _documents(plain: bool) -> list[dict]:
    """About 220 documents: most of ordinary values, some awkward in each field, each awkward value at least once.

    Plain: without the values an index key cannot order (arrays, documents, binary data), so that the indexes
    narrow every query (one such value in a key stops the pushdown at that key, for any query)."""
    rng = random.Random(16)
    docs = []
    for i in range(160):
        doc: dict = {"_id": f"d{i:03}", **{field: _value(rng, field, plain) for field in COMMON if field != "email"}}
        doc["requester"] = {"email": _value(rng, "email", plain), "name": f"R{i % 4}"}
        doc["extra"], doc["number"] = i % 7, [i + 100, Int64(i + 100), i + 100.5][i % 3]
        if i % 3:
            doc["note"] = rng.choice(["a", "b", "skip"])
        docs.append(doc)
    for field, values in AWKWARD.items():
        for j, value in enumerate(v for v in values if not plain or _orderable(v)):
            doc = {"_id": f"w{field}{j:02}", **{f: rng.choice(COMMON[f]) for f in COMMON if f != "email"}}
            doc["requester"] = {"email": value if field == "email" else rng.choice(COMMON["email"])}
            doc["extra"], doc["number"] = j % 7, 1000 + len(docs)
            if field != "email":
                doc[field] = value
            docs.append(doc)
    for doc in docs[::37] if not plain else []:  # requester itself an array of documents
        doc["requester"] = [{"email": "a@x.org"}, {"email": "b@x.org", "name": "B"}]
    docs[5]["requester"] = "a@x.org"
    del docs[6]["requester"], docs[7]["number"]  # one document without a number: the index is unique
    return [_strip_missing(doc) for doc in docs]


def _strip_missing(doc: dict) -> dict:
    return {k: (_strip_missing(v) if isinstance(v, dict) else v) for k, v in doc.items() if v is not MISSING}


def _reference_command(data_dir: Path, port: int) -> list[str]:
    """The session's FerretDB command with pushdown disabled (the nested pushdown flag would refuse to start)."""
    command = [arg for arg in local.ferretdb_command(data_dir, port) if arg != "--test-enable-nested-pushdown"]
    return [*command, "--test-disable-pushdown"]


def _is_ferretdb(client: MongoClient) -> bool:
    return "ferretdbVersion" in client.admin.command("buildInfo")


@pytest.fixture(scope="module")
def session_client(infra) -> Iterator[MongoClient]:
    client = MongoClient(infra.mongo_url, tz_aware=False)
    if not _is_ferretdb(client):
        client.close()
        pytest.skip("the pushdown is FerretDB's: the session's store is a MongoDB")
    yield client
    client.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Iterator[MongoClient]:
    """A FerretDB of the same binary that filters and sorts every query in memory, as upstream does.

    It gets no secondary index: in v1.24.2 `--test-disable-pushdown` still hands the filter to the backend
    (only the sort stays in memory), and the backend pushes a filter down only through an index."""
    data_dir = tmp_path_factory.mktemp("ferretdb-reference")
    port = local.free_port()
    with open(data_dir / "ferretdb.log", "ab") as log:
        proc = subprocess.Popen(
            _reference_command(data_dir, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        if not local.wait_for_port("127.0.0.1", port, timeout=30):
            pytest.fail(f"the reference FerretDB did not start:\n{local.log_tail(data_dir / 'ferretdb.log')}")
        client = MongoClient(f"mongodb://127.0.0.1:{port}")
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module", params=["mixed", "plain"])
def pair(request, infra, session_client, reference):
    """(collection under test, reference collection) holding the same documents: with every awkward value, or
    only those an index key orders (see _documents)."""
    docs = _documents(plain=request.param == "plain")
    name = f"{infra.namespace}_pushdown_{request.param}"
    tested, expected = session_client[name].things, reference[name].things
    for keys, unique in INDEXES:  # first: the index entries are written as the documents are
        tested.create_index(keys, unique=unique)
    tested.insert_many(docs[: len(docs) // 2])
    tested.insert_many(docs[len(docs) // 2 :])
    expected.insert_many(docs)
    yield tested, expected
    session_client.drop_database(name)


def _outcome(collection, query: dict) -> tuple[str, object]:
    """The documents (as BSON: types and field order count) or the error code of a find."""
    cursor = collection.find(query["filter"]).sort(query["sort"])
    if query["limit"]:
        cursor = cursor.limit(query["limit"])
    try:
        return "docs", [bson.encode(doc) for doc in cursor]
    except OperationFailure as exc:
        return "error", exc.code


def _ids(outcome: tuple[str, object]) -> object:
    kind, value = outcome
    return [bson.decode(doc)["_id"] for doc in value] if kind == "docs" else f"error {value}"


def _mismatch(pair, query: dict) -> str | None:
    """None when both stores answer the query alike; else what each answered."""
    tested, reference = pair
    explain = {"find": reference.name, "filter": query["filter"], "sort": dict(query["sort"])}
    plan = reference.database.command("explain", explain)
    assert not plan["filterPushdown"] and not plan["sortPushdown"], f"the reference pushed down {query}: {plan}"
    got, want = _outcome(tested, query), _outcome(reference, query)
    if got == want:
        return None
    if _ids(got) == _ids(want):  # same documents in the same order, but their values differ
        return f"query: {query}\n  the same ids, other values (types or field order): {_ids(got)}"
    return f"query: {query}\n  indexed store: {_ids(got)}\n  reference:     {_ids(want)}"


def _field_value(doc: dict, path: str) -> object:
    value: object = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _after(sort: list[tuple[str, int]], doc: dict) -> dict:
    """shared/cursors.py's keyset clauses for what follows `doc` (there all keys share a direction; here not)."""
    values = [_field_value(doc, field) for field, _ in sort]
    return {
        "$or": [
            {
                **dict(zip([f for f, _ in sort[:i]], values, strict=False)),
                field: {"$gt" if d == 1 else "$lt": values[i]},
            }
            for i, (field, d) in enumerate(sort)
        ]
    }


def _query(index: int, values: list, bound: tuple | None, directions: str, limit: int | None, extra: dict) -> dict:
    """Equality on the index's first len(values) keys, an optional range on the next, a sort on the keys after it
    (in the index's directions, all reversed, or alternating), ending with _id so that the order is total."""
    keys = INDEXES[index][0]
    filters: dict = {field: value for (field, _), value in zip(keys, values, strict=False)}
    rest = keys[len(values) :]
    if bound is not None and rest[0][0] in RANGED:
        filters[rest[0][0]] = dict([bound])
    turn = {"index": lambda i: 1, "reverse": lambda i: -1, "alternate": lambda i: (1, -1)[i % 2]}[directions]
    sort = [(field, direction * turn(i)) for i, (field, direction) in enumerate(rest)]
    if sort[-1][0] != "_id":
        sort.append(("_id", sort[-1][1]))
    return {"filter": filters | extra, "sort": sort, "limit": limit}


def _pool(field: str) -> list:
    name = FIELD_POOL.get(field, field)
    return [v for v in COMMON.get(name, []) + AWKWARD.get(name, []) if v is not MISSING]


def _table() -> list[dict]:
    """Every index, every number of leading equalities, every value of the first key; directions and limits rotate."""
    cases = []
    for index, (keys, _) in enumerate(INDEXES):
        for equal in range(len(keys)):
            firsts = _pool(keys[0][0]) if equal else [None]
            for value in firsts:
                values = [value, *(_pool(field)[0] for field, _ in keys[1:equal])][:equal]
                directions, limit = [("index", 5), ("reverse", 50), ("alternate", None), ("index", 1)][len(cases) % 4]
                cases.append(_query(index, values, None, directions, limit, {}))
    return cases


def _in(values: list) -> dict:
    return {"$in": values}


# `$in` on an index's keys (one value, several of one type, types mixed, null and arrays among them), a
# top-level `$or` whose branches each have an index (and some whose branch has none), sorts no index serves
# (SQLite sorts them: fields of no index, dotted ones, mixed directions), all beside ordinary conditions.
OTHER_CASES = [
    *(
        {"filter": f, "sort": s, "limit": limit}
        for f in [
            {"team": _in(["red"])},
            {"team": _in(["red", "blue"])},
            {"team": _in(["red", "blue", "Red", ""]), "status": "open"},
            {"team": _in(["red", 7])},
            {"team": _in(["red", None])},
            {"team": _in([["red", "blue"], "green"])},
            {"team": _in(["green"]), "status": _in(["open", "done"])},
            {"status": _in(["new", "open"]), "n": {"$gte": 2}},
            {"status": _in(["new", "open"]), "n": _in([2, 3.0, Int64(5)])},
            {"requester.email": _in(["a@x.org", "b@x.org"])},
            {"ref": _in(OIDS[:2])},
            {"ref": _in([OIDS[0], str(OIDS[0])])},
            {"flag": _in([True])},
            {"flag": _in([True, False]), "n": 3},
            {"at": _in(DATES[1:3])},
            {"number": _in([100, 150, Int64(201), 1000.0])},
            {"$or": [{"team": "red"}, {"flag": True}]},
            {"$or": [{"team": _in(["red", "blue"])}, {"requester.email": "a@x.org"}]},
            {"$or": [{"status": "new", "n": {"$lt": 3}}, {"ref": OIDS[1]}], "extra": {"$ne": 2}},
            {"$or": [{"team": None}, {"flag": False}]},
            {"$or": [{"team": "red"}, {"note": "a"}]},  # a branch of no index
            {"$or": [{"team": "red"}, {"number": {"$gte": 120}}]},
            {"$or": [{"ref": OIDS[0]}, {"at": {"$gt": DATES[3]}}]},
            {},
        ]
        for s, limit in [
            ([("_id", 1)], None),
            ([("n", -1), ("_id", 1)], 5),
            ([("extra", 1), ("note", -1), ("_id", -1)], 50),
            ([("requester.email", 1), ("at", -1), ("_id", 1)], 7),
            ([("team", -1), ("_id", -1)], 1),
            ([("status", 1), ("flag", -1), ("_id", 1)], None),
        ]
    ),
]


# Walks merged in the sort's order: `$or` branches and `$in` values that each narrow through an index whose next
# keys are the sort (status's and requester.email's indexes both go on with n -1, at, _id), also as a next page.
MERGED_SORT = [("n", -1), ("at", 1), ("_id", 1)]
MERGE_CASES = [
    {"filter": f, "sort": MERGED_SORT, "limit": limit}
    for f in [
        {"$or": [{"status": "open"}, {"requester.email": "a@x.org"}]},
        {"status": _in(["new", "open"])},
        {"status": _in(["new", "open", "done", "open "])},
        {"$or": [{"status": _in(["new", "done"])}, {"requester.email": "b@x.org"}], "flag": True},
        {"$or": [{"status": "open"}, {"requester.email": _in(["a@x.org", "c@x.org"])}], "extra": {"$ne": 3}},
        {"$and": [{"$or": [{"status": "new"}, {"requester.email": "a@x.org"}]}, {"n": {"$lte": 5}}]},
        {
            "$and": [
                {"$or": [{"status": "new"}, {"requester.email": "c@x.org"}]},
                {"n": {"$lte": 6}, "$or": [{"n": {"$lt": 6}}, {"n": 6, "at": {"$gt": DATES[2]}}]},
            ]
        },
    ]
    for limit in (None, 1, 5)
]
OTHER_CASES += MERGE_CASES

# Of OTHER_CASES' filters, those no index narrows: a `$in` with null, an array or two types, a branch of no index.
NOT_NARROWED = [
    {"team": _in(["red", 7])},
    {"ref": _in([OIDS[0], str(OIDS[0])])},
    {"team": _in(["red", None])},
    {"team": _in([["red", "blue"], "green"])},
    {"$or": [{"team": "red"}, {"note": "a"}]},
    {},
]


def test_in_or_and_unindexed_sorts_match_the_in_memory_reference(pair):
    """`$in` and `$or` narrowed through indexes and sorts made by SQLite give what the reference gives (and are
    pushed down: the filter where an index narrows it, every sort)."""
    tested = pair[0]
    for query in OTHER_CASES if tested.database.name.endswith("plain") else []:
        explain = {"find": tested.name, "filter": query["filter"], "sort": dict(query["sort"])}
        plan = tested.database.command("explain", explain)
        assert plan["sortPushdown"], f"sorted in memory: {query}"
        assert plan["filterPushdown"] == (query["filter"] not in NOT_NARROWED), f"pushed down or not: {query}: {plan}"
        if query in MERGE_CASES:
            steps = plan["queryPlanner"]["Plan"]
            assert any("MERGE (UNION)" in step for step in steps), f"not merged: {query}: {steps}"
            # each walk in the sort's order; SQLite orders a walk's documents of equal sort keys by the document
            # too (the UNION's duplicates must be next to each other): its LAST TERM, a group of one when the
            # sort ends with _id, so the walks still stream
            sorts = [step for step in steps if "TEMP B-TREE" in step]
            assert all("FOR LAST TERM OF ORDER BY" in step for step in sorts), f"SQLite sorts: {query}: {steps}"
    mismatches = [found for found in (_mismatch(pair, query) for query in OTHER_CASES) if found]
    assert not mismatches, f"{len(mismatches)} of {len(OTHER_CASES)} queries differ:\n" + "\n".join(mismatches[:10])


def test_indexed_finds_match_the_in_memory_reference(pair):
    """A table: each index's leading keys equal to each value (awkward ones too), sorted on the keys after them."""
    cases = _table()
    mismatches = [found for found in (_mismatch(pair, query) for query in cases) if found]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} queries differ:\n" + "\n".join(mismatches[:10])


@st.composite
def queries(draw) -> dict:
    index = draw(st.integers(0, len(INDEXES) - 1))
    keys = INDEXES[index][0]
    values = [draw(st.sampled_from(_pool(field))) for field, _ in keys[: draw(st.integers(0, len(keys) - 1))]]
    values = [
        draw(
            st.sampled_from(
                [v, {"$eq": v}, {"$in": [v]}, {"$in": [v, *draw(st.lists(st.sampled_from(_pool(f)), max_size=3))]}]
                if not isinstance(v, dict)
                else [v]
            )
        )
        for (f, _), v in zip(keys, values, strict=False)
    ]
    bound = draw(
        st.none()
        | st.tuples(
            st.sampled_from(["$lt", "$lte", "$gt", "$gte"]),
            st.sampled_from([v for values in RANGED.values() for v in values]),
        )
    )
    directions = draw(st.sampled_from(["index", "reverse", "alternate"]))
    extra = draw(st.sampled_from([{}, {}, *EXTRA_CONDITIONS]))
    query = _query(index, values, bound, directions, draw(st.sampled_from([None, 1, 5, 50])), extra)
    query["after"] = draw(st.none() | st.integers(0, 250))  # the position of the cursor's document, if any
    return query


@settings(
    max_examples=80,
    deadline=None,
    database=None,  # no .hypothesis files; a failure prints the query
    derandomize=True,  # the same examples on every run: the suite's time and outcome do not vary
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(query=queries())
def test_indexed_pages_match_the_in_memory_reference(pair, query):
    """Leading equalities (or $eq), a range, extra conditions on fields of no index, limits, and the next page
    after a cursor taken from the whole result, as shared/cursors.py writes it."""
    position = query.pop("after")
    if position is not None:
        whole = list(pair[1].find(query["filter"]).sort(query["sort"]))
        if whole:
            after = _after(query["sort"], whole[position % len(whole)])
            filters = query["filter"]
            query["filter"] = {"$and": [filters, after]} if filters.keys() & after.keys() else filters | after
    mismatch = _mismatch(pair, query)
    assert mismatch is None, mismatch


# --- every list of the services is an index path ------------------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FindsSent(monitoring.CommandListener):
    """The find commands a client sends, as sent."""

    def __init__(self) -> None:
        self.finds: list[tuple[str, dict]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append((event.database_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _cursor(paginator: Paginator, **values: object) -> str:
    return paginator.cursor(values)


def _intake(db):
    from services.intake import store

    tickets, timeline = store.TicketStore(db), store.TimelineStore(db)
    mails, attachments = store.InboundMailStore(db), store.AttachmentStore(db, store.BlobStore(db))
    after_event = _cursor(store.OLDEST_EVENTS_FIRST, occurred_at=NOW, _id="e1")
    after_mail = _cursor(store.NEWEST_MAILS_FIRST, received_at=NOW, _id="m1")
    agent = ListScope(teams=("red", "blue"), agent_id="ag1")
    return [tickets, timeline, mails, attachments], {
        "intake tickets": lambda: tickets.page({}, 50, None),
        "intake tickets, next page": lambda: tickets.page({}, 50, _cursor(store.NEWEST_TICKETS_FIRST, number=100500)),
        "intake tickets by status": lambda: tickets.page({"status": "new"}, 50, None),
        "intake tickets by status, next page": lambda: tickets.page(
            {"status": "new"}, 50, _cursor(store.NEWEST_TICKETS_FIRST, number=100500)
        ),
        "intake tickets by requester": lambda: tickets.page({"requester.email": "a@x.org"}, 50, None),
        "intake tickets by topic": lambda: tickets.page({"topic": "billing"}, 50, None),
        "intake tickets an agent sees": lambda: tickets.page({}, 50, None, agent),
        "intake tickets an agent sees by status": lambda: tickets.page({"status": "new"}, 50, None, agent),
        "intake tickets a requester sees": lambda: tickets.page({}, 50, None, ListScope(requester_email="a@x.org")),
        "intake thread events": lambda: timeline.page("t1", 50, None),
        "intake thread events, next page": lambda: timeline.page("t1", 50, after_event),
        "intake thread events a requester sees": lambda: timeline.page("t1", 50, None, for_requester=True),
        "intake mail log": lambda: mails.page(None, 50, None),
        "intake mail log, next page": lambda: mails.page(None, 50, after_mail),
        "intake mail log by outcome": lambda: mails.page("created", 50, None),
        "intake mails of a ticket": lambda: mails.of_ticket("t1"),
        "intake attachments of a ticket": lambda: attachments.list("t1"),
    }


def _assignment(db):
    from services.assignment import store

    tickets = store.TicketStore(db)
    after = _cursor(store.QUEUE_ORDER, sla_sort=NOW, priority_rank=1, created_at=NOW, _id="t1")
    return [tickets], {
        "assignment queue": lambda: tickets.page({}, 50, None),
        "assignment queue, next page": lambda: tickets.page({}, 50, after),
        "assignment queue by team": lambda: tickets.page({"team": "red"}, 50, None),
        "assignment queue by team, next page": lambda: tickets.page({"team": "red"}, 50, after),
        "assignment queue by status": lambda: tickets.page({"status": "new"}, 50, None),
        "assignment queue by agent": lambda: tickets.page({"agent_id": "ag1"}, 50, None),
        "assignment queue unassigned": lambda: tickets.page({"unassigned": True}, 50, None),
        "assignment queue an agent sees": lambda: tickets.page({}, 50, None, {"id": "ag1", "teams": ["red"]}),
        "assignment queue an agent's own": lambda: tickets.page(
            {"agent_id": "ag1"}, 50, None, {"id": "ag1", "teams": ["red"]}
        ),
        "assignment team's waiting tickets": lambda: tickets.waiting("red"),
        "assignment an agent's open tickets with their teams": lambda: tickets.held_by("ag1"),
    }


def _sla(db):
    from services.sla import store

    breaches, access = store.BreachStore(db), TicketAccess(db)
    after = _cursor(store.NEWEST_BREACHES_FIRST, breached_at=NOW, _id="b1")
    return [breaches, access], {
        "sla tickets an agent sees": lambda: access.ids_visible_to("ag1", ["red", "blue"]),
        "sla breaches": lambda: breaches.page({}, None, 50, None),
        "sla breaches, next page": lambda: breaches.page({}, None, 50, after),
        "sla breaches since": lambda: breaches.page({}, NOW - timedelta(days=7), 50, None, until=NOW),
        "sla breaches by priority": lambda: breaches.page({"priority": "high"}, None, 50, None),
        "sla breaches an agent sees": lambda: breaches.page({}, None, 50, None, visible=_agent_sees()),
        "sla breaches an agent sees, next page": lambda: breaches.page({}, None, 50, after, visible=_agent_sees()),
        "sla breaches an agent sees since": lambda: breaches.page(
            {}, NOW - timedelta(days=7), 50, None, until=NOW, visible=_agent_sees()
        ),
        "sla breaches a reassignment stamps": lambda: list(breaches.collection.find(_restamped("t1"))),
        "sla breaches of tickets (before the backfill)": lambda: breaches.page({}, None, 50, None, among=["t1", "t2"]),
    }


def _agent_sees() -> dict:
    from shared.access import StampedRecords

    return StampedRecords.visible_to("ag1", ["red", "blue"])


def _restamped(ticket_id: str) -> dict:
    """What StampedRecords.restamp updates (an update_many: its filter is read as a find's)."""
    return {"ticket_id": ticket_id, "$or": [{"access_at": {"$lt": NOW}}, {"access_at": None}]}


def _notify(db):
    from services.notify import store

    notifications, views = store.NotificationStore(db), store.TicketViews(db)
    after = _cursor(store.NEWEST_NOTIFICATIONS_FIRST, created_at=NOW, _id="n1")
    return [notifications, views], {
        "notify tickets an agent sees": lambda: views.ids_visible_to("ag1", ["red", "blue"]),
        "notify notifications": lambda: notifications.page({}, 50, None),
        "notify notifications, next page": lambda: notifications.page({}, 50, after),
        "notify notifications by ticket": lambda: notifications.page({"ticket_id": "t1"}, 50, None),
        "notify notifications by ticket, next page": lambda: notifications.page({"ticket_id": "t1"}, 50, after),
        "notify notifications an agent sees": lambda: notifications.page({}, 50, None, visible=_agent_sees()),
        "notify notifications an agent sees, next page": lambda: notifications.page(
            {}, 50, after, visible=_agent_sees()
        ),
        "notify notifications a reassignment stamps": lambda: list(notifications.collection.find(_restamped("t1"))),
        "notify notifications of tickets (before the backfill)": lambda: notifications.page(
            {}, 50, None, among=["t1", "t2"]
        ),
    }


def _portal(db):
    from services.portal import store

    portal = store.PortalStore(db)
    return [portal], {
        "portal accounts": lambda: portal.list_accounts(),
        "portal who has a ticket open": lambda: portal.present("t1", NOW - timedelta(minutes=1)),
    }


# Lists whose one index narrows the most: never walks of its teams filtered by agent.
ONE_WALK_LISTS = {"assignment queue an agent's own"}
# Lists of "my teams' or mine", each team and the agent's own a walk in the list's order, merged.
MERGED_LISTS = {
    "intake tickets an agent sees",
    "assignment queue an agent sees",
    "sla breaches an agent sees",
    "sla breaches an agent sees, next page",
    "sla breaches an agent sees since",
    "notify notifications an agent sees",
    "notify notifications an agent sees, next page",
}
SERVICES = {"intake": _intake, "assignment": _assignment, "sla": _sla, "notify": _notify, "portal": _portal}
# (service, list): the names only, from stores built on no database (each collection None) and never called
LISTS = [(service, name) for service, lists in SERVICES.items() for name in lists(defaultdict(type(None)))[1]]


@pytest.fixture(scope="module")
def service_dbs(infra, session_client) -> Iterator[tuple[MongoClient, FindsSent]]:
    """A client that records its finds, and a database per service whose stores created their indexes."""
    sent = FindsSent()
    client = MongoClient(infra.mongo_url, tz_aware=True, event_listeners=[sent])
    for service, lists in SERVICES.items():
        for each in lists(client[f"{infra.namespace}_paths_{service}"])[0]:
            each.ensure_indexes()
    yield client, sent
    for service in SERVICES:
        client.drop_database(f"{infra.namespace}_paths_{service}")
    client.close()


def _explain(client: MongoClient, database: str, find: dict) -> dict:
    command = {key: find[key] for key in ("find", "filter", "sort", "projection", "limit", "skip") if key in find}
    return client[database].command("explain", command)


@pytest.mark.parametrize(
    ("service", "name"),
    [pytest.param(service, name, id=name) for service, name in LISTS],
)
def test_each_list_walks_an_index(infra, service_dbs, service, name):
    """SQLite searches an index, no table scan, and the order is the index's (no sort in memory nor in SQLite)."""
    client, sent = service_dbs
    sent.finds.clear()
    SERVICES[service](client[f"{infra.namespace}_paths_{service}"])[1][name]()
    assert sent.finds, f"{name}: no find sent"
    for database, find in sent.finds:
        explained = _explain(client, database, find)
        plan = explained["queryPlanner"]["Plan"]
        shown = f"{name}: {find.get('filter')} sorted {find.get('sort')}: {plan}"
        assert any("USING INDEX" in line or "USING COVERING INDEX" in line for line in plan), f"no index: {shown}"
        assert not any(re.search(r"detail=SCAN \S+$", line) for line in plan), f"a scan of the table: {shown}"
        if find.get("sort"):
            assert explained["sortPushdown"], f"sorted in memory: {shown}"
            sorts = [line for line in plan if "TEMP B-TREE" in line]
            merged = any("MERGE (UNION)" in line for line in plan)  # walks merged: see MERGE_CASES
            assert all(merged and "FOR LAST TERM OF ORDER BY" in line for line in sorts), f"SQLite sorts: {shown}"
        if name in MERGED_LISTS:
            assert any("MERGE (UNION)" in line for line in plan), f"not merged: {shown}"
        if name in ONE_WALK_LISTS:
            assert not any("MERGE (UNION)" in line for line in plan), f"merged: {shown}"
