"""The embedded search engine: one tantivy index in a directory, behind the interface the service codes against.

One process writes (the worker: `upsert`, `delete`, `commit`); any number read (the api processes), each
seeing what the last commit published (a search looks at the index's meta file and reloads when it changed).
Who may see what is part of every query, so a total never counts a ticket the asker may not read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import html
import os
import re
import threading
from dataclasses import dataclass, field

import tantivy

from services.search import queries, semantic
from services.search.domain import SIMILAR_SPARE, similar_places

WRITER_HEAP = 50_000_000  # bytes of buffered documents before tantivy writes a segment on its own
MALLOC_ARENAS = 2  # glibc malloc arenas of the writing process (limit_malloc_arenas)
_M_ARENA_MAX = -8  # glibc's mallopt parameter
FEW = 3  # an exact search finding fewer than this tries again forgiving typos
SNIPPET_CHARS = 200
SNIPPET_FIELDS = ("description", "messages", "resolution", "subject")  # of those marking as many words, the first
CLOSED = ("resolved", "closed")
SIMILAR_ITEM = ("ticket_id", "number", "subject", "resolution", "resolved_at")  # a similar ticket's fields
_KEYWORDS = ("ticket_id", "status", "team", "requester_email", "agent_id", "created_at", "resolved_at")


@dataclass(frozen=True)
class Scope:
    """Who is asking; the same rights as intake's."""

    everything: bool = False  # admins, the portal server's own token
    teams: frozenset[str] = field(default_factory=frozenset)  # an agent: tickets of these teams ...
    agent_id: str | None = None  # ... or assigned to this agent
    requester_email: str | None = None  # a requester-scoped portal token: only this requester's tickets
    ticket_id: str | None = None  # ... and only this one, when the token names one


@dataclass(frozen=True)
class Shape:
    """What an index was made with: whether its text fields have joined copies, its analysers' names
    (queries.TOKENIZERS), and whether it holds the requester's name (queries.REQUESTER)."""

    copies: bool
    words: str
    plain: str
    requester: bool = False


# newest first: the one new indexes get, then those of indexes made before (read as they are until the worker
# rebuilds them: `outdated`): before the requester's name, before each Chinese character and kana was a word
# (queries.WORD), and before that before the joined copies
SHAPES = (
    Shape(True, "en2", "plain2", requester=True),
    Shape(True, "en2", "plain2"),
    Shape(True, "en", "plain"),
    Shape(False, "en", "plain"),
)


def build_schema(shape: Shape = SHAPES[0]) -> tantivy.Schema:
    """The index's fields, as new indexes have them, or as an index of an earlier `shape` has them."""
    builder = tantivy.SchemaBuilder()
    for name in _KEYWORDS:
        builder.add_text_field(name, stored=True, tokenizer_name="raw")
    builder.add_integer_field("number", stored=True, indexed=True, fast=True)
    for name in queries.TEXT_FIELDS:
        builder.add_text_field(name, stored=True, tokenizer_name=shape.words)
    builder.add_text_field("plain", tokenizer_name=shape.plain, index_option="freq")  # every word as written: typos
    if shape.copies:  # each text field again, joined up (queries.joined: Wi-Fi as wifi), with positions for phrases
        for name in queries.TEXT_FIELDS:
            builder.add_text_field(queries.copy_of(name), tokenizer_name=shape.words)
    if shape.requester:  # searched and shown, never a snippet, never a word of "similar"
        builder.add_text_field(queries.REQUESTER, stored=True, tokenizer_name=shape.words)
    return builder.build()


def shape_of(path: str) -> Shape:
    """The shape of the index at `path` (the newest when there is none yet, or when it is none of SHAPES)."""
    if os.path.isdir(path) and tantivy.Index.exists(path):
        schema = tantivy.Index.open(path).schema
        return next((shape for shape in SHAPES if build_schema(shape) == schema), SHAPES[0])
    return SHAPES[0]


