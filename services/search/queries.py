"""How the words people type, and a ticket to compare, become tantivy queries (no I/O here).

`text_query` reads `q` as people type it: words (all of them wanted, most of them enough once there are
three or more, ranked by BM25), phrases in double quotes, a ticket number (`1234` or `#1234`), and with
`fuzzy` each word of 5 letters or more also matches its near misses. Each word and phrase is also looked for
joined up (`joined`: "wi-fi" as "wifi") in the text fields' joined copies, where "Wi-Fi" was indexed as "wifi".
A word is a run of letters and digits, but each Chinese character and Japanese kana is a word of its own (`WORD`):
those languages put no spaces between words, so a typed "打印机" is the phrase of its characters and is found
inside "我的打印机坏了".
`similar_query` is the more-like-this query behind "similar resolved tickets"; its weights are named constants,
to be tuned on a labelled set.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import tantivy

TEXT_FIELDS = ("subject", "description", "messages", "resolution")
BOOSTS = {"subject": 2.0, "description": 1.0, "messages": 1.0, "resolution": 0.7}
NUMBER_BOOST = 20.0  # a bare number is nearly always the ticket's number: that ticket first
LONGEST = 40  # bytes: the analysers drop a longer part (a hash, a link's token), and its place with it
FUZZY_MIN_LENGTH = 5  # shorter words have too many neighbours one edit away
HYPHENS = "-\u00ad\u2010\u2011"  # hyphen-minus, soft hyphen, hyphen, non-breaking hyphen
HYPHEN = re.compile(rf"[{HYPHENS}](?<=[^\W_][{HYPHENS}])(?=[^\W_])")  # between letters or digits: Wi-Fi, e-mail
COPY = "joined"  # a text field's joined copy: subject_joined (OpenSearch: the multi-field subject.joined)
REQUESTER = "requester"  # the requester's name: "Ana Ruiz" finds her tickets (a search's field, never similar's)
REQUESTER_BOOST = 1.0  # as a description's word
PHRASE = re.compile(r'"([^"]*)"?')  # an unclosed quote runs to the end: people forget the second one
# Double quotes as keyboards type them (phones and Macs: “ ”, German „ “, French « », full-width ＂): each a '"'
# (not ″, the inches' sign: 27″ monitor).
# Single ones stay: they are apostrophes in words (won't, O’Brien) far more often than quotes.
QUOTES = str.maketrans(dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\u301d\u301e\uff02", '"'))
NUMBER = re.compile(r"^[#＃]?(\d{1,18})$")  # and full-width, as Chinese and Japanese keyboards type them
# A token (in tantivy's regex syntax): a run of letters and digits, as tantivy's simple tokenizer cuts them
# (char::is_alphanumeric), except that a Chinese character or a kana is one on its own.
CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
WORD = rf"[\p{{Alphabetic}}\p{{N}}--[{CJK}]]+|[{CJK}]"
# the same in Python's re, which has no scripts: their blocks (the ideographs, kana, their compatibility forms)
CJK_CHARS = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fd-\u30ff"
    "\u31f0-\u31ff\u32d0-\u32fe\u3300-\u3357\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff6f\uff71-\uff9d"
    "\U0001b000-\U0001b16f\U00020000-\U0003ffff"
)
PART = re.compile(rf"[^\W_{CJK_CHARS}]+|[{CJK_CHARS}]")  # a part of a typed word or a text, as WORD cuts it
CJK_RUN = re.compile(rf"[{CJK_CHARS}]")

# similar's knobs, chosen on half of the labelled set in tests/data (benchmarks/similar_quality.py)
SIMILAR_SUBJECT_TF = 2.0  # a subject's word counts twice: the subject says what the problem is
SIMILAR_MAX_TERMS = 40  # the ticket's most distinctive words
SIMILAR_MIN_WORD_LENGTH = 3
SIMILAR_FIELDS = {"subject": 2.0, "description": 1.0, "messages": 1.0, "resolution": 1.0}  # where they are looked for
SIMILAR_FEEDBACK = 3  # the first tickets found, whose words are added (with_feedback)
SIMILAR_FEEDBACK_WEIGHT = 1.0
STOP_WORDS = frozenset(
    """a about after again all also am an and any are as at be been before being but by can could did do does doing
    down during each every few for from had has have having he her here hers him his how i if in into is it its just
    me more most my no nor not now of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours hi hello thanks thank please regards dear""".split()
)


def _words(cjk: bool) -> tantivy.Tokenizer:
    """WORD's tokens; without `cjk`, tantivy's simple tokenizer (a run of Chinese or Japanese is one token), with
    which indexes made before WORD were written."""
    return tantivy.Tokenizer.regex(WORD) if cjk else tantivy.Tokenizer.simple()


def english(*, cjk: bool = True) -> tantivy.TextAnalyzer:
    """Words, lowercased, accents folded (café -> cafe), English stems (printers -> printer)."""
    return (
        tantivy.TextAnalyzerBuilder(_words(cjk))
        .filter(tantivy.Filter.remove_long(LONGEST))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def plain(*, cjk: bool = True) -> tantivy.TextAnalyzer:
    """The words as written (lowercased, folded, no stems): what typos are measured against."""
    return (
        tantivy.TextAnalyzerBuilder(_words(cjk))
        .filter(tantivy.Filter.remove_long(LONGEST))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


ENGLISH, PLAIN = english(), plain()
# the analysers by the names an index's schema gives them (engine.SHAPES): "en" and "plain" in one made before WORD
TOKENIZERS = {"en2": ENGLISH, "plain2": PLAIN, "en": english(cjk=False), "plain": plain(cjk=False)}


def joined(text: str) -> str:
    """`text` with each hyphen inside a word taken out ("Wi-Fi" -> "WiFi", "e-mail" -> "email"): what a text
    field's joined copy indexes, so that "wifi" finds the "Wi-Fi" the analysis cuts in two."""
    return HYPHEN.sub("", text)


