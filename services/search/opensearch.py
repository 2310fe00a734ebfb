"""OpenSearch as search's engine, for desks that outgrow one machine: the embedded Engine's interface and behaviour.

`OpenSearchEngine` answers as services/search/engine.py's Engine does (the same tests run against both:
tests/integration/test_search_opensearch_contract.py): the same analysis (words split on what is not a letter or
digit, lowercased, accents folded, Snowball English stems; each text field's joined copy, `<field>.joined`, the
same after a hyphen inside a word is taken out; a "plain" field without stems for typos), the same
reading of `q` (queries.split, the same minimum of words, the number first, fuzzy when fewer than FEW match), the
asker's rights in `bool.filter` (never counted, never scored). Writes are buffered and sent in one _bulk at
`commit`, then a refresh: as with tantivy, a change is findable once committed. `OpenSearchHome` keeps the
generations (services/search/index.py's IndexHome): one index each, the alias naming the one in use.

Similar tickets take their terms as the embedded engine does (queries.similar_terms, tuned on the labelled set):
the document frequencies come from the _mtermvectors API (`term_statistics`), not from `more_like_this`, whose own
choice of terms knows neither the subject's weight nor the feedback of the first tickets found. Term statistics
are a shard's: the index has one shard (100,000 tickets are a few hundred MB), so they are the whole index's.
"""

from __future__ import annotations

import html
import math
import uuid

from services.search import queries, semantic
from services.search.domain import SIMILAR_SPARE
from services.search.engine import (
    CLOSED,
    FEW,
    MARKED,
    SIMILAR_ITEM,
    SNIPPET_CHARS,
    SNIPPET_FIELDS,
    Scope,
    similar_items,
    words_marked,
)
from shared.clock import now
from shared.events import format_time, parse_time

KEYWORDS = ("ticket_id", "status", "team", "requester_email", "agent_id", "created_at", "resolved_at")
# queries.WORD in Java's regex: a token is a run of letters and digits, or a Chinese character or kana alone
CJK = r"\p{IsHan}\p{IsHiragana}\p{IsKatakana}"
WORD = rf"[\p{{L}}\p{{N}}&&[^{CJK}]]+|[{CJK}]"
HYPHEN = r"(?<=[\p{L}\p{N}])[\-\u00AD\u2010\u2011](?=[\p{L}\p{N}])"  # queries.HYPHEN: inside a word (Wi-Fi)
SETTINGS = {
    "number_of_shards": 1,  # term statistics (similar, BM25) are the whole index's
    "auto_expand_replicas": "0-1",  # a copy on a second node when there is one (none on a single node)
    "analysis": {
        "char_filter": {"joined_up": {"type": "pattern_replace", "pattern": HYPHEN, "replacement": ""}},
        "tokenizer": {"words": {"type": "pattern", "pattern": WORD, "group": 0}},  # the matches are the tokens
        "filter": {
            "not_long": {"type": "length", "max": 39},  # tantivy's remove_long(40)
            "english_stems": {"type": "snowball", "language": "English"},  # tantivy's stemmer("english")
        },
        "analyzer": {
            "english": {"tokenizer": "words", "filter": ["not_long", "lowercase", "asciifolding", "english_stems"]},
            "plain": {"tokenizer": "words", "filter": ["not_long", "lowercase", "asciifolding"]},
            "joined": {  # queries.joined, then the english analyzer: "Wi-Fi" is "wifi" (its offsets: "Wi-Fi")
                "char_filter": ["joined_up"],
                "tokenizer": "words",
                "filter": ["not_long", "lowercase", "asciifolding", "english_stems"],
            },
        },
    },
}
COPY = queries.COPY  # a text field's joined copy: the multi-field `<field>.joined`
JOINED_COPY = {"type": "text", "analyzer": "joined"}
MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        **{name: {"type": "keyword"} for name in KEYWORDS},
        "number": {"type": "long"},
        **{
            name: {"type": "text", "analyzer": "english", "copy_to": "plain", "fields": {COPY: JOINED_COPY}}
            for name in queries.TEXT_FIELDS
        },
        "plain": {"type": "text", "analyzer": "plain", "index_options": "freqs"},
        queries.REQUESTER: {"type": "text", "analyzer": "english"},  # searched, never a snippet nor similar's
    },
}
HIGHLIGHT = {
    "pre_tags": ["<mark>"],
    "post_tags": ["</mark>"],
    "encoder": "html",  # everything around the marks escaped
    "order": "score",
    "fields": {
        field: {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1}
        for name in SNIPPET_FIELDS
        for field in (name, f"{name}.{COPY}")  # the copy marks "Wi-Fi" whole where "wifi" found it
    },
}

