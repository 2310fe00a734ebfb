"""The meaning beside the words: "similar resolved tickets" re-ranked with a small static embedding.

A ticket is a vector: the mean of its tokens' rows in WordLlama's `l2_supercat` table (Llama 2's tokenizer,
256 numbers a token; the table and the tokenizer ship inside the `wordllama` wheel, MIT; nothing is downloaded).
Two tickets that say the same thing in other words ("the tunnel drops", "AnyConnect disconnects") are near,
which the words' scores (BM25) cannot see. It is not a ranking of its own: `rerank` takes the engine's first
DEPTH lexical candidates, best first, and orders them by reciprocal rank fusion of their lexical rank and their
rank by nearness to the ticket asked about (to be exact: to its vector plus half the mean vector of its three
nearest candidates, what its neighbours have in common). On
the labelled set (benchmarks/similar_quality.py) precision at 5 went from 0.427 to 0.498 on the half the knobs
were not chosen on (`test`), 0.541 to 0.632 on the whole set, at about 8 ms more a question. A candidate far
from the ticket in meaning (FLOOR) is left out: 0.487 and 0.633 with it, more of what is shown right.

The files are read with the libraries they are stored for (safetensors, tokenizers), not through
`wordllama.WordLlama`, whose float32 table and imports take some 70 MB in each process that loads it. Here the
table is kept in int8 with a scale per row (8 MB; vectors WordLlama's own to a cosine of 0.9999,
tests/unit/test_search_semantic.py), converted a slice at a time, and a text is cut at MAX_CHARS before it is
tokenized: what an api worker holds stays about 40 MB more (numpy, the tokenizer, the table) whatever the
tickets. Loaded once per process, on its first `similar` (about 0.3 s). `TICKETFLOW_SIMILAR_MODEL=off` keeps
the lexical order, and so does an install without the `similar` extra or a table that fails to load (logged
once).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from importlib import util
from pathlib import Path

from shared.config import SIMILAR_MODEL, similar_model_on

log = logging.getLogger(__name__)

CONFIG = "l2_supercat"  # the wordllama wheel's table: Llama 2's tokenizer, 32,000 tokens of 256 numbers
TABLE_FILE = f"weights/{CONFIG}_256.safetensors"
TOKENIZER_FILE = f"tokenizers/{CONFIG}_tokenizer_config.json"
TENSOR = "embedding.weight"
SWITCH = SIMILAR_MODEL  # TICKETFLOW_SIMILAR_MODEL: on (the default) | off, the lexical order alone
PACKAGES = ("numpy", "safetensors", "tokenizers", "wordllama")  # the `similar` extra
MAX_CHARS = 2_000  # of a ticket's text, subject first (1,000: -0.004 on `tune`; 4,000: as 2,000 on the set)
QUANTIZE_ROWS = 4_096  # rows converted to int8 at a time (a float32 slice of 4 MB, not the table's 32)

# the fusion's knobs, chosen on the `tune` half of the labelled set (benchmarks/similar_quality.py)
DEPTH = 20  # lexical candidates re-ranked (30: +0.002 on `tune`, 50: +0.005, each at half as much time again)
FUSION_K = 60  # reciprocal rank fusion's constant: a rank r (counted from 0) scores 1 / (K + r)
WEIGHT = 3.0  # the meaning's rank against the words' (1.0); 1.0 to 10.0 gave 0.552 to 0.555 on `tune`
FEEDBACK = 3  # the asked ticket's vector, plus the mean of its 3 nearest candidates' ...
FEEDBACK_WEIGHT = 0.5  # ... times a half (0.555 -> 0.566 on `tune`)
# A candidate whose meaning is this far from the ticket's (cosine of the two vectors, the asked ticket's own) is
# no answer, whatever words they share: on a desk with few resolved tickets, the five "most similar" were others'
# problems (a printer jam for an Outlook ticket: 0.03 to 0.21). On `tune`, 0.2 left out 16 results of another
# kind and 10 of the same in the five shown before (rerank then fills the five from further down: what is
# shown right 0.566 -> 0.569; at 5, counting a missing one as wrong, 0.566 -> 0.556, `test` 0.498 -> 0.487);
# 0.25 left out 47 and 29, 0.3 96 and 57.
FLOOR = 0.2

_lock = threading.Lock()
_state: dict[str, Embedder | None] = {}  # "embedder" once loaded, or tried and failed (None)


class Embedder:
    """Texts to unit vectors: each the mean of its tokens' rows (a text without tokens: zeros)."""

    def __init__(self, folder: Path) -> None:
        import numpy
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self._np = numpy
        with safe_open(str(folder / TABLE_FILE), framework="np") as weights:
            table = weights.get_tensor(TENSOR)  # float16, (32000, 256)
        self.table = numpy.empty(table.shape, dtype=numpy.int8)  # each row in int8 with a scale of its own
        self.scale = numpy.empty(len(table), dtype=numpy.float32)
        for start in range(0, len(table), QUANTIZE_ROWS):
            rows = table[start : start + QUANTIZE_ROWS].astype(numpy.float32)
            scale = numpy.abs(rows).max(axis=1) / 127
            self.scale[start : start + len(rows)] = scale
            numpy.round(rows / numpy.where(scale > 0, scale, 1)[:, None], out=rows)
            self.table[start : start + len(rows)] = rows
        del table
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        _trim_heap()  # what reading the tokenizer's JSON took and gave back stays with the process otherwise

    @property
    def dimensions(self) -> int:
        return int(self.table.shape[1])

    def embed(self, texts: list[str]):
        """A (len(texts), 256) float32 array of unit vectors; each text read up to MAX_CHARS."""
        np = self._np
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            # one at a time: encode_batch would start the library's thread pool in each api process
            ids = self.tokenizer.encode(text[:MAX_CHARS], add_special_tokens=False).ids
            if ids:
                ids = np.clip(np.asarray(ids, dtype=np.int64), 0, len(self.table) - 1)
                out[row] = self.scale[ids] @ self.table[ids].astype(np.float32) / len(ids)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim); nothing elsewhere (musl, macOS)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def enabled() -> bool:
    return similar_model_on(os.environ)


