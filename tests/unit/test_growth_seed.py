"""The growth benchmark's copies (benchmarks/growth_seed.py): a copy must be another ticket with the same shape,
or the benchmark measures something the services never write (or breaks a unique index)."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from benchmarks.growth_seed import Copy, Rewrite, Source, plan_copies, requester_pool

TICKET = uuid.uuid4().hex
EVENT = str(uuid.uuid4())
CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def source(**overrides) -> Source:
    fields = dict(id=TICKET, number=100010, email="ana@example.com", name="Ana", created_at=CREATED,
                  status="closed", team="network", furthest_back=timedelta(days=180))  # fmt: skip
    return Source(**{**fields, **overrides})


def test_a_copy_gets_new_ids_everywhere_the_same_new_one_each_time():
    rewrite = Rewrite(Copy(source(), timedelta(days=3), "person0001@example.org", 80001))
    doc = {
        "_id": EVENT,
        "ticket_id": TICKET,
        "message_id": f"<{EVENT}+{TICKET}@ticketflow>",
        "thread": [{"id": EVENT, "author": {"name": "Ana", "email": "ana@example.com"}}],
        "agent_id": "network-agent0",
    }
    new = rewrite(doc)
    assert new["_id"] != EVENT and uuid.UUID(new["_id"]).version == 4  # same form: a canonical uuid stays one
    assert new["ticket_id"] != TICKET and len(new["ticket_id"]) == 32 and new["ticket_id"] == rewrite.ids[TICKET]
    assert new["message_id"] == f"<{new['_id']}+{new['ticket_id']}@ticketflow>"
    assert new["thread"][0]["id"] == new["_id"]
    assert new["thread"][0]["author"] == {"name": "Person0001", "email": "person0001@example.org"}
    assert new["agent_id"] == "network-agent0"  # agents, teams and topics are the desk's, not the ticket's


def test_a_copy_moves_every_date_back_and_renumbers_the_ticket():
    rewrite = Rewrite(Copy(source(), timedelta(days=3), "person0001@example.org", 80001))
    new = rewrite({"number": 100010, "subject": "[#100010] Your ticket", "created_at": CREATED,
                   "clocks": [{"due_at": CREATED + timedelta(hours=4)}], "attempts": 100010})  # fmt: skip
    assert new["number"] == 80001 and new["subject"] == "[#80001] Your ticket"
    assert new["attempts"] == 100010  # only the `number` field is the ticket's number
    assert new["created_at"] == CREATED - timedelta(days=3)
    assert new["clocks"][0]["due_at"] == CREATED + timedelta(hours=4) - timedelta(days=3)


def test_copies_are_numbered_uniquely_in_the_order_of_their_new_creation_dates():
    sources = [source(), source(id=uuid.uuid4().hex, status="resolved", furthest_back=timedelta(hours=48))]
    emails, _ = requester_pool(random.Random(1), 200)
    copies = plan_copies(sources, 200, emails, 80001, random.Random(2))
    assert sorted(copy.number for copy in copies) == list(range(80001, 80201))
    dates = [copy.source.created_at - copy.back for copy in sorted(copies, key=lambda copy: copy.number)]
    assert dates == sorted(dates)
    assert all(copy.back <= copy.source.furthest_back for copy in copies)


def test_the_requester_pool_has_one_frequent_requester_and_many_others():
    emails, frequent = requester_pool(random.Random(1), 20000)
    assert emails.count(frequent) >= 20000 // 50
    assert len(set(emails)) > 1000