def outdated(path: str) -> bool:
    """Whether `path` holds an index of an earlier shape than build_schema()'s (SHAPES): the worker rebuilds such a
    generation when it starts (services/search/index.py's Writer.start)."""
    return os.path.isdir(path) and tantivy.Index.exists(path) and tantivy.Index.open(path).schema != build_schema()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas in this process (mallopt M_ARENA_MAX); True when mallopt took it. Call it before
    any thread starts (tantivy's, pymongo's): arenas made before it stay. Not done when MALLOC_ARENA_MAX is set
    (the operator's own; GLIBC_TUNABLES' glibc.malloc.arena_max is not looked at), nor where the C library
    has no mallopt (musl, macOS).

    glibc gives each new thread that allocates an arena of its own, up to eight per core, and keeps what was
    freed in it: tantivy's merge threads left the writing process's memory in steps, 10 -> 53 MB at 5,000
    tickets indexed, 85 to 89 MB from 15,000 to 40,000 (one process, the labelled set upserted over and over, a
    commit every 5); capped at 2, 44 to 52 MB all the way to 30,000, in the same time (130 s either way).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_ARENA_MAX, arenas) == 1


class Engine:
    def __init__(self, path: str, *, create: bool = True) -> None:
        """`create=False`: open an existing index only (FileNotFoundError otherwise), as readers do."""
        if not create and not (os.path.isdir(path) and tantivy.Index.exists(path)):
            raise FileNotFoundError(path)
        os.makedirs(path, exist_ok=True)
        self.path = path
        shape = shape_of(path)  # an index made before the newest shape: as it is
        self.schema, self.copies, self.requester = build_schema(shape), shape.copies, shape.requester
        self._index = tantivy.Index(self.schema, path=path, reuse=True)
        for name in (shape.words, shape.plain):
            self._index.register_tokenizer(name, queries.TOKENIZERS[name])
        self._writer: tantivy.IndexWriter | None = None  # taken at the first write: readers never lock the index
        self._lock = threading.Lock()  # the worker's consumer writes while its timer commits
        self._seen: int | None = None  # the meta file's mtime the reader last loaded

    # --- writing (the worker) ---------------------------------------------------------------------

    def upsert(self, doc: dict) -> None:
        """One ticket's whole document; replaces any previous one."""
        with self._lock:
            writer = self._writable()
            writer.delete_documents_by_term("ticket_id", doc["ticket_id"])
            writer.add_document(_document(doc, self.copies, self.requester))

    def delete(self, ticket_id: str) -> None:
        with self._lock:
            self._writable().delete_documents_by_term("ticket_id", ticket_id)

    def commit(self) -> None:
        """What was written becomes searchable, here and (at their next search) in every reader."""
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
        self._index.reload()

    def take_writer(self) -> None:
        """Become this index's one writer now (tantivy's lock: ValueError while another process holds it)."""
        with self._lock:
            self._writable()

    def close(self) -> None:
        """Let go of the writer (its lock file), after the merges under way end."""
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None

    def _writable(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(WRITER_HEAP, 1)
        return self._writer

    # --- reading ----------------------------------------------------------------------------------

    def search(
        self,
        q: str,
        *,
        scope: Scope,
        status: str | None = None,
        team: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        """Best first, and how many match in all; a blank `q` lists the tickets in scope, newest first."""
        searcher = self._searcher()
        filters = [_scope_query(self.schema, scope)]
        filters += [self._term(name, value) for name, value in (("status", status), ("team", team)) if value]
        if not q.strip():
            found = searcher.search(
                _filtered(tantivy.Query.all_query(), filters), limit, offset=offset, order_by_field="number"
            )
            return [self._hit(searcher, None, address, 0.0) for _, address in found.hits], found.count
        text = queries.text_query(self.schema, q, copies=self.copies, requester=self.requester)
        if text is None:
            return [], 0
        page, count = _page(searcher, _filtered(text, filters), limit, offset)
        near: list[str] = []  # the typed words whose near misses matched (marked in the snippet by hand)
        joined = queries.joined_terms(q) if self.copies else None  # what the copies matched: marked by hand
        parts = queries.parts_looked_for(q)  # a word's parts are marked only where they stand together
        if count < FEW:
            fuzzy = queries.text_query(self.schema, q, fuzzy=True, copies=self.copies, requester=self.requester)
            page, count = _page(searcher, _filtered(fuzzy, filters), limit, offset)
            text = fuzzy
            near = [token for word in queries.split(q)[1] for token in queries.PLAIN.analyze(word)]
        snippets = {f: tantivy.SnippetGenerator.create(searcher, text, self.schema, f) for f in SNIPPET_FIELDS}
        for generator in snippets.values():
            generator.set_max_num_chars(SNIPPET_CHARS)
        return [self._hit(searcher, snippets, address, score, near, joined, parts) for score, address in page], count

    def similar(self, ticket_id: str, *, scope: Scope, limit: int = 5) -> list[dict]:
        """Resolved and closed tickets most like this one (never itself); [] when the asker may not see it."""
        searcher = self._searcher()
        own = _filtered(self._term("ticket_id", ticket_id), [_scope_query(self.schema, scope)])
        hits = searcher.search(own, 1).hits
        if not hits:
            return []
        source = _source(searcher.doc(hits[0][1]))
        keep = [
            (tantivy.Occur.Must, _const(tantivy.Query.term_set_query(self.schema, "status", list(CLOSED)))),
            (tantivy.Occur.Must, _const(_scope_query(self.schema, scope))),
            (tantivy.Occur.MustNot, self._term("ticket_id", ticket_id)),
        ]

        def search(terms, count: int):
            like = queries.similar_query(self.schema, terms)
            return searcher.search(tantivy.Query.boolean_query([(tantivy.Occur.Must, like), *keep]), count).hits

        terms = queries.similar_terms(source, searcher)
        first = [_source(searcher.doc(address)) for _, address in search(terms, queries.SIMILAR_FEEDBACK)]
        found = [queries.similar_terms(each, searcher, with_resolution=True) for each in first]
        hits = search(queries.with_feedback(terms, found), semantic.depth(limit + SIMILAR_SPARE))
        docs = [_source(searcher.doc(address)) for _, address in hits]
        return similar_items(docs, semantic.rerank(source, docs, [score for score, _ in hits], len(docs)), limit)

    def count(self) -> int:
        return self._searcher().num_docs

    def _searcher(self) -> tantivy.Searcher:
        """A searcher on the last commit: reloaded when the index's meta file changed since the last look."""
        try:
            seen = os.stat(os.path.join(self.path, "meta.json")).st_mtime_ns
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._index.reload()
            self._seen = seen
        return self._index.searcher()

    def _term(self, name: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, name, value)

    def _hit(
        self, searcher: tantivy.Searcher, snippets: dict | None, address, score: float, near=(), joined=None, parts=None
    ) -> dict:
        doc = searcher.doc(address)
        return {
            "ticket_id": doc.get_first("ticket_id"),
            "number": doc.get_first("number"),
            "subject": doc.get_first("subject"),
            "status": doc.get_first("status"),
            "team": doc.get_first("team"),
            "requester_name": doc.get_first(queries.REQUESTER) if self.requester else None,
            "snippet": _snippet(doc, snippets, near, joined, parts),
            "score": round(score, 4),
        }


TIES_READ = 1_000  # hits read at most to order a page's equal scores (beyond, the engine's own order)


def _page(searcher: tantivy.Searcher, query: tantivy.Query, limit: int, offset: int) -> tuple[list[tuple], int]:
    """(the page's (score, address) pairs, how many match): best first, equal scores (to the 4 decimals shown)
    newest first. tantivy orders equal scores by where the documents sit in its segments, no order a reader sees;
    so the hits up to the page's end are read, and on while the last scores tie with the page's last, and each
    run of equal scores that reaches into the page is ordered by number (the page's tickets are then the same
    whatever the segments)."""
    end, want = offset + limit, offset + limit
    while True:
        found = searcher.search(query, want)
        hits = found.hits
        if len(hits) < want or want >= TIES_READ or _shown(hits[-1][0]) != _shown(hits[min(end, len(hits)) - 1][0]):
            break
        want = min(want * 2, TIES_READ)
    first = offset  # runs of equal scores that reach into the page: from the one holding its first hit
    while 0 < first < len(hits) and _shown(hits[first - 1][0]) == _shown(hits[first][0]):
        first -= 1
    last = min(end, len(hits))
    while 0 < last < len(hits) and _shown(hits[last][0]) == _shown(hits[last - 1][0]):
        last += 1
    run = [(score, address, searcher.doc(address).get_first("number") or 0) for score, address in hits[first:last]]
    ordered = [(score, address) for score, address, _ in sorted(run, key=lambda hit: (-_shown(hit[0]), -hit[2]))]
    return (hits[:first] + ordered + hits[last:])[offset:end], found.count


def _shown(score: float) -> float:
    return round(score, 4)


def similar_items(docs: list[dict], order: list[tuple[int, float]], limit: int) -> list[dict]:
    """similar's answer: the documents at `order`'s positions that take a place (domain.similar_places), each with
    its score (BM25, or fused with the meaning: semantic.rerank), in that order, up to `limit`."""
    return [
        {name: docs[i].get(name) for name in SIMILAR_ITEM} | {"score": round(score, 6)}
        for i, score in similar_places(docs, order, limit)
    ]


def _document(doc: dict, copies: bool = True, requester: bool = True) -> tantivy.Document:
    messages = [m for m in doc.get("messages") or [] if m]
    fields: dict = {name: doc[name] for name in _KEYWORDS if doc.get(name)}
    if fields.get("requester_email"):
        fields["requester_email"] = fields["requester_email"].strip().lower()
    fields["number"] = int(doc["number"])
    for name in ("subject", "description", "resolution"):
        if doc.get(name):
            fields[name] = doc[name]
    if messages:
        fields["messages"] = messages
    written = [doc.get("subject"), doc.get("description"), *messages, doc.get("resolution")]
    fields["plain"] = [text for text in written if text]
    if copies:  # every text, hyphenated or not: its copy's lengths are then the text's, and so are its scores
        for name in queries.TEXT_FIELDS:
            if name in fields:
                value = fields[name]
                copy = [queries.joined(v) for v in value] if name == "messages" else queries.joined(value)
                fields[queries.copy_of(name)] = copy
    if requester and doc.get("requester_name"):
        fields[queries.REQUESTER] = doc["requester_name"]
    return tantivy.Document(**fields)


def _scope_query(schema: tantivy.Schema, scope: Scope) -> tantivy.Query:
    if scope.everything:
        return tantivy.Query.all_query()
    if scope.requester_email:
        own = tantivy.Query.term_query(schema, "requester_email", scope.requester_email.strip().lower())
        if scope.ticket_id is None:
            return own
        one = tantivy.Query.term_query(schema, "ticket_id", scope.ticket_id)
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, own), (tantivy.Occur.Must, one)])
    mine = []
    if scope.teams:
        mine.append(tantivy.Query.term_set_query(schema, "team", sorted(scope.teams)))
    if scope.agent_id:
        mine.append(tantivy.Query.term_query(schema, "agent_id", scope.agent_id))
    if not mine:
        return tantivy.Query.empty_query()
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in mine])


