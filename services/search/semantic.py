"""The meaning beside the words: "similar resolved tickets" re-ranked with a small static embedding.

A ticket is a vector: the mean of its tokens' rows in WordLlama's `l2_supercat` table (Llama 2's tokenizer,
256 numbers a token; the table and the tokenizer ship inside the `wordllama` wheel, MIT; nothing is downloaded).
Two tickets that say the same thing in other words ("the tunnel drops", "AnyConnect disconnects") are near,
which the words' scores (BM25) cannot see. It is not a ranking of its own: `rerank` takes the engine's first
DEPTH lexical candidates, best first, and orders them by reciprocal rank fusion of their lexical rank and their
rank by cosine to the ticket asked about (its vector moved a little towards its nearest candidates first). On
the labelled set (benchmarks/similar_quality.py) precision at 5 went from 0.514 / 0.427 / 0.541 (tune / test /
whole) to 0.566 / 0.498 / 0.632, at about 8 ms more a question.

The files are read with the libraries they are stored for (safetensors, tokenizers), not through
`wordllama.WordLlama`, whose float32 table and imports take some 70 MB in each process that loads it: here the
table is kept in int8 with a scale per row (8 MB; the vectors agree with WordLlama's own to a cosine of 0.9999,
tests/unit/test_search_semantic.py), and the whole costs an api worker about 40 MB (numpy, the tokenizer, the
table). Loaded once per process, on its first `similar`. `TICKETFLOW_SIMILAR_MODEL=off` keeps the lexical order,
and so does a missing package (logged once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from importlib import util
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG = "l2_supercat"  # the wordllama wheel's table: Llama 2's tokenizer, 32,000 tokens of 256 numbers
TABLE_FILE = f"weights/{CONFIG}_256.safetensors"
TOKENIZER_FILE = f"tokenizers/{CONFIG}_tokenizer_config.json"
TENSOR = "embedding.weight"
SWITCH = "TICKETFLOW_SIMILAR_MODEL"  # "off" (or "0", "false", "no"): the lexical order alone
BATCH = 64  # texts tokenized at once

# the fusion's knobs, chosen on the `tune` half of the labelled set (benchmarks/similar_quality.py)
DEPTH = 20  # lexical candidates re-ranked (30: +0.002 on `tune`, 50: +0.005, each at half as much time again)
FUSION_K = 60  # reciprocal rank fusion's constant: a rank r scores 1 / (K + r)
WEIGHT = 3.0  # the meaning's rank against the words' (1.0); 1.0 to 10.0 gave 0.552 to 0.555 on `tune`
FEEDBACK = 3  # the asked ticket's vector moves towards the mean of its 3 nearest candidates ...
FEEDBACK_WEIGHT = 0.5  # ... by half of it (0.555 -> 0.567 on `tune`)

_lock = threading.Lock()
_loaded: dict[str, Embedder | None] = {}


class Embedder:
    """Texts to unit vectors: each the mean of its tokens' rows (a text without tokens: zeros)."""

    def __init__(self, folder: Path) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no thread pool per process; no fork warning
        import numpy
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self._np = numpy
        table = load_file(str(folder / TABLE_FILE))[TENSOR].astype(numpy.float32)  # float16 on disk, (32000, 256)
        self.scale = numpy.abs(table).max(axis=1) / 127  # each row in int8 with a scale of its own: 8 MB, not 16
        self.table = numpy.round(table / numpy.where(self.scale > 0, self.scale, 1)[:, None]).astype(numpy.int8)
        del table
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        _trim_heap()  # what reading the tokenizer's JSON took and gave back stays with the process otherwise

    @property
    def dimensions(self) -> int:
        return int(self.table.shape[1])

    def embed(self, texts: list[str]):
        """A (len(texts), 256) float32 array of unit vectors."""
        np = self._np
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            encoded = self.tokenizer.encode_batch(texts[start : start + BATCH], add_special_tokens=False)
            counts = np.array([len(encoding.ids) for encoding in encoded])
            if not counts.sum():
                continue
            ids = np.clip(np.fromiter((i for e in encoded for i in e.ids), dtype=np.int64), 0, len(self.table) - 1)
            rows = self.table[ids].astype(np.float32) * self.scale[ids, None]
            filled = np.flatnonzero(counts)  # reduceat sums each text's rows; an empty text keeps its zeros
            sums = np.add.reduceat(rows, np.concatenate(([0], np.cumsum(counts)[:-1]))[filled], axis=0)
            out[start + filled] = sums / counts[filled, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim); nothing where there is none."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def embedder() -> Embedder | None:
    """This process's embedder: None when switched off or when the model's packages are not installed."""
    if not enabled():
        return None
    with _lock:
        if CONFIG not in _loaded:
            _loaded[CONFIG] = _load()
        return _loaded[CONFIG]


def _load() -> Embedder | None:
    spec = util.find_spec("wordllama")
    missing = [name for name in ("numpy", "safetensors", "tokenizers") if util.find_spec(name) is None]
    if spec is None or spec.origin is None or missing:
        log.warning("similar: the embedding's packages are missing (%s): the lexical order alone",
                    ", ".join(missing + (["wordllama"] if spec is None else [])))  # fmt: skip
        return None
    return Embedder(Path(spec.origin).parent)  # the wheel's folder, without importing wordllama (and pydantic)


def ticket_text(doc: dict, *, with_resolution: bool) -> str:
    """What a ticket says, as the embedding reads it: the subject twice (it says what the problem is), the
    description, the thread's messages, and the resolution of a candidate."""
    parts = [doc.get("subject") or "", doc.get("subject") or "", doc.get("description") or ""]
    parts += [m for m in doc.get("messages") or [] if m]
    if with_resolution:
        parts.append(doc.get("resolution") or "")
    return "\n".join(part for part in parts if part)


def rerank(asked: dict, candidates: list[dict], scores: list[float], limit: int) -> list[tuple[int, float]]:
    """The best `limit` of `candidates` as (position, score) pairs, best first: fused with their meaning, or
    without an embedder the lexical order and `scores` as they are.

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
    nearest = found[(-(found @ asked_vector)).argsort(kind="stable")[:FEEDBACK]]
    towards = asked_vector + FEEDBACK_WEIGHT * nearest.mean(axis=0)  # Rocchio: the meaning its neighbours share
    return fuse([float(c) for c in found @ towards], limit)


def fuse(cosines: list[float], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of the lexical order (the positions themselves) and the order by cosine:
    (position, score) pairs, best first; a tie keeps the lexical order."""
    by_meaning = sorted(range(len(cosines)), key=lambda i: (-cosines[i], i))
    meaning_rank = {position: rank for rank, position in enumerate(by_meaning)}
    score = [1 / (FUSION_K + i) + WEIGHT / (FUSION_K + meaning_rank[i]) for i in range(len(cosines))]
    return [(i, score[i]) for i in sorted(range(len(cosines)), key=lambda i: (-score[i], i))[:limit]]