SIMILAR_SOURCE = list(dict.fromkeys([*SIMILAR_ITEM, "status", *queries.TEXT_FIELDS]))  # its words, state, answer


def connect(url: str, ca: str | None = None):
    """An opensearch-py client (the optional extra: pip install 'ticketflow[opensearch]'); `ca`: a PEM file."""
    try:
        from opensearchpy import OpenSearch
    except ImportError:
        raise RuntimeError("TICKETFLOW_SEARCH_ENGINE=opensearch needs opensearch-py: ticketflow[opensearch]") from None
    return OpenSearch(hosts=[url], ca_certs=ca, timeout=30, max_retries=2, retry_on_timeout=True)


class OpenSearchEngine:
    """One index (`path`: its name, a generation of OpenSearchHome) through `client` (opensearch-py's)."""

    def __init__(self, client, path: str) -> None:
        self.client, self.path = client, path
        self._pending: dict[str, dict | None] = {}  # ticket_id -> its document, None: delete (until commit)

    # --- writing (the worker) ---------------------------------------------------------------------

    def upsert(self, doc: dict) -> None:
        self._pending[doc["ticket_id"]] = document(doc)

    def delete(self, ticket_id: str) -> None:
        self._pending[ticket_id] = None

    def commit(self) -> None:
        """The buffered writes in one _bulk, then a refresh: findable by every reader."""
        pending, self._pending = self._pending, {}
        if pending:
            lines: list[dict] = []
            for ticket_id, doc in pending.items():
                action = "delete" if doc is None else "index"
                lines.append({action: {"_index": self.path, "_id": ticket_id}})
                if doc is not None:
                    lines.append(doc)
            answer = self.client.bulk(body=lines)
            failed = [
                item for item in answer.get("items", []) for what, result in item.items()
                if result.get("status", 200) >= 300 and not (what == "delete" and result.get("status") == 404)
            ]  # fmt: skip
            if failed:
                self._pending = pending | self._pending  # tried again at the next commit
                raise RuntimeError(f"OpenSearch refused {len(failed)} writes, the first: {failed[0]}")
        self.client.indices.refresh(index=self.path)

    def take_writer(self) -> None:
        """OpenSearch has no writer lock: compose and k8s run one search worker."""

    def close(self) -> None:
        """Nothing to let go of: the client's connections are shared."""

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
        filters = [scope_filter(scope)]
        filters += [{"term": {name: value}} for name, value in (("status", status), ("team", team)) if value]
        page = {"from": offset, "size": limit, "track_total_hits": True}
        if not q.strip():
            body = page | {"query": {"bool": {"filter": filters}}, "sort": [{"number": "desc"}]}
            return self._hits(self.client.search(index=self.path, body=body))
        text = text_query(q)
        if text is None:
            return [], 0
        found = self._hits(self.client.search(index=self.path, body=page | search_body(text, filters)))
        if found[1] < FEW:
            fuzzy = text_query(q, fuzzy=True)
            body = page | search_body(fuzzy, filters, marked=near_misses(q, fuzzy))
            found = self._hits(self.client.search(index=self.path, body=body))
        return found

    def similar(self, ticket_id: str, *, scope: Scope, limit: int = 5) -> list[dict]:
        """Resolved and closed tickets most like this one (never itself); [] when the asker may not see it."""
        own = {"bool": {"filter": [{"term": {"ticket_id": ticket_id}}, scope_filter(scope)]}}
        hits = self.client.search(index=self.path, body={"query": own, "size": 1})["hits"]["hits"]
        if not hits:
            return []
        stats = TermStatistics(self.client, self.path, self.count())
        stats.learn([ticket_id])
        keep = [{"terms": {"status": list(CLOSED)}}, scope_filter(scope)]

        def search(terms, count: int) -> list[dict]:
            query = {"bool": {"should": similar_clauses(terms), "filter": keep,
                              "must_not": [{"term": {"ticket_id": ticket_id}}]}}  # fmt: skip
            body = {"query": query, "size": count, "_source": SIMILAR_SOURCE}
            return self.client.search(index=self.path, body=body)["hits"]["hits"]

        asked = source_of(hits[0])
        terms = queries.similar_terms(asked, stats)
        if not terms:
            return []
        first = search(terms, queries.SIMILAR_FEEDBACK)
        stats.learn([hit["_id"] for hit in first])
        found = [queries.similar_terms(source_of(hit), stats, with_resolution=True) for hit in first]
        hits = search(queries.with_feedback(terms, found), semantic.depth(limit + SIMILAR_SPARE))
        docs = [source_of(hit) for hit in hits]
        return similar_items(docs, semantic.rerank(asked, docs, [hit["_score"] for hit in hits], len(docs)), limit)

    def count(self) -> int:
        return self.client.count(index=self.path)["count"]

    def _hits(self, answer: dict) -> tuple[list[dict], int]:
        items = []
        for hit in answer["hits"]["hits"]:
            source, highlight = hit["_source"], hit.get("highlight") or {}
            items.append(
                {name: source.get(name) for name in ("ticket_id", "number", "subject", "status", "team")}
                | {"requester_name": source.get(queries.REQUESTER)}
                | {"snippet": snippet(source, highlight)}
                | {"score": round(hit.get("_score") or 0.0, 4)}
            )
        return items, answer["hits"]["total"]["value"]