def copy_of(field: str) -> str:
    """The name of a text field's joined copy in the embedded index."""
    return f"{field}_{COPY}"


def split(q: str) -> tuple[list[str], list[str]]:
    """(phrases, loose words) of what was typed; a phrase in any kind of double quotes."""
    q = q.translate(QUOTES)
    phrases = [p.strip() for p in PHRASE.findall(q) if p.strip()]
    rest = PHRASE.sub(" ", q)
    return phrases, rest.split()


def _in_fields(
    schema: tantivy.Schema, written: list[str], together: list[str], copies: bool, requester: bool = False
) -> tantivy.Query:
    """`written` (a word's or phrase's stems, a phrase when several) in each text field and `together` (the same
    joined up) in its joined copy: the better of the two in each field, the best field counting (subject most),
    the others adding a little. A text with no hyphen inside a word scores about the same in its copy as written
    (the better one counts, never both): the copies barely move what never was hyphenated. `requester`: the
    index holds the requester's name, a field of its own."""
    per_field = []
    for f in TEXT_FIELDS:
        options = [_terms(schema, f, written)]
        if copies and together:
            options.append(_terms(schema, copy_of(f), together))
        best = options[0] if len(options) == 1 else tantivy.Query.disjunction_max_query(options, 0.0)
        per_field.append(tantivy.Query.boost_query(best, BOOSTS[f]))
    if requester:
        per_field.append(tantivy.Query.boost_query(_terms(schema, REQUESTER, written), REQUESTER_BOOST))
    return tantivy.Query.disjunction_max_query(per_field, 0.1)


def _terms(schema: tantivy.Schema, field: str, tokens: list[str]) -> tantivy.Query:
    if len(tokens) == 1:
        return tantivy.Query.term_query(schema, field, tokens[0])
    return tantivy.Query.phrase_query(schema, field, tokens)


# what people type before a ticket's number ("ticket 100042", "request no. 100042", "case #42"): not words to look
# for when what follows is a ticket's number as people write one: six digits or more (the numbers start at 100001),
# or any number after "#" ("concert tickets 2024" keeps its "tickets")
NUMBER_NAMES = frozenset({"ticket", "tickets", "request", "requests", "case", "number", "no", "no.", "nr", "nr.", "#"})
TICKET_NUMBER = re.compile(r"^(?:[#＃]\d{1,18}|\d{6,18})$")


def naming_numbers(words: list[str]) -> list[str]:
    """The typed words without those that only name the ticket number after them ("ticket 100042" looks for
    100042 alone): a word is dropped only before a run of such words that ends at a ticket's number."""
    kept: list[str] = []
    for word in reversed(words):
        if word.casefold() in NUMBER_NAMES and kept and TICKET_NUMBER.match(kept[-1]):
            continue  # kept[-1] is the number after it, or after the run of such words it starts
        kept.append(word)
    return list(reversed(kept))


# vowel-less words the stemmer leaves with their s that are no plurals, nor plurals of what their s-less form is
NOT_PLURALS = frozenset({"http", "https", "dns", "sms", "gps", "mms", "ios", "cmd", "tls"})
_NO_VOWEL_PLURAL = re.compile(r"^[b-df-hj-np-tv-z]{2,}(?<![sS])s$", re.IGNORECASE)  # VPNs, PCs, PDFs: the stemmer
# leaves their s (it takes one only after a vowel); "rss" is no plural
_NO_VOWEL = re.compile(r"^[b-df-hj-np-tv-z]{2,}(?<![sS])$", re.IGNORECASE)  # not "rss", "dns": they have no plural
PLURAL_BOOST = 0.5  # the other form counts less than the word as typed: "PCs" first finds "PCs"


