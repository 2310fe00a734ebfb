"""The labelled set behind the "similar" figure (tests/data/similar_tickets.jsonl, benchmarks/similar_quality.py):
the figure means something only while the set is big enough, spread over enough kinds, and well-formed."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

SET = Path(__file__).resolve().parents[1] / "data" / "similar_tickets.jsonl"
FIELDS = {"id", "kind", "subject", "description", "messages", "resolution", "status"}


def tickets() -> list[dict]:
    return [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines()]


TICKETS = tickets()


def test_the_set_is_big_enough_and_spread_over_enough_kinds():
    kinds = Counter(ticket["kind"] for ticket in TICKETS)
    assert len(TICKETS) >= 330
    assert len(kinds) >= 22
    assert min(kinds.values()) >= 10, kinds  # a kind needs more than 5 others for a full precision at 5


@pytest.mark.parametrize("ticket", TICKETS, ids=lambda ticket: ticket.get("id", "?"))
def test_each_ticket_has_its_fields(ticket: dict):
    assert set(ticket) == FIELDS
    assert re.fullmatch(r"s\d{3}", ticket["id"])
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", ticket["kind"])
    assert ticket["status"] in ("resolved", "closed")  # only those are ever offered as similar
    for field in ("subject", "description", "resolution"):
        assert isinstance(ticket[field], str) and ticket[field].strip(), field
    assert isinstance(ticket["messages"], list) and len(ticket["messages"]) <= 3
    assert all(isinstance(message, str) and message.strip() for message in ticket["messages"])


def test_ids_are_unique_and_no_two_tickets_share_a_description():
    assert len({ticket["id"] for ticket in TICKETS}) == len(TICKETS)
    descriptions = Counter(" ".join(ticket["description"].lower().split()) for ticket in TICKETS)
    assert [text for text, count in descriptions.items() if count > 1] == []


def test_no_kind_is_recognisable_by_one_word_all_its_tickets_share():
    """Different words for the same thing, as people write: a kind whose every ticket said "printer" would make
    the figure measure a keyword match, not similarity."""
    words_of: dict[str, list[set[str]]] = defaultdict(list)
    for ticket in TICKETS:
        text = f"{ticket['subject']} {ticket['description']}".lower()
        words_of[ticket["kind"]].append({word for word in re.findall(r"[a-z]+", text) if len(word) >= 4})
    shared = {kind: set.intersection(*words) for kind, words in words_of.items()}
    assert {kind: words for kind, words in shared.items() if words} == {}