class TermStatistics:
    """What queries.similar_terms asks a tantivy searcher (num_docs, doc_freq), from _mtermvectors."""

    def __init__(self, client, index: str, num_docs: int) -> None:
        self.client, self.index, self.num_docs = client, index, num_docs
        self._doc_freq: dict[tuple[str, str], int] = {}

    def learn(self, ids: list[str]) -> None:
        """The document frequencies of every term of these tickets."""
        if not ids:
            return
        answer = self.client.mtermvectors(
            index=self.index,
            body={"ids": ids, "parameters": {"fields": list(queries.TEXT_FIELDS), "term_statistics": True,
                                             "field_statistics": False, "positions": False, "offsets": False}},
        )  # fmt: skip
        for doc in answer.get("docs", []):
            for field, vectors in (doc.get("term_vectors") or {}).items():
                for term, stats in vectors.get("terms", {}).items():
                    self._doc_freq[(field, term)] = stats.get("doc_freq", 0)

    def doc_freq(self, field: str, term: str) -> int:
        return self._doc_freq.get((field, term), 0)


def document(doc: dict) -> dict:
    """The indexed document: engine.py's fields (an email lowercased, blank parts left out)."""
    fields: dict = {name: doc[name] for name in KEYWORDS if doc.get(name)}
    if fields.get("requester_email"):
        fields["requester_email"] = fields["requester_email"].strip().lower()
    fields["number"] = int(doc["number"])
    for name in ("subject", "description", "resolution"):
        if doc.get(name):
            fields[name] = doc[name]
    messages = [m for m in doc.get("messages") or [] if m]
    if messages:
        fields["messages"] = messages
    if doc.get("requester_name"):
        fields[queries.REQUESTER] = doc["requester_name"]
    return fields


def scope_filter(scope: Scope) -> dict:
    if scope.everything:
        return {"match_all": {}}
    if scope.requester_email:
        own = [{"term": {"requester_email": scope.requester_email.strip().lower()}}]
        one = [{"term": {"ticket_id": scope.ticket_id}}] if scope.ticket_id is not None else []
        return {"bool": {"filter": own + one}}
    mine = []
    if scope.teams:
        mine.append({"terms": {"team": sorted(scope.teams)}})
    if scope.agent_id:
        mine.append({"term": {"agent_id": scope.agent_id}})
    if not mine:
        return {"match_none": {}}
    return {"bool": {"should": mine, "minimum_should_match": 1}}


