"""services/search/semantic.py: the static embedding that re-ranks "similar resolved tickets"."""

from __future__ import annotations

import logging
from importlib import util
from pathlib import Path

import numpy
import pytest

from services.search import semantic

VPN = "VPN keeps disconnecting\nThe tunnel drops every few minutes when I work from home."
ANYCONNECT = "AnyConnect client disconnects\nRemote access goes down at home several times an hour."
PRINTER = "Printer jam on floor 3\nThe printer by the kitchen jams on every second page."


@pytest.fixture
def model() -> semantic.Embedder:
    found = semantic.embedder()
    assert found is not None, "make test installs the embedding's packages (pyproject's dependencies)"
    return found


@pytest.fixture
def fresh(monkeypatch):
    """The process's embedder forgotten (and forgotten again after the test)."""
    monkeypatch.setattr(semantic, "_loaded", {})
    return semantic


def test_the_vectors_are_wordllamas_own(model):
    from wordllama import WordLlama  # its own loader and its float32 table; semantic reads the table in float16

    folder = Path(util.find_spec("wordllama").origin).parent  # the wheel's own files; nothing is downloaded
    theirs = WordLlama.load(semantic.CONFIG, cache_dir=folder, disable_download=True, dim=256)
    texts = [VPN, ANYCONNECT, PRINTER, "Ünïcödé — naïve café", "x" * 5000]
    ours, expected = model.embed(texts), theirs.embed(texts, norm=True)
    assert ours.shape == (5, 256) and ours.dtype == numpy.float32
    assert (ours * expected).sum(axis=1).min() > 0.9999


def test_vectors_are_unit_long_and_an_empty_text_is_zeros(model):
    vectors = model.embed([VPN, "", PRINTER])
    assert numpy.allclose(numpy.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not vectors[1].any()
    assert model.embed([]).shape == (0, 256)


def test_texts_past_one_batch_are_each_their_own(model):
    texts = [f"{VPN} {i}" if i % 3 else PRINTER for i in range(semantic.BATCH + 7)] + [""]
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
        ticket("Printer jam", "The printer by the kitchen jams.", "Cleared the rollers."),
        ticket("AnyConnect drops", "Remote access goes down at home.", "Reinstalled the VPN client."),
    ]
    order = semantic.rerank(asked, candidates, [7.0, 3.0], 2)
    assert [position for position, _ in order] == [1, 0]
    assert order[0][1] > order[1][1]


def test_switched_off_the_words_order_and_scores_stand(monkeypatch, fresh):
    monkeypatch.setenv(semantic.SWITCH, "off")
    asked = ticket("VPN keeps disconnecting", "The tunnel drops.")
    candidates = [ticket("Printer jam", "Jams."), ticket("AnyConnect drops", "Remote access goes down.")]
    assert semantic.embedder() is None
    assert semantic.rerank(asked, candidates, [7.0, 3.0], 5) == [(0, 7.0), (1, 3.0)]
    assert semantic.rerank(asked, [], [], 5) == []


def test_without_its_packages_similar_keeps_the_words_order_and_says_so(monkeypatch, fresh, caplog):
    real = semantic.util.find_spec
    monkeypatch.setattr(semantic.util, "find_spec", lambda name: None if name == "tokenizers" else real(name))
    with caplog.at_level(logging.WARNING, logger=semantic.__name__):
        assert semantic.embedder() is None
        assert semantic.embedder() is None
    assert [r.getMessage() for r in caplog.records] == [
        "similar: the embedding's packages are missing (tokenizers): the lexical order alone"
    ]


def test_ticket_text_counts_the_subject_twice_and_the_resolution_of_a_candidate_only():
    doc = {"subject": "S", "description": "D", "messages": ["M1", "", "M2"], "resolution": "R"}
    assert semantic.ticket_text(doc, with_resolution=False) == "S\nS\nD\nM1\nM2"
    assert semantic.ticket_text(doc, with_resolution=True) == "S\nS\nD\nM1\nM2\nR"
    assert semantic.ticket_text({"subject": None}, with_resolution=True) == ""
