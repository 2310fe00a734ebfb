"""services/search/semantic.py: the static embedding that re-ranks "similar resolved tickets"."""

from __future__ import annotations

import json
import logging
import warnings
from importlib import util
from pathlib import Path

import numpy
import pytest

from services.search import semantic
from shared.config import ConfigError, load_settings

SET = Path(__file__).resolve().parents[1] / "data" / "similar_tickets.jsonl"

VPN = "VPN keeps disconnecting\nThe tunnel drops every few minutes when I work from home."
ANYCONNECT = "AnyConnect client disconnects\nRemote access goes down at home several times an hour."
PRINTER = "Printer jam on floor 3\nThe printer by the kitchen jams on every second page."


@pytest.fixture
def model() -> semantic.Embedder:
    found = semantic.embedder()
    assert found is not None, "the `similar` extra is missing: pip install -e '.[dev]' (make test installs it)"
    return found


@pytest.fixture
def fresh(monkeypatch):
    """The process's embedder forgotten for the test (and the process's own, loaded or not, back after it)."""
    monkeypatch.setattr(semantic, "_state", {})
    return semantic


def set_texts(count: int) -> list[str]:
    """Tickets of the labelled set as the embedding reads them: varied words, lengths and languages' marks."""
    lines = SET.read_text(encoding="utf-8").splitlines()[:count]
    return [semantic.ticket_text(json.loads(line), with_resolution=True) for line in lines]


def test_the_vectors_are_wordllamas_own(model):
    with warnings.catch_warnings():  # what wordllama imports (pydantic, ...) may deprecate things: not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        from wordllama import WordLlama  # its own loader and its float32 table; semantic reads the table in int8

    folder = Path(util.find_spec("wordllama").origin).parent  # the wheel's own files; nothing is downloaded
    theirs = WordLlama.load(semantic.CONFIG, cache_dir=folder, disable_download=True, dim=256)
    texts = [VPN, ANYCONNECT, PRINTER, "Ünïcödé — naïve café 😀 日本語", *set_texts(40)]
    assert all(len(text) <= semantic.MAX_CHARS for text in texts)
    ours, expected = model.embed(texts), theirs.embed(texts, norm=True)
    assert ours.shape == (len(texts), 256) and ours.dtype == numpy.float32
    assert (ours * expected).sum(axis=1).min() > 0.9999