def _const(query: tantivy.Query) -> tantivy.Query:
    return tantivy.Query.const_score_query(query, 0.0)


def _filtered(query: tantivy.Query, filters: list[tantivy.Query]) -> tantivy.Query:
    """`query` scored, each filter required and scoring nothing."""
    clauses = [(tantivy.Occur.Must, query)] + [(tantivy.Occur.Must, _const(f)) for f in filters]
    return tantivy.Query.boolean_query(clauses)


def _snippet(doc: tantivy.Document, snippets: dict | None, near=(), joined=None, parts=None) -> str:
    """HTML: the fragment of the field that marks the most of the words looked for (of two that mark as many, the
    first of SNIPPET_FIELDS), those words in <mark>, everything else escaped: "thanks for the details" shows the
    reply that holds all four, not the description's "the".

    A word found through a typo (`near`: the typed words of a fuzzy search) is matched in the `plain` field,
    which tantivy's snippets do not show: its near misses are looked for in the text fields here instead. So is
    a word found in a joined copy (`joined`: queries.joined_terms; "wifi" found "Wi-Fi", "wi-fi" found "wifi"),
    which tantivy's snippets, knowing only the words as written, never take for the word looked for. The parts of a
    word looked for as their phrase (`parts`: queries.parts_looked_for; "e" and "mail" of "e-mail") are marked
    where they stand together, never alone ("Every mail" for "e-mail")."""
    best, most = None, 0
    for name in SNIPPET_FIELDS if snippets else ():
        texts = doc.get_all(name)
        if not texts:
            continue
        snippet = snippets[name].snippet_from_doc(doc)
        if snippet.highlighted():
            ranges = [(r.start, r.end) for r in snippet.highlighted()]
            shown = _whole_words(texts, snippet.fragment(), ranges, joined, parts)
            if not MARKED.search(shown):  # it marked only parts standing alone: where they stand together, if anywhere
                shown = _joined_snippet(texts, joined, parts)
        else:
            shown = _joined_snippet(texts, joined, parts) if joined else None
        if shown and (marks := words_marked(shown)) > most:
            best, most = shown, marks
    if best is not None:
        return best
    if near and (fragment := _near_snippet(doc, near)):
        return fragment
    text = doc.get_first("description") or doc.get_first("subject") or ""
    return html.escape(text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else ""))