def _in_fields(written: tuple[str, str], together: tuple[str, str] | None) -> dict:
    """queries._in_fields: `written` ((kind, text): a `match` or `match_phrase` and its words) in each text field,
    `together` (the same joined up) in its joined copy, the better of the two in each field; the best field
    counting (subject most), the others adding a little."""
    per_field = []
    for f in queries.TEXT_FIELDS:
        kind, text = written
        best = {kind: {f: {"query": text, "boost": queries.BOOSTS[f]}}}
        if together:
            kind, text = together
            joined = {kind: {f"{f}.{COPY}": {"query": text, "boost": queries.BOOSTS[f]}}}
            best = {"dis_max": {"queries": [best, joined]}}
        per_field.append(best)
    kind, text = written
    per_field.append({kind: {queries.REQUESTER: {"query": text, "boost": queries.REQUESTER_BOOST}}})
    return {"dis_max": {"queries": per_field, "tie_breaker": 0.1}}


def _plain(text: str) -> str:
    """The words of `text` as the analysers split them (a part of 40 bytes or more dropped), for OpenSearch to
    analyse again: what tantivy's query is made of."""
    return " ".join(queries.PLAIN.analyze(text))


def _phrase_or_word(text: str | None) -> tuple[str, str] | None:
    """A `match_phrase` of the words of `text`, a `match` when there is one; None when there is none."""
    words = _plain(text) if text else ""
    if not words:
        return None
    return ("match_phrase" if " " in words else "match", words)


def _word(word: str, fuzzy: bool) -> dict | None:
    """queries._word: its stems in any text field, or the ticket's number, or (fuzzy) a near miss."""
    options, word = [], queries.without_possessive(word)
    if queries.ENGLISH.analyze(word):  # the words tantivy's analysis keeps (never punctuation alone)
        if queries.in_parts(word):  # a word cut in parts: those parts in order, or the word joined up
            options.append(_in_fields(("match_phrase", _plain(word)), _phrase_or_word(queries.together_of(word))))
        else:
            options.append(_in_fields(("match", _plain(word)), ("match", _plain(word))))
    if other := queries.plural_of_letters(word):  # "VPNs" finds "VPN", and back
        plural = _in_fields(("match", _plain(other)), ("match", _plain(other)))
        options.append({"dis_max": {**plural["dis_max"], "boost": queries.PLURAL_BOOST}})
    if number := queries.NUMBER.match(word):
        options.append({"term": {"number": {"value": int(number[1]), "boost": queries.NUMBER_BOOST}}})
    if fuzzy and not queries.in_parts(word):  # a near miss of one part would be the part alone
        for token in queries.PLAIN.analyze(word):
            if distance := queries.fuzzy_distance(token):
                options.append({"fuzzy": {"plain": {"value": token, "fuzziness": distance, "transpositions": True}}})
    if not options:
        return None
    return options[0] if len(options) == 1 else {"bool": {"should": options}}


def text_query(q: str, *, fuzzy: bool = False) -> dict | None:
    """queries.text_query as OpenSearch's query DSL; None when `q` holds no word at all."""
    phrases, words = queries.split(q)
    words = queries.naming_numbers(words)
    musts = [
        _in_fields(("match_phrase", _plain(p)), _phrase_or_word(queries.together_of(p)))
        for p in phrases
        if queries.ENGLISH.analyze(p)
    ]
    shoulds = [w for w in (_word(word, fuzzy) for word in dict.fromkeys(words)) if w is not None]
    if not musts and not shoulds:
        return None
    if shoulds:
        wanted = len(shoulds) if len(shoulds) <= 2 else math.ceil(len(shoulds) * 0.75)
        musts.append({"bool": {"should": shoulds, "minimum_should_match": wanted}})
    return musts[0] if len(musts) == 1 else {"bool": {"must": musts}}


def search_body(text: dict, filters: list[dict], marked: dict | None = None) -> dict:
    """The query and its highlighting; `marked`: what to mark when it is not the query's own terms."""
    highlight = HIGHLIGHT if marked is None else HIGHLIGHT | {"highlight_query": marked}
    return {
        "query": {"bool": {"must": [text], "filter": filters}},
        "highlight": highlight,
        "sort": ["_score", {"number": "desc"}],  # equal scores newest first, as the embedded engine
    }