def plural_of_letters(word: str) -> str | None:
    """An abbreviation's plural as the stemmer leaves it ("vpns"), and its singular: the other one of the two."""
    if word.casefold() in NOT_PLURALS or word.casefold().removesuffix("s") in NOT_PLURALS:
        return None
    if _NO_VOWEL_PLURAL.match(word):
        return word[:-1]
    if _NO_VOWEL.match(word):
        return word + "s"
    return None


def _word(
    schema: tantivy.Schema, word: str, fuzzy: bool, copies: bool = True, requester: bool = False
) -> tantivy.Query | None:
    """One typed word: its stems in any text field, or the ticket's number, or (fuzzy) a near miss. A word the
    analysis cuts in parts (ERR_CONN_RESET, won't, e-mail, <b>) is those parts in that order, as a phrase: any
    one of them alone ("reset", "t", "b") would find what it never meant; a hyphenated one is also itself joined
    up ("e-mail" finds "email" too). `copies`: the index has the joined copies (one made before them has not)."""
    word = without_possessive(word)
    tokens = ENGLISH.analyze(word)
    whole = None
    if in_parts(word):
        together = together_of(word)
        whole = _in_fields(schema, tokens, ENGLISH.analyze(together) if together else [], copies, requester)
    options = [whole] if whole is not None else [_in_fields(schema, [t], [t], copies, requester) for t in tokens]
    if (other := plural_of_letters(word)) and (stems := ENGLISH.analyze(other)):  # "VPNs" finds "VPN", and back
        options.append(tantivy.Query.boost_query(_in_fields(schema, stems, stems, copies, requester), PLURAL_BOOST))
    if number := NUMBER.match(word):
        options.append(
            tantivy.Query.boost_query(tantivy.Query.term_query(schema, "number", int(number[1])), NUMBER_BOOST)
        )
    if fuzzy and whole is None:  # a near miss of one part would be the part alone again
        for token in PLAIN.analyze(word):
            if distance := fuzzy_distance(token):
                options.append(tantivy.Query.fuzzy_term_query(schema, "plain", token, distance=distance))
    if not options:
        return None
    return (
        options[0] if len(options) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, o) for o in options])
    )


def together_of(word: str) -> str | None:
    """A typed word (or phrase) joined up, as its joined copies are searched; None when that joins parts into one
    the analysers drop (40 bytes or more): a phrase of what is left would find what it never meant."""
    together = joined(word)
    return None if any(len(part.encode()) >= LONGEST for part in PART.findall(together)) else together


def joined_terms(q: str) -> tuple[frozenset[str], frozenset[str]]:
    """The stems `q` looks for in the joined copies, and those of them it does not look for as written ("wi-fi"
    looks for "wifi" there, for "wi" and "fi" as written): a text's word that is one of them joined up is marked in
    its snippet ("wifi" marks "Wi-Fi"; "wi-fi" marks "wifi" too)."""
    phrases, words = split(q)
    texts = [*phrases, *map(without_possessive, words)]
    together = frozenset(t for text in texts for t in ENGLISH.analyze(joined(text)))
    return together, together - {t for text in texts for t in ENGLISH.analyze(text)}


def parts_looked_for(q: str) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """The typed words looked for as the phrase of their parts (`in_parts`: e-mail, ERR_CONN_RESET): the stems
    only those phrases look for, and each phrase's stems in order. tantivy's snippets mark a phrase's terms
    wherever they stand ("mail" in "Every mail" for "e-mail"): such a stem is marked only where its phrase is."""
    phrases, words = split(q)
    words = [without_possessive(word) for word in [*words, *(w for phrase in phrases for w in phrase.split())]]
    sequences = tuple(dict.fromkeys(tuple(ENGLISH.analyze(word)) for word in words if in_parts(word)))
    alone = {t for word in words if not in_parts(word) for t in ENGLISH.analyze(word)}
    return frozenset(t for sequence in sequences for t in sequence) - alone, sequences


def in_parts(word: str) -> bool:
    """Whether a typed word is searched as the phrase of its parts: it has several, and none that the analysers
    drop (the phrase would no longer line up with the text's; such a word's parts are looked for one by one)."""
    parts = PART.findall(word)
    return len(ENGLISH.analyze(word)) > 1 and all(len(part.encode()) < LONGEST for part in parts)


POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)


def without_possessive(word: str) -> str:
    """A typed word without its "'s": "printer's" is looked for as "printer", not as the phrase "printer s"."""
    return POSSESSIVE.sub("", word)