MARKED = re.compile(r"<mark>(.*?)</mark>", re.DOTALL)  # a marked word of a snippet (HTML, escaped)


def words_marked(shown: str) -> int:
    """How many different words a snippet marks, each by its stem ("drops" and "dropping" are one word), joined
    up ("Wi-Fi" is one word); a marked run of Chinese or Japanese ("打印机", three words to the index) is one."""
    marked = (queries.joined(html.unescape(word)) for word in MARKED.findall(shown))
    # a word the analysis drops (40 bytes or more, which OpenSearch may still mark) counts as itself
    return len({stem for word in marked for stem in _counted(word)})


def _counted(word: str) -> list[str]:
    if queries.CJK_RUN.search(word):
        return [word.casefold()]
    return queries.ENGLISH.analyze(word) or [word.casefold()]


_WORD = re.compile(r"\w+")


def _near_snippet(doc: tantivy.Document, typed: list[str]) -> str | None:
    """The first text field's fragment around the words the fuzzy query took for the typed ones, marked."""
    for name in SNIPPET_FIELDS:
        for text in doc.get_all(name):
            spans = [(m.start(), m.end()) for m in _WORD.finditer(text) if _near(m.group(), typed)]
            if spans:
                return _window(text, spans)
    return None


_HYPHENATED = re.compile(rf"(?<![^\W_])(?>[^\W_]+)(?:[{queries.HYPHENS}][^\W_]+)+")  # a word with hyphens inside
_JOINABLE = re.compile(rf"(?<![^\W_])(?>[^\W_]+)(?:[{queries.HYPHENS}][^\W_]+)*")  # a word, with or without