def near_misses(q: str, fuzzy: dict) -> dict:
    """What the fuzzy round marks: its own terms, and each typed word's near misses in the shown fields (the
    query looks for them in `plain`, which is not shown), as the embedded engine marks them by hand."""
    tokens = dict.fromkeys(t for word in queries.split(q)[1] for t in queries.PLAIN.analyze(word))
    near = [
        {"fuzzy": {name: {"value": token, "fuzziness": distance, "transpositions": True}}}
        for token in tokens
        if (distance := queries.fuzzy_distance(token))
        for name in SNIPPET_FIELDS
    ]
    return {"bool": {"should": [fuzzy, *near]}}


def similar_clauses(terms) -> list[dict]:
    """queries.similar_query: each weighed term in every text field (SIMILAR_FIELDS' weights)."""
    top = max(terms.values())
    return [
        {"term": {f: {"value": t, "boost": w / top * boost}}}
        for t, w in terms.items()
        for f, boost in queries.SIMILAR_FIELDS.items()
    ]


def snippet(source: dict, highlight: dict) -> str:
    """HTML: the fragment of the field that marks the most different words (OpenSearch escaped it; of two fields
    that mark as many, the first of SNIPPET_FIELDS), with "…" where it starts after or ends before its text, as
    the embedded engine writes its fragments; else the description's start. A field and its joined copy each
    have their fragment: the one marking more is the field's ("<mark>Wi-Fi</mark> drops" from the copy for "wifi
    drops", where the field marks only "drops"; "e-<mark>mail</mark>" from the field for "mail", which the copy,
    holding "email", does not mark)."""
    best, most = None, 0
    for name in SNIPPET_FIELDS:
        fragments = [
            found[0].replace("</mark><mark>", "")  # touching marks as one: the characters of "打印机", each marked
            for found in (highlight.get(name), highlight.get(f"{name}.{COPY}"))
            if found
        ]
        if fragments and (marks := words_marked(chosen := max(fragments, key=_marked_length))) > most:
            best, most = (name, chosen), marks
    if best is not None:
        return _with_cut_marks(_within(best[1]), source.get(best[0]))
    text = source.get("description") or source.get("subject") or ""
    return html.escape(text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else ""))


def _marked_length(fragment: str) -> int:
    """How many characters of the text a fragment marks (the first of two that mark as many wins)."""
    return sum(len(html.unescape(marked)) for marked in MARKED.findall(fragment))