def fuzzy_distance(token: str) -> int:
    """The edits a typed word's near misses may be away (a transposition is one): 0, none, under 5 letters or with
    a digit (a ticket's number, an error code, a model: one digit off is another one, never a typo to forgive)."""
    if len(token) < FUZZY_MIN_LENGTH or any(c.isdigit() for c in token):
        return 0
    return 1 if len(token) < 8 else 2


def _phrase(schema: tantivy.Schema, phrase: str, copies: bool = True, requester: bool = False) -> tantivy.Query | None:
    tokens = ENGLISH.analyze(phrase)
    if not tokens:
        return None
    together = together_of(phrase)  # none when joining makes a part the analysers drop: the rest alone would match
    return _in_fields(schema, tokens, ENGLISH.analyze(together) if together else [], copies, requester)


def text_query(
    schema: tantivy.Schema, q: str, *, fuzzy: bool = False, copies: bool = True, requester: bool = False
) -> tantivy.Query | None:
    """The query for `q`; None when it holds no word at all (punctuation only). `copies`: whether the index has
    the text fields' joined copies (an index made before them is searched without); `requester`: whether it has
    the requester's name (one made before it is searched without)."""
    phrases, words = split(q)
    words = naming_numbers(words)
    musts = [p for p in (_phrase(schema, phrase, copies, requester) for phrase in phrases) if p is not None]
    shoulds = [
        w for w in (_word(schema, word, fuzzy, copies, requester) for word in dict.fromkeys(words)) if w is not None
    ]
    if not musts and not shoulds:
        return None
    clauses = [(tantivy.Occur.Must, m) for m in musts]
    if shoulds:
        wanted = len(shoulds) if len(shoulds) <= 2 else math.ceil(len(shoulds) * 0.75)
        clauses.append(
            (tantivy.Occur.Must, tantivy.Query.boolean_query([(tantivy.Occur.Should, s) for s in shoulds], wanted))
        )
    return clauses[0][1] if len(clauses) == 1 else tantivy.Query.boolean_query(clauses)


def similar_terms(doc: dict, searcher: tantivy.Searcher, *, with_resolution: bool = False) -> Counter[str]:
    """A ticket's distinctive stems, weighed: tf-idf, a subject's words counting SIMILAR_SUBJECT_TF times.

    `doc`: a ticket's document (subject, description, messages, and its resolution when `with_resolution`).
    Stop words, short words and numbers are left out, and words of no other ticket (they find nothing). At
    most SIMILAR_MAX_TERMS. (tantivy's own more-like-this query panics when deleted documents, every upsert's
    old version, make a term's document frequency exceed the live document count: this clamps it.)
    """
    thread = [doc.get("description") or "", *(doc.get("messages") or [])]
    if with_resolution:
        thread.append(doc.get("resolution") or "")
    counts: Counter[str] = Counter()
    for weight, texts in ((SIMILAR_SUBJECT_TF, [doc.get("subject") or ""]), (1.0, thread)):
        for text in texts:
            for word in PLAIN.analyze(text):
                if len(word) >= SIMILAR_MIN_WORD_LENGTH and word not in STOP_WORDS and not word.isdigit():
                    for stem in ENGLISH.analyze(word):
                        counts[stem] += weight
    total = max(searcher.num_docs, 1)
    scored: Counter[str] = Counter()
    for term, count in counts.items():
        frequency = min(max(searcher.doc_freq(f, term) for f in TEXT_FIELDS), total)
        if frequency >= 2:
            scored[term] = (1 + math.log(count)) * math.log(1 + (total - frequency + 0.5) / (frequency + 0.5))
    return Counter(dict(scored.most_common(SIMILAR_MAX_TERMS)))


def similar_query(schema: tantivy.Schema, terms: Counter[str]) -> tantivy.Query:
    """More like these weighed terms: each looked for in every text field (SIMILAR_FIELDS' weights), BM25.

    What to keep out (the ticket itself, open tickets, what the asker may not see) is the caller's filter.
    """
    if not terms:
        return tantivy.Query.empty_query()
    top = max(terms.values())
    clauses = [
        (tantivy.Occur.Should, tantivy.Query.boost_query(tantivy.Query.term_query(schema, f, t), w / top * boost))
        for t, w in terms.items()
        for f, boost in SIMILAR_FIELDS.items()
    ]
    return tantivy.Query.boolean_query(clauses)


def with_feedback(terms: Counter[str], found: list[Counter[str]]) -> Counter[str]:
    """`terms` and those of the first tickets found (each SIMILAR_FEEDBACK_WEIGHT shared among them): words
    the ticket does not use but tickets like it do (a requester says "tunnel", the agents wrote "VPN")."""
    merged = Counter(terms)
    for each in found:
        for term, weight in each.items():
            merged[term] += weight * SIMILAR_FEEDBACK_WEIGHT / len(found)
    return Counter(dict(merged.most_common(2 * SIMILAR_MAX_TERMS)))