def _joined_spans(text: str, joined: tuple[frozenset[str], frozenset[str]]) -> list[tuple[int, int]]:
    """Where `text` has a word that, joined up, is one the copies matched (`joined`: queries.joined_terms): a
    hyphenated one ("Wi-Fi" for "wifi"), and one as written when the typed word was hyphenated ("wifi" for
    "wi-fi", whose "wi" and "fi" are all tantivy's snippets know of). Only then is every word looked at."""
    together, unwritten = joined
    spans = []
    if queries.HYPHEN.search(text):  # (most texts have no such word: the quick look first)
        spans = [(m.start(), m.end()) for m in _HYPHENATED.finditer(text) if _joined_stem(m.group()) in together]
    if unwritten:
        words = (m for m in _JOINABLE.finditer(text) if not queries.HYPHEN.search(m.group()))
        spans += [(m.start(), m.end()) for m in words if _joined_stem(m.group()) in unwritten]
    return spans


@functools.lru_cache(maxsize=8192)
def _joined_stem(word: str) -> str | None:
    """A word's stem joined up, as its joined copy has it ("Wi-Fi" -> "wifi"); None when it is not one token."""
    stems = queries.ENGLISH.analyze(queries.joined(word))
    return stems[0] if len(stems) == 1 else None


def _joined_snippet(texts: list[str], joined, parts=None) -> str | None:
    """A field's fragment around the words its joined copy matched, or a typed word's parts standing together
    (`parts`), marked; None when it has none."""
    for text in texts:
        spans = (_joined_spans(text, joined) if joined else []) + (_parts_spans(text, parts[1]) if parts else [])
        if spans:
            return _window(text, sorted(spans))
    return None


_PART = queries.PART  # a run of letters or digits, or a Chinese character or kana: what the analysis cuts a word into


@functools.lru_cache(maxsize=8192)
def _stem(part: str) -> str | None:
    stems = queries.ENGLISH.analyze(part)
    return stems[0] if stems else None


def _parts_spans(text: str, sequences: tuple[tuple[str, ...], ...]) -> list[tuple[int, int]]:
    """Where `text` has each sequence of stems one after the other ("e-mail", "e mail" for ("e", "mail")), whole."""
    if not sequences:
        return []
    stems = [(m.start(), m.end(), stem) for m in _PART.finditer(text) if (stem := _stem(m.group()))]
    spans = []
    for sequence in sequences:
        size = len(sequence)
        for i in range(len(stems) - size + 1):
            if all(stems[i + k][2] == sequence[k] for k in range(size)):
                spans.append((stems[i][0], stems[i + size - 1][1]))
    return spans