def _within(fragment: str) -> str:
    """`fragment` cut to about SNIPPET_CHARS of text around its first mark when it is far longer: the highlighter
    never cuts inside a word, so a word of thousands of letters (a token, a dump) comes whole. A fragment a word
    past SNIPPET_CHARS (the highlighter's usual) is left as it is; the cut falls on a space where one is near."""
    parts = [(html.unescape(text), marked) for text, marked in _pieces(fragment)]
    text = "".join(piece for piece, _ in parts)
    if len(text) <= 2 * SNIPPET_CHARS:
        return fragment
    first = next((i for i, (_, marked) in enumerate(parts) if marked), 0)
    before = sum(len(piece) for piece, _ in parts[:first])
    start = _space_near(text, max(before - SNIPPET_CHARS // 4, 0), before, forward=True)
    end = _space_near(text, start + SNIPPET_CHARS, start + SNIPPET_CHARS // 2, forward=False)
    kept, at = [], 0
    for piece, marked in parts:
        shown = piece[max(start - at, 0) : max(end - at, 0)]
        at += len(piece)
        if shown:
            kept.append(f"<mark>{html.escape(shown, quote=True)}</mark>" if marked else html.escape(shown, quote=True))
    return "".join(kept)


def _space_near(text: str, at: int, limit: int, *, forward: bool) -> int:
    """Where a cut at `at` moves to just after (forward) or at (back) a space, not past `limit`; `at` if none."""
    if at <= 0 or at >= len(text) or text[at - 1] == " ":
        return at  # the text's start or end, or already after a space
    if forward:
        found = text.find(" ", at, limit)
        return found + 1 if found >= 0 else at
    found = text.rfind(" ", limit, at)
    return found if found >= 0 else at


def _pieces(fragment: str) -> list[tuple[str, bool]]:
    """A fragment's escaped text, cut at its marks: (text, marked) each."""
    pieces, at = [], 0
    for found in MARKED.finditer(fragment):
        pieces += [(fragment[at : found.start()], False), (found.group(1), True)]
        at = found.end()
    return [piece for piece in [*pieces, (fragment[at:], False)] if piece[0]]


def _with_cut_marks(fragment: str, value) -> str:
    """`fragment` (escaped HTML with <mark>s) with "…" on each side its field's text goes on past it."""
    shown = html.unescape(fragment.replace("<mark>", "").replace("</mark>", "")).strip()
    for text in value if isinstance(value, list) else [value or ""]:
        at = text.find(shown)
        if at >= 0:
            return ("…" if text[:at].strip() else "") + fragment + ("…" if text[at + len(shown) :].strip() else "")
    return fragment


def source_of(hit: dict) -> dict:
    """A stored ticket as queries.similar_terms reads it."""
    return hit["_source"] | {"messages": hit["_source"].get("messages", [])}


class OpenSearchHome:
    """IndexHome's generations in OpenSearch: indices `<namespace>-search-<stamp>`, the alias naming the one in use.

    The marks (IndexHome.read_mark, write_mark) are kept in each index's mapping, under `_meta`.
    """

    def __init__(self, client, namespace: str) -> None:
        self.client, self.alias = client, f"{namespace}-search"

    def open(self, path: str, *, create: bool = True) -> OpenSearchEngine:
        if not create and not self.client.indices.exists(index=path):
            raise FileNotFoundError(path)
        return OpenSearchEngine(self.client, path)

    def outdated(self, path: str) -> bool:
        """Whether index `path` was made with earlier mappings (without the text fields' joined copies, or the
        requester's name) or settings (a run of Chinese or Japanese one word): the worker builds a new one when it
        starts. Until then it is searched as it is (the copies' and the name's clauses find nothing; such a run is
        found whole only)."""
        mapping = self.client.indices.get_mapping(index=path).get(path, {}).get("mappings", {})
        fields = mapping.get("properties", {})
        if any(COPY not in fields.get(name, {}).get("fields", {}) for name in queries.TEXT_FIELDS):
            return True
        if queries.REQUESTER not in fields:  # made before the requester's name
            return True
        settings = self.client.indices.get_settings(index=path).get(path, {}).get("settings", {})
        tokenizer = settings.get("index", {}).get("analysis", {}).get("tokenizer", {}).get("words", {})
        return tokenizer.get("pattern") != WORD

    def current(self) -> str | None:
        """The index the alias names (one request: every search asks, as the embedded one reads its symlink)."""
        try:
            found = self.client.indices.get_alias(name=self.alias)
        except Exception as error:  # opensearchpy.NotFoundError, without importing the optional package here
            if getattr(error, "status_code", None) == 404:
                return None
            raise
        return next(iter(found), None)

    def new_generation(self) -> str:
        name = f"{self.alias}-{now().strftime('%Y%m%dt%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.client.indices.create(index=name, body={"settings": SETTINGS, "mappings": MAPPINGS})
        return name

    def switch(self, path: str) -> None:
        """Move the alias to `path` in one request (readers see the old index or the new one, never none)."""
        previous = self.current()
        actions = [{"remove": {"index": previous, "alias": self.alias}}] if previous and previous != path else []
        self.client.indices.update_aliases(body={"actions": [*actions, {"add": {"index": path, "alias": self.alias}}]})

    def discard(self, path: str) -> None:
        """Delete an index never made current (a build that failed)."""
        self.client.indices.delete(index=path, ignore_unavailable=True)

    def prune(self, keep: set[str]) -> None:
        for name in self.client.indices.get(index=f"{self.alias}-*"):
            if name not in keep:
                self.client.indices.delete(index=name)

    def read_mark(self, path: str, name: str):
        meta = self.client.indices.get_mapping(index=path).get(path, {}).get("mappings", {}).get("_meta", {})
        return parse_time(meta[name]) if meta.get(name) else None

    def write_mark(self, path: str, **marks) -> None:
        meta = self.client.indices.get_mapping(index=path).get(path, {}).get("mappings", {}).get("_meta", {})
        meta = meta | {name: format_time(at) for name, at in marks.items()}
        self.client.indices.put_mapping(index=path, body={"_meta": meta})