def test_a_long_text_is_read_up_to_its_first_max_chars(model):
    long = " ".join(set_texts(60))
    assert len(long) > 2 * semantic.MAX_CHARS
    assert numpy.allclose(model.embed([long]), model.embed([long[: semantic.MAX_CHARS]]))
    assert not numpy.allclose(model.embed([long]), model.embed([long[: semantic.MAX_CHARS // 2]]), atol=1e-3)


def test_vectors_are_unit_long_and_an_empty_text_is_zeros(model):
    vectors = model.embed([VPN, "", PRINTER])
    assert numpy.allclose(numpy.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not vectors[1].any()
    assert model.embed([]).shape == (0, 256)


def test_texts_together_are_each_their_own(model):
    texts = [*set_texts(10), "", PRINTER]
    together = model.embed(texts)
    alone = numpy.vstack([model.embed([text]) for text in texts])
    assert numpy.allclose(together, alone, atol=1e-6)


def test_the_same_problem_in_other_words_is_nearer_than_another_problem(model):
    vpn, anyconnect, printer = model.embed([VPN, ANYCONNECT, PRINTER])
    assert vpn @ anyconnect > vpn @ printer + 0.1


def test_fuse_adds_the_reciprocal_ranks_of_words_and_meaning():
    k, w = semantic.FUSION_K, semantic.WEIGHT
    # lexical order 0, 1, 2; by meaning 1, 2, 0
    assert semantic.fuse([0.1, 0.9, 0.5], 3) == [
        (1, 1 / (k + 1) + w / k),
        (2, 1 / (k + 2) + w / (k + 1)),
        (0, 1 / k + w / (k + 2)),
    ]
    assert [position for position, _ in semantic.fuse([0.1, 0.9, 0.5], 2)] == [1, 2]
    assert [position for position, _ in semantic.fuse([0.5, 0.5], 2)] == [0, 1]  # a tie keeps the words' order


def ticket(subject: str, description: str, resolution: str | None = None) -> dict:
    return {"subject": subject, "description": description, "messages": [], "resolution": resolution}


def test_rerank_puts_the_same_problem_first_when_the_words_did_not():
    asked = ticket("VPN keeps disconnecting", "The tunnel drops every few minutes when I work from home.")
    candidates = [
        ticket("No internet at home", "The connection drops when I work from home.", "Restarted the router."),
        ticket("AnyConnect drops", "Remote access goes down at home.", "Reinstalled the VPN client."),
    ]
    order = semantic.rerank(asked, candidates, [7.0, 3.0], 2)
    assert [position for position, _ in order] == [1, 0]
    assert order[0][1] > order[1][1]


def test_rerank_leaves_out_a_candidate_whose_meaning_is_another_problem(model):
    """A desk with few resolved tickets: the words' best candidates may be others' problems altogether (a printer
    jam for an Outlook ticket); below FLOOR by meaning they are no answer, whatever words they share."""
    asked = ticket("Outlook on my phone stopped syncing", "My work mail on the iPhone has not updated since Friday.")
    candidates = [
        ticket("Printer on floor 3 will not print", "Jobs sit in the queue on my phone and laptop.", "Cleared it."),
        ticket("Mail on my phone does not sync", "The Outlook app shows no new mail.", "Re-added the account."),
        ticket("Locked out after the holidays", "My password expired and my phone keeps locking me out.", "Reset."),
    ]
    asked_vector, *vectors = model.embed(
        [semantic.ticket_text(asked, with_resolution=False)]
        + [semantic.ticket_text(c, with_resolution=True) for c in candidates]
    )
    near = [float(v @ asked_vector) for v in vectors]
    assert near[0] < semantic.FLOOR <= near[1]  # the printer is far: the test's premise

    order = semantic.rerank(asked, candidates, [9.0, 5.0, 4.0], 5)

    assert 0 not in [position for position, _ in order] and order[0][0] == 1
    assert [position for position, _ in order] == [p for p in (1, 2) if near[p] >= semantic.FLOOR]


def test_switched_off_the_words_order_and_scores_stand(monkeypatch, fresh):
    monkeypatch.setenv(semantic.SWITCH, "off")
    asked = ticket("VPN keeps disconnecting", "The tunnel drops.")
    candidates = [ticket("Printer jam", "Jams."), ticket("AnyConnect drops", "Remote access goes down.")]
    assert semantic.embedder() is None
    assert semantic.rerank(asked, candidates, [7.0, 3.0], 5) == [(0, 7.0), (1, 3.0)]
    assert semantic.rerank(asked, [], [], 5) == []


class Finder:
    """importlib.util as semantic sees it, without `missing`."""

    def __init__(self, *missing: str) -> None:
        self.missing = missing

    def find_spec(self, name: str):
        return None if name in self.missing else util.find_spec(name)


def test_without_its_packages_similar_keeps_the_words_order_and_says_so(monkeypatch, fresh, caplog):
    monkeypatch.setattr(semantic, "util", Finder("tokenizers", "wordllama"))
    with caplog.at_level(logging.WARNING, logger=semantic.__name__):
        assert semantic.embedder() is None
        assert semantic.embedder() is None
    assert [r.getMessage() for r in caplog.records] == [
        "similar: without tokenizers, wordllama (the `similar` extra): the lexical order alone"
    ]
    assert semantic.depth(5) == 5


def test_a_table_that_fails_to_load_leaves_the_words_order_and_is_tried_once(monkeypatch, fresh, caplog):
    tries = []

    def broken(folder):
        tries.append(folder)
        raise FileNotFoundError(folder / semantic.TABLE_FILE)

    monkeypatch.setattr(semantic, "Embedder", broken)
    with caplog.at_level(logging.WARNING, logger=semantic.__name__):
        assert semantic.embedder() is None
        assert semantic.rerank(ticket("a", "b"), [ticket("c", "d")], [2.5], 5) == [(0, 2.5)]
    assert len(tries) == 1
    assert [r.levelname for r in caplog.records] == ["ERROR"] and "did not load" in caplog.records[0].getMessage()


def test_the_switch_is_on_or_off_and_nothing_else(monkeypatch):
    monkeypatch.setenv(semantic.SWITCH, "Off ")
    assert semantic.enabled() is False
    load_settings()  # a process with the switch off starts
    monkeypatch.setenv(semantic.SWITCH, "disabled")
    with pytest.raises(ConfigError, match="TICKETFLOW_SIMILAR_MODEL must be one of on, off"):
        load_settings()
    monkeypatch.delenv(semantic.SWITCH)
    assert semantic.enabled() is True


def test_with_the_meaning_similar_reads_depth_candidates(model):
    assert semantic.depth(5) == semantic.DEPTH and semantic.depth(50) == 50


def test_ticket_text_counts_the_subject_twice_and_the_resolution_of_a_candidate_only():
    doc = {"subject": "S", "description": "D", "messages": ["M1", "", "M2"], "resolution": "R"}
    assert semantic.ticket_text(doc, with_resolution=False) == "S\nS\nD\nM1\nM2"
    assert semantic.ticket_text(doc, with_resolution=True) == "S\nS\nD\nM1\nM2\nR"
    assert semantic.ticket_text({"subject": None}, with_resolution=True) == ""