def embedder() -> Embedder | None:
    """This process's embedder: None when switched off, without the `similar` extra, or when loading failed."""
    if not enabled():
        return None
    with _lock:
        if "embedder" not in _state:
            _state["embedder"] = _load()
        return _state["embedder"]


def _load() -> Embedder | None:
    missing = [name for name in PACKAGES if util.find_spec(name) is None]
    if missing:
        log.warning("similar: without %s (the `similar` extra): the lexical order alone", ", ".join(missing))
        return None
    folder = Path(util.find_spec("wordllama").origin or "").parent  # the wheel's files; wordllama is not imported
    try:
        return Embedder(folder)
    except Exception:  # a renamed file in another wordllama, a broken install: similar answers, by its words
        log.exception("similar: the embedding did not load from %s: the lexical order alone", folder)
        return None


def ticket_text(doc: dict, *, with_resolution: bool) -> str:
    """What a ticket says, as the embedding reads it: the subject twice (it says what the problem is), the
    description, the thread's messages, and the resolution of a candidate."""
    parts = [doc.get("subject") or "", doc.get("subject") or "", doc.get("description") or ""]
    parts += [m for m in doc.get("messages") or [] if m]
    if with_resolution:
        parts.append(doc.get("resolution") or "")
    return "\n".join(part for part in parts if part)


def rerank(asked: dict, candidates: list[dict], scores: list[float], limit: int) -> list[tuple[int, float]]:
    """The best `limit` of `candidates` as (position, score) pairs, best first: fused with their meaning, those
    whose meaning is below FLOOR left out; or without an embedder the lexical order and `scores` as they are.

    `asked` and each candidate are ticket documents (subject, description, messages, resolution); `candidates`
    come in the engine's lexical order, best first, with their `scores`.
    """
    model = embedder() if candidates else None
    if model is None:
        return list(enumerate(scores[:limit]))
    vectors = model.embed(
        [ticket_text(asked, with_resolution=False)] + [ticket_text(c, with_resolution=True) for c in candidates]
    )
    asked_vector, found = vectors[0], vectors[1:]
    near = found @ asked_vector
    nearest = found[(-near).argsort(kind="stable")[:FEEDBACK]]
    towards = asked_vector + FEEDBACK_WEIGHT * nearest.mean(axis=0)  # Rocchio: the meaning its neighbours share
    fused = fuse([float(n) for n in found @ towards], len(candidates))
    return [(position, score) for position, score in fused if near[position] >= FLOOR][:limit]


def fuse(nearness: list[float], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of the lexical order (the positions themselves) and the order by `nearness`
    (higher: nearer): (position, score) pairs, best first; a tie keeps the lexical order."""
    by_meaning = sorted(range(len(nearness)), key=lambda i: (-nearness[i], i))
    meaning_rank = {position: rank for rank, position in enumerate(by_meaning)}
    score = [1 / (FUSION_K + i) + WEIGHT / (FUSION_K + meaning_rank[i]) for i in range(len(nearness))]
    return [(i, score[i]) for i in sorted(range(len(nearness)), key=lambda i: (-score[i], i))[:limit]]


def depth(limit: int) -> int:
    """How many lexical candidates to fetch for `limit` results: DEPTH to re-rank, or `limit` alone without.
    Asks `embedder()`, so the process's first call loads the embedding (about 0.3 s) when it is on."""
    return max(limit, DEPTH) if embedder() is not None else limit