def _alone(shown: str, ranges: list[tuple[int, int]], parts) -> list[tuple[int, int]]:
    """tantivy's marks (byte ranges of `shown`) without those of a part standing alone (queries.parts_looked_for),
    with each typed word's parts marked whole where they stand together."""
    if not parts or not parts[1]:
        return ranges
    raw = shown.encode()
    kept = [(a, b) for a, b in ranges if _stem(raw[a:b].decode(errors="replace")) not in parts[0]]
    return kept + _byte_ranges(shown, _parts_spans(shown, parts[1]))


def _window(text: str, spans: list[tuple[int, int]]) -> str:
    """The fragment of `text` from a little before its first span, the spans inside it marked."""
    start = max(spans[0][0] - SNIPPET_CHARS // 4, 0)
    window = text[start : start + SNIPPET_CHARS]
    inside = [(a - start, b - start) for a, b in spans if b - start <= len(window)]
    more = start + SNIPPET_CHARS < len(text)
    return ("…" if start else "") + _marked(window, _byte_ranges(window, inside)) + ("…" if more else "")


def _near(word: str, typed: list[str]) -> bool:
    """Whether the fuzzy query's rule (queries.fuzzy_distance) takes `word` for one of the typed words."""
    folded = queries.PLAIN.analyze(word)
    if len(folded) != 1:
        return False
    word = folded[0]
    for token in typed:
        allowed = queries.fuzzy_distance(token)
        if allowed and abs(len(word) - len(token)) <= allowed and _edits(word, token, allowed) <= allowed:
            return True
    return False


def _edits(a: str, b: str, bound: int) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions), bound + 1 once it is over `bound`."""
    before, row = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        before, row = row, current
    return row[-1]


CARRIED = 8  # punctuation a fragment's first or last word may carry into it ("<tag>", "(printer)", "ok?!")


def _whole_words(texts: list[str], fragment: str, ranges: list[tuple[int, int]], joined=None, parts=None) -> str:
    """tantivy's fragment, marked, with the punctuation its first and last words carry on the text's side
    ("<tag>", not "<tag": a fragment runs from a token's start to a token's end; at most CARRIED characters, and
    never a letter or digit of a word it cut), and "…" where the text goes on past it. The hyphenated words in
    it that a joined copy matched are marked whole (`joined`: the stems looked for there)."""
    text = next((text for text in texts if fragment in text), None)
    if text is None:
        ranges = _alone(fragment, ranges, parts)
        return _marked(fragment, ranges + _byte_ranges(fragment, _joined_spans(fragment, joined) if joined else []))
    at = text.index(fragment)
    start, end = at, at + len(fragment)
    while start > max(at - CARRIED, 0) and not text[start - 1].isspace() and not text[start - 1].isalnum():
        start -= 1
    while end < min(at + len(fragment) + CARRIED, len(text)) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    shift = len(text[start:at].encode())
    shown = text[start:end]
    ranges = _alone(shown, [(a + shift, b + shift) for a, b in ranges], parts)
    if joined:
        ranges += _byte_ranges(shown, _joined_spans(shown, joined))
    marked = _marked(shown, ranges)
    return ("…" if text[:start].strip() else "") + marked + ("…" if text[end:].strip() else "")


def _byte_ranges(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans of `text` as byte offsets in its UTF-8."""
    return [(len(text[:a].encode()), len(text[:b].encode())) for a, b in spans]


def _marked(fragment: str, ranges: list[tuple[int, int]]) -> str:
    """The ranges are byte offsets in the fragment's UTF-8; overlapping ones are marked as one ("Wi" and "Fi"
    marked by tantivy, "Wi-Fi" by hand: "<mark>Wi-Fi</mark>")."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:  # or touching: the characters of "打印机", each marked
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    raw, out, at = fragment.encode(), [], 0
    for start, end in merged:
        out.append(html.escape(raw[at:start].decode(errors="replace")))
        out.append("<mark>" + html.escape(raw[start:end].decode(errors="replace")) + "</mark>")
        at = end
    out.append(html.escape(raw[at:].decode(errors="replace")))
    return "".join(out)


def _source(found: tantivy.Document) -> dict:
    """A stored ticket as queries.similar_terms reads it."""
    doc = found.to_dict()
    fields = {name: values[0] for name, values in doc.items() if name != "messages"}
    return fields | {"messages": doc.get("messages", [])}
