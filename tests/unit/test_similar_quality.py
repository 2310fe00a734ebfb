"""The counting of benchmarks/similar_quality.py, with engines whose answers are known: issue 18's acceptance
figure (precision at 5 of "similar") is this arithmetic, so it must be right whatever the engine."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from benchmarks.similar_quality import SET, document, load, measure, split

TICKETS = load(SET)


@dataclass(frozen=True)
class Scope:
    everything: bool
    teams: frozenset[str]
    agent_id: str | None
    requester_email: str | None


def engine_answering(answer):
    """An engine module whose `similar` is answer(ticket_id, kind_of, indexed ids)."""

    class Engine:
        def __init__(self, path: str):
            self.docs: dict[str, dict] = {}
            self.committed = False

        def upsert(self, doc: dict) -> None:
            self.docs[doc["ticket_id"]] = doc

        def commit(self) -> None:
            self.committed = True

        def similar(self, ticket_id: str, *, scope: Scope, limit: int = 5) -> list[dict]:
            assert self.committed and scope.everything and limit == 5
            kind_of = {ticket["id"]: ticket["kind"] for ticket in TICKETS if ticket["id"] in self.docs}
            return [{"ticket_id": found} for found in answer(ticket_id, kind_of)]

    return SimpleNamespace(Engine=Engine, Scope=Scope)


def same_kind(count: int):
    def answer(ticket_id, kind_of):
        return [other for other in sorted(kind_of) if other != ticket_id and kind_of[other] == kind_of[ticket_id]][
            :count
        ]

    return answer


def other_kinds(ticket_id, kind_of):
    return [other for other in sorted(kind_of) if kind_of[other] != kind_of[ticket_id]][:5]


def test_the_halves_split_every_kind_and_are_indexed_apart(tmp_path):
    parts = split(TICKETS)
    tune, test = {t["id"] for t in parts["tune"]}, {t["id"] for t in parts["test"]}
    assert tune.isdisjoint(test) and tune | test == {t["id"] for t in TICKETS} == {t["id"] for t in parts["whole"]}
    for kind in {t["kind"] for t in TICKETS}:
        in_tune = sum(t["kind"] == kind for t in parts["tune"])
        in_test = sum(t["kind"] == kind for t in parts["test"])
        assert abs(in_tune - in_test) <= 1 and min(in_tune, in_test) >= 6  # 5 others of its kind to find
    result = measure(engine_answering(same_kind(5)), parts["test"], tmp_path)
    assert result["tickets"] == len(test) and result["precision_at_5"] == 1.0  # only the half was indexed


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(same_kind(5), 1.0), (other_kinds, 0.0), (same_kind(2), 0.4), (same_kind(0), 0.0)],
    ids=["all of its kind", "none of its kind", "two results: the missing three count as misses", "nothing"],
)
def test_precision_at_5_is_the_results_of_its_kind_over_5(tmp_path, answer, expected):
    result = measure(engine_answering(answer), TICKETS, tmp_path)
    assert result["precision_at_5"] == pytest.approx(expected)
    assert list(result["per_kind"].values()) == pytest.approx([expected] * len(result["per_kind"]))


def test_an_engine_that_offers_the_ticket_itself_is_stopped(tmp_path):
    with pytest.raises(SystemExit, match="the ticket itself"):
        measure(engine_answering(lambda ticket_id, kind_of: [ticket_id]), TICKETS, tmp_path)


def test_the_engine_is_not_told_the_kind():
    """A team per kind would hand the engine the answer."""
    doc = document(TICKETS[0])
    assert doc["team"] is None and TICKETS[0]["kind"] not in str(doc.values())
    assert doc["number"] == int(TICKETS[0]["id"][1:]) and doc["status"] in ("resolved", "closed")
