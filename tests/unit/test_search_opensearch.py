"""The OpenSearch engine's requests, without a server: a fake client records each call and answers as told.

What the requests do on a real cluster is tests/integration/test_search_opensearch_contract.py's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.search import semantic
from services.search.domain import SIMILAR_SPARE
from services.search.engine import SNIPPET_CHARS, SNIPPET_FIELDS, Scope
from services.search.handlers import index_home
from services.search.index import IndexHome
from services.search.opensearch import MAPPINGS, SETTINGS, SIMILAR_SOURCE, OpenSearchEngine, OpenSearchHome
from shared.config import ConfigError, load_settings

EVERYONE = Scope(everything=True)


def hit(ticket_id: str, **source) -> dict:
    source = {"ticket_id": ticket_id, "number": 1, "subject": "VPN down", "status": "resolved"} | source
    return {"_id": ticket_id, "_score": 1.5, "_source": source}


def answer(*hits: dict, total: int | None = None) -> dict:
    return {"hits": {"total": {"value": len(hits) if total is None else total}, "hits": list(hits)}}


class FakeClient:
    """opensearch-py's client as far as the engine uses it: `calls` (name, kwargs); `answers[name]` in turn."""

    def __init__(self, **answers) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.answers = {name: list(values) for name, values in answers.items()}
        self.indices = _Namespace(self, "indices.")

    def __getattr__(self, name: str):
        return _Namespace(self, "").__getattr__(name)

    def searches(self) -> list[dict]:
        return [kwargs["body"] for name, kwargs in self.calls if name == "search"]


class _Namespace:
    def __init__(self, client: FakeClient, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def __getattr__(self, name: str):
        def call(**kwargs):
            full = self.prefix + name
            self.client.calls.append((full, kwargs))
            queued = self.client.answers.get(full)
            return queued.pop(0) if queued else {}

        return call


def search_with(q: str, *answers: dict, **options) -> tuple[list[dict], FakeClient]:
    client = FakeClient(search=list(answers) or [answer(hit("a"), hit("b"), hit("c"))])
    items, _ = OpenSearchEngine(client, "idx").search(q, scope=options.pop("scope", EVERYONE), **options)
    return items, client


def words_of(body: dict) -> dict:
    """The bool of loose words inside a search body."""
    return body["query"]["bool"]["must"][0]["bool"]


def test_the_index_is_made_with_english_stems_folding_a_plain_field_and_keyword_fields():
    client = FakeClient()
    name = OpenSearchHome(client, "tf").new_generation()
    [(call, kwargs)] = client.calls
    assert call == "indices.create" and kwargs["index"] == name and name.startswith("tf-search-")
    assert kwargs["body"] == {"settings": SETTINGS, "mappings": MAPPINGS}
    english = SETTINGS["analysis"]["analyzer"]["english"]
    assert english["filter"][1:] == ["lowercase", "asciifolding", "english_stems"]
    assert SETTINGS["analysis"]["filter"]["english_stems"] == {"type": "snowball", "language": "English"}
    assert "english_stems" not in SETTINGS["analysis"]["analyzer"]["plain"]["filter"]
    fields = MAPPINGS["properties"]
    assert {fields[k]["type"] for k in ("ticket_id", "status", "team", "requester_email", "agent_id")} == {"keyword"}
    assert fields["number"] == {"type": "long"}
    assert fields["subject"] == {
        "type": "text",
        "analyzer": "english",
        "copy_to": "plain",
        "fields": {"joined": {"type": "text", "analyzer": "joined"}},
    }
    assert fields["plain"]["analyzer"] == "plain" and SETTINGS["number_of_shards"] == 1


def test_two_words_are_both_wanted_in_any_text_field_the_subject_counting_most():
    _, client = search_with("Router drops")
    [body] = client.searches()
    words = words_of(body)
    assert words["minimum_should_match"] == 2 and len(words["should"]) == 2
    field_queries = words["should"][0]["dis_max"]["queries"]
    assert {
        "dis_max": {
            "queries": [
                {"match": {"subject": {"query": "router", "boost": 2.0}}},
                {"match": {"subject.joined": {"query": "router", "boost": 2.0}}},  # as written, or joined up
            ]
        }
    } in field_queries
    assert field_queries[-1] == {"match": {"requester": {"query": "router", "boost": 1.0}}}  # a requester's name
    assert len(field_queries) == 5 and words["should"][0]["dis_max"]["tie_breaker"] == 0.1
    assert body["track_total_hits"] is True and body["from"] == 0 and body["size"] == 20


def test_four_words_need_three_of_them():
    _, client = search_with("outlook calendar zebra crashes")
    assert words_of(client.searches()[0])["minimum_should_match"] == 3


def test_a_phrase_is_a_match_phrase_that_must_match():
    _, client = search_with('"screen goes black" monday')
    musts = client.searches()[0]["query"]["bool"]["must"][0]["bool"]["must"]
    assert musts[0]["dis_max"]["queries"][0]["dis_max"]["queries"][0] == {
        "match_phrase": {"subject": {"query": "screen goes black", "boost": 2.0}}
    }
    assert musts[1]["bool"]["minimum_should_match"] == 1


def test_a_phrase_that_joined_up_has_a_part_the_analysers_drop_is_not_looked_for_joined_up():
    long = "a" * 20 + "-" + "b" * 20
    _, client = search_with(f'"{long} drops"')
    query = client.searches()[0]["query"]
    assert "bbbb drops" in str(query) and ".joined" not in str(query)  # "drops" alone there: what it never meant
    _, client = search_with('"wi-fi drops"')
    assert "subject.joined" in str(client.searches()[0]["query"])


def test_a_number_also_looks_for_that_ticket_boosted():
    _, client = search_with("#100042")
    [word] = words_of(client.searches()[0])["should"]
    options = word["bool"]["should"]
    assert "dis_max" in options[0] and {"term": {"number": {"value": 100042, "boost": 20.0}}} in options


def test_the_words_before_a_number_name_it_and_an_abbreviation_s_plural_is_looked_for_both_ways():
    from services.search.opensearch import text_query

    assert text_query("ticket #100042") == text_query("#100042")  # as the embedded engine reads them
    assert text_query("request no. 100042 printer") == text_query("100042 printer")
    assert "vpn" in str(text_query("VPNs")) and "vpns" in str(text_query("VPNs"))
    assert "vpns" in str(text_query("vpn")) and "'rs'" not in str(text_query("rss"))
    assert "rsss" not in str(text_query("rss")) and "https" not in str(text_query("http"))
    assert text_query("concert tickets 2024") != text_query("concert 2024")  # no ticket's number: a word


def fuzzies(query) -> list[dict]:
    """Every fuzzy clause in a query, wherever it is."""
    if isinstance(query, dict):
        return [query["fuzzy"]] if "fuzzy" in query else [f for value in query.values() for f in fuzzies(value)]
    return [f for value in query for f in fuzzies(value)] if isinstance(query, list) else []


def test_fewer_than_three_found_asks_again_forgiving_typos_in_long_words_only():
    items, client = search_with("printr mial", answer(), answer(hit("a")))
    exact, fuzzy = client.searches()
    assert fuzzies(exact) == []
    wanted = {"value": "printr", "fuzziness": 1, "transpositions": True}  # not "mial"
    assert fuzzies(fuzzy["query"]) == [{"plain": wanted}]
    marked = fuzzies(fuzzy["highlight"]["highlight_query"])  # marked in the fields a snippet shows, too
    assert marked == [{"plain": wanted}] + [{name: wanted} for name in SNIPPET_FIELDS]
    assert [item["ticket_id"] for item in items] == ["a"]


def test_a_long_word_gets_two_edits():
    _, client = search_with("keybaord", answer(), answer())
    assert fuzzies(client.searches()[1]["query"]) == [
        {"plain": {"value": "keybaord", "fuzziness": 2, "transpositions": True}}
    ]


def test_three_found_are_enough_no_second_request():
    _, client = search_with("printer")
    assert len(client.searches()) == 1


def test_equal_scores_come_newest_first_as_in_the_embedded_engine():
    _, client = search_with("printer")
    assert client.searches()[0]["sort"] == ["_score", {"number": "desc"}]


def test_punctuation_alone_asks_nothing():
    items, client = search_with("***")
    assert items == [] and client.calls == []


def test_highlight_marks_with_mark_and_escapes_the_rest():
    _, client = search_with("printer")
    highlight = client.searches()[0]["highlight"]
    assert highlight["pre_tags"] == ["<mark>"] and highlight["post_tags"] == ["</mark>"]
    assert highlight["encoder"] == "html"
    assert list(highlight["fields"])[::2] == ["description", "messages", "resolution", "subject"]
    assert list(highlight["fields"])[1::2] == ["description.joined", "messages.joined", "resolution.joined",
                                               "subject.joined"]  # fmt: skip


def test_the_snippet_is_the_first_highlighted_field_else_the_description_escaped():
    marked = hit("a", description="x") | {"highlight": {"messages": ["the <mark>printer</mark> &amp; me"]}}
    plain = hit("b", description="<b>no</b> match")
    items, _ = search_with("printer", answer(marked, plain, hit("c")))
    assert items[0]["snippet"] == "the <mark>printer</mark> &amp; me"
    assert items[1]["snippet"] == "&lt;b&gt;no&lt;/b&gt; match"


def test_filters_and_scope_are_in_bool_filter_never_scored():
    _, client = search_with(
        "vpn", scope=Scope(teams=frozenset({"net", "apps"}), agent_id="jane"), status="new", team="net"
    )
    filters = client.searches()[0]["query"]["bool"]["filter"]
    assert filters == [
        {"bool": {"should": [{"terms": {"team": ["apps", "net"]}}, {"term": {"agent_id": "jane"}}],
                  "minimum_should_match": 1}},
        {"term": {"status": "new"}},
        {"term": {"team": "net"}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (EVERYONE, {"match_all": {}}),
        (Scope(), {"match_none": {}}),
        (Scope(agent_id="jane"), {"bool": {"should": [{"term": {"agent_id": "jane"}}], "minimum_should_match": 1}}),
        (
            Scope(requester_email=" Ana@Example.com"),
            {"bool": {"filter": [{"term": {"requester_email": "ana@example.com"}}]}},
        ),
        (
            Scope(requester_email="ana@example.com", ticket_id="t1"),
            {"bool": {"filter": [{"term": {"requester_email": "ana@example.com"}}, {"term": {"ticket_id": "t1"}}]}},
        ),
    ],
)
def test_each_scope_becomes_its_filter(scope, expected):
    _, client = search_with("vpn", scope=scope)
    assert client.searches()[0]["query"]["bool"]["filter"] == [expected]


def test_a_blank_q_lists_the_tickets_in_scope_newest_first_with_limit_and_offset():
    _, client = search_with("  ", limit=5, offset=10)
    [body] = client.searches()
    assert body["sort"] == [{"number": "desc"}] and body["from"] == 10 and body["size"] == 5
    assert body["query"] == {"bool": {"filter": [{"match_all": {}}]}} and "highlight" not in body


def test_writes_wait_for_commit_then_go_in_one_bulk_and_a_refresh():
    client = FakeClient(bulk=[{"items": [{"index": {"status": 201}}, {"delete": {"status": 404}}]}])
    engine = OpenSearchEngine(client, "idx")
    engine.upsert({"ticket_id": "a", "number": "7", "subject": "S", "description": "D", "messages": ["m", ""],
                   "requester_email": " Ana@Example.com ", "agent_id": None, "resolution": None})  # fmt: skip
    engine.upsert({"ticket_id": "a", "number": 7, "subject": "S2", "description": "D", "messages": [],
                   "requester_name": "Ana Ruiz"})  # fmt: skip
    engine.delete("b")
    assert client.calls == []
    engine.commit()
    (bulk, kwargs), (refresh, refreshed) = client.calls
    assert bulk == "bulk" and refresh == "indices.refresh" and refreshed == {"index": "idx"}
    assert kwargs["body"] == [
        {"index": {"_index": "idx", "_id": "a"}},
        {"ticket_id": "a", "number": 7, "subject": "S2", "description": "D", "requester": "Ana Ruiz"},
        {"delete": {"_index": "idx", "_id": "b"}},
    ]
    assert MAPPINGS["properties"]["requester"] == {"type": "text", "analyzer": "english"}  # never a snippet


def test_a_refused_write_is_sent_again_at_the_next_commit():
    client = FakeClient(bulk=[{"items": [{"index": {"status": 429}}]}, {"items": [{"index": {"status": 200}}]}])
    engine = OpenSearchEngine(client, "idx")
    engine.upsert({"ticket_id": "a", "number": 1, "subject": "S", "description": "D"})
    with pytest.raises(RuntimeError):
        engine.commit()
    engine.commit()
    assert [name for name, _ in client.calls] == ["bulk", "bulk", "indices.refresh"]


def test_similar_weighs_terms_by_term_vectors_and_keeps_out_itself_open_and_hidden_tickets(monkeypatch):
    monkeypatch.setenv(semantic.SWITCH, "off")  # the lexical order and scores (the re-rank: the test below)
    vectors = {"docs": [{"term_vectors": {"subject": {"terms": {"vpn": {"doc_freq": 3}, "drop": {"doc_freq": 2}}}}}]}
    source = hit("new", subject="VPN drops", description="The VPN drops", status="new")
    client = FakeClient(
        search=[answer(source), answer(hit("done")), answer(hit("done", resolution="New profile"))],
        count=[{"count": 10}],
        mtermvectors=[vectors, vectors],
    )
    scope = Scope(teams=frozenset({"net"}))
    found = OpenSearchEngine(client, "idx").similar("new", scope=scope, limit=4)
    assert found == [
        {"ticket_id": "done", "number": 1, "subject": "VPN down", "resolution": "New profile", "resolved_at": None,
         "score": 1.5}
    ]  # fmt: skip
    own, first, final = client.searches()
    assert own["query"]["bool"]["filter"][0] == {"term": {"ticket_id": "new"}} and own["size"] == 1
    for body in (first, final):
        query = body["query"]["bool"]
        assert query["must_not"] == [{"term": {"ticket_id": "new"}}]
        assert query["filter"] == [
            {"terms": {"status": ["resolved", "closed"]}},
            {"bool": {"should": [{"terms": {"team": ["net"]}}], "minimum_should_match": 1}},
        ]
    assert first["size"] == 3 and final["size"] == 4 + SIMILAR_SPARE  # the words alone: the answer and spares
    assert first["_source"] == final["_source"] == SIMILAR_SOURCE  # not each candidate's every field
    terms = {next(iter(c["term"].values()))["value"] for c in first["query"]["bool"]["should"]}
    assert terms == {"vpn", "drop"}
    assert {"term": {"subject": {"value": "drop", "boost": 2.0}}} in first["query"]["bool"]["should"]
    [(_, asked)] = [call for call in client.calls if call[0] == "mtermvectors"][:1]
    assert asked["body"]["ids"] == ["new"] and asked["body"]["parameters"]["term_statistics"] is True


def test_similar_orders_the_candidates_by_words_and_meaning_together():
    assert semantic.embedder() is not None, "the `similar` extra is missing: pip install -e '.[dev]'"
    vectors = {"docs": [{"term_vectors": {"subject": {"terms": {"vpn": {"doc_freq": 3}}}}}]}
    source = hit("new", subject="VPN drops", description="The VPN tunnel keeps disconnecting from home", status="new")
    wifi = hit("wifi", subject="Wi-Fi at home", description="My home link keeps dropping out", resolution="Reset")
    printer = hit("printer", subject="Printer", description="The printer on floor 3 jams", resolution="Cleared")
    tunnel = hit("tunnel", subject="AnyConnect", description="The VPN client disconnects every few minutes at home",
                 resolution="New VPN profile")  # fmt: skip
    wifi["_score"], tunnel["_score"], printer["_score"] = 2.0, 1.0, 0.5  # the words put Wi-Fi first
    client = FakeClient(
        search=[answer(source), answer(wifi), answer(wifi, tunnel, printer)],
        count=[{"count": 10}],
        mtermvectors=[vectors, vectors],
    )
    found = OpenSearchEngine(client, "idx").similar("new", scope=Scope(everything=True), limit=5)
    assert [item["ticket_id"] for item in found] == ["tunnel", "wifi"]  # the printer: far in meaning, left out
    assert client.searches()[-1]["size"] == semantic.DEPTH  # the candidates the meaning re-ranks
    k, w = semantic.FUSION_K, semantic.WEIGHT  # the tunnel: lexical rank 1, meaning rank 0; Wi-Fi: 0 and 1
    assert [item["score"] for item in found] == [round(1 / (k + 1) + w / k, 6), round(1 / k + w / (k + 1), 6)]


def test_similar_of_a_ticket_the_asker_may_not_see_asks_nothing_more():
    client = FakeClient(search=[answer()])
    assert OpenSearchEngine(client, "idx").similar("x", scope=Scope()) == []
    assert [name for name, _ in client.calls] == ["search"]


def test_the_alias_moves_in_one_request_and_marks_live_in_the_mapping():
    mapping = {"tf-search-new": {"mappings": {"_meta": {"a": "x"}}}}
    client = FakeClient(**{"indices.get_alias": [{"tf-search-old": {}}], "indices.get_mapping": [mapping]})
    home = OpenSearchHome(client, "tf")
    home.switch("tf-search-new")
    assert client.calls[-1] == (
        "indices.update_aliases",
        {"body": {"actions": [{"remove": {"index": "tf-search-old", "alias": "tf-search"}},
                              {"add": {"index": "tf-search-new", "alias": "tf-search"}}]}},
    )  # fmt: skip
    home.write_mark("tf-search-new", built_from=datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    assert client.calls[-1] == (
        "indices.put_mapping",
        {"index": "tf-search-new", "body": {"_meta": {"a": "x", "built_from": "2026-11-30T10:00:00.000Z"}}},
    )


def test_no_alias_yet_is_no_index_in_use():
    class Missing(Exception):
        status_code = 404

    class Client(FakeClient):
        pass

    client = Client()
    client.indices.get_alias = lambda **_: (_ for _ in ()).throw(Missing())
    assert OpenSearchHome(client, "tf").current() is None


def test_a_setting_chooses_the_engine_and_opensearch_needs_its_url():
    assert load_settings({}).search_engine == "embedded"
    chosen = load_settings({"TICKETFLOW_SEARCH_ENGINE": " OpenSearch", "TICKETFLOW_OPENSEARCH_URL": "http://os:9200"})
    assert (chosen.search_engine, chosen.opensearch_url) == ("opensearch", "http://os:9200")
    for env in (
        {"TICKETFLOW_SEARCH_ENGINE": "opensearch"},
        {"TICKETFLOW_SEARCH_ENGINE": "elasticsearch"},
        {"TICKETFLOW_SEARCH_ENGINE": "opensearch", "TICKETFLOW_OPENSEARCH_URL": "os:9200"},
        {"TICKETFLOW_SEARCH_ENGINE": "opensearch", "TICKETFLOW_OPENSEARCH_URL": "https://admin:replace-me@os:9200"},
    ):
        with pytest.raises(ConfigError):
            load_settings(env)


def test_the_service_keeps_its_index_where_the_setting_says(tmp_path):
    embedded = load_settings({"TICKETFLOW_SEARCH_INDEX_DIR": str(tmp_path), "TICKETFLOW_NAMESPACE": "ns"})
    assert isinstance(index_home(embedded), IndexHome)
    env = {
        "TICKETFLOW_SEARCH_ENGINE": "opensearch",
        "TICKETFLOW_OPENSEARCH_URL": "http://127.0.0.1:9",
        "TICKETFLOW_NAMESPACE": "ns",
    }
    home = index_home(load_settings(env))  # the client connects at its first request, not here
    assert isinstance(home, OpenSearchHome) and home.alias == "ns-search"


def test_a_fragment_says_where_its_text_goes_on():
    from services.search.opensearch import snippet

    source = {"description": "Since the update <b> the keyboard types double letters, and more.", "messages": ["x"]}
    cut = {"description": ["the <mark>keyboard</mark> types double"]}
    assert snippet(source, cut) == "…the <mark>keyboard</mark> types double…"
    whole = {"description": ["Since the update &lt;b&gt; the <mark>keyboard</mark> types double letters, and more."]}
    assert snippet(source, whole) == whole["description"][0]
    message = {"messages": ["<mark>x</mark>"]}
    assert snippet(source, message) == "<mark>x</mark>"


def test_a_word_cut_in_parts_is_a_phrase_of_them_and_its_parts_get_no_near_misses():
    from services.search.opensearch import text_query

    query = text_query("ERR_CONN_RESET", fuzzy=True)
    assert "match_phrase" in str(query) and "'err conn reset'" in str(query)
    assert "fuzzy" not in str(query) and "'match'" not in str(query)
    single = text_query("keybaord", fuzzy=True)
    assert "fuzzy" in str(single) and "match_phrase" not in str(single)
    assert text_query("printer's") == text_query("printer")


def test_each_text_field_has_a_joined_copy_analysed_as_the_embedded_engine_joins_it_up():
    import re

    from services.search import queries
    from services.search.opensearch import HYPHEN

    analysis = SETTINGS["analysis"]
    joined = analysis["analyzer"]["joined"]
    assert joined["char_filter"] == ["joined_up"] and joined["tokenizer"] == "words"
    assert joined["filter"] == analysis["analyzer"]["english"]["filter"]  # then as the field: stems and all
    assert analysis["char_filter"]["joined_up"] == {"type": "pattern_replace", "pattern": HYPHEN, "replacement": ""}
    for name in ("subject", "description", "messages", "resolution"):
        assert MAPPINGS["properties"][name]["fields"] == {"joined": {"type": "text", "analyzer": "joined"}}
    # the char filter's Java pattern takes out what queries.joined takes out (\p{L}\p{N}: Python's [^\W_])
    as_python = re.compile(HYPHEN.replace(r"[\p{L}\p{N}]", r"[^\W_]"))
    for text in ("Wi-Fi", "e\u00admail, set\u2010up, on\u2011boarding", "Monday - Friday", "2025–2026", "e--mail",
                 "-wifi-", "wi_-fi", "café-crème", "COVID-19", "ERR_CONN_RESET"):  # fmt: skip
        assert as_python.sub("", text) == queries.joined(text), text


def test_a_word_is_looked_for_as_written_in_each_field_and_joined_up_in_its_copy():
    from services.search.opensearch import text_query

    def subject(query: dict) -> list[dict]:
        """The first clause's choices in the subject: as written, and in the joined copy."""
        return query["bool"]["should"][0]["dis_max"]["queries"][0]["dis_max"]["queries"]

    assert subject(text_query("wi-fi")) == [
        {"match_phrase": {"subject": {"query": "wi fi", "boost": 2.0}}},
        {"match": {"subject.joined": {"query": "wifi", "boost": 2.0}}},
    ]
    assert subject(text_query("WiFi's")) == [
        {"match": {"subject": {"query": "wifi", "boost": 2.0}}},
        {"match": {"subject.joined": {"query": "wifi", "boost": 2.0}}},
    ]
    assert subject(text_query("wi-fi/lan")) == [
        {"match_phrase": {"subject": {"query": "wi fi lan", "boost": 2.0}}},
        {"match_phrase": {"subject.joined": {"query": "wifi lan", "boost": 2.0}}},
    ]
    phrase = text_query('"the wi-fi drops"')["dis_max"]["queries"][1]["dis_max"]["queries"]
    assert phrase == [
        {"match_phrase": {"description": {"query": "the wi fi drops", "boost": 1.0}}},
        {"match_phrase": {"description.joined": {"query": "the wifi drops", "boost": 1.0}}},
    ]
    long = "a" * 20 + "-" + "b" * 20  # joined up, a part the analysers drop: the phrase of its parts only
    [word] = text_query(long)["bool"]["should"]
    assert word["dis_max"]["queries"][0] == {"match_phrase": {"subject": {"query": "a" * 20 + " " + "b" * 20,
                                                                          "boost": 2.0}}}  # fmt: skip
    assert "fuzzy" not in str(text_query("wi-fi", fuzzy=True))  # a word in parts: no near misses, as before


def test_the_snippet_is_the_fields_fragment_or_its_copys_whichever_marks_more():
    from services.search.opensearch import snippet

    source = {"description": "The Wi-Fi drops and my e-mail bounces."}
    field = {"description": ["The Wi-Fi <mark>drops</mark> and my e-mail bounces."]}
    copy = {"description.joined": ["The <mark>Wi-Fi</mark> <mark>drops</mark> and my e-mail bounces."]}
    assert snippet(source, field | copy) == copy["description.joined"][0]  # "wifi drops"
    assert snippet(source, copy) == copy["description.joined"][0]  # "wifi": the field marks nothing
    part = {"description": ["The Wi-Fi drops and my e-<mark>mail</mark> bounces."]}
    assert snippet(source, part) == part["description"][0]  # "mail": the copy, holding "email", marks nothing
    same = {"description.joined": ["The Wi-Fi <mark>drops</mark> and my e-mail bounces."]}
    assert snippet(source, field | same) == field["description"][0]
    assert snippet(source, {"subject.joined": ["<mark>Wi-Fi</mark>"]} | field) == field["description"][0]


def test_the_snippet_is_the_field_marking_the_most_different_words():
    from services.search.opensearch import snippet

    source = {"description": "The laptop is slow.", "messages": ["Hi Jakob, thanks for the details."]}
    first = {"description": ["<mark>The</mark> laptop is slow."]}
    reply = {"messages": ["Hi Jakob, <mark>thanks</mark> <mark>for</mark> <mark>the</mark> <mark>details</mark>."]}
    assert snippet(source, first | reply) == reply["messages"][0]
    twice = {"messages": ["<mark>The</mark> laptop, <mark>the</mark> update."]}  # one word twice: one word
    assert snippet(source, first | twice) == first["description"][0]
    vpn = {"description": ["The <mark>VPN</mark> <mark>drops</mark> every hour."]}
    forms = {"messages": ["It <mark>dropped</mark>, it <mark>drops</mark>, it keeps <mark>dropping</mark>."]}
    assert snippet(source, vpn | forms) == vpn["description"][0]  # one word three ways: one word
    long = "x" * 45  # OpenSearch marks a word the embedded analysis drops: it still counts, as itself
    marked = {"description": [f"The <mark>{long}</mark> token."]}
    assert snippet({"description": f"The {long} token."}, marked) == marked["description"][0]
    texts = {"description": "The Wi-Fi is down.", "messages": ["A router reboot."]}
    wifi = {"description": ["The <mark>Wi-Fi</mark> is down."],
            "messages": ["A <mark>router</mark> <mark>reboot</mark>."]}  # fmt: skip
    assert snippet(texts, wifi) == wifi["messages"][0]  # "Wi-Fi" is one word, fewer than two


def test_an_index_without_the_joined_copies_the_requesters_name_or_with_chinese_runs_as_one_word_is_outdated():
    from services.search.opensearch import WORD

    old = {"tf-search-old": {"mappings": {"properties": {
        "subject": {"type": "text", "analyzer": "english", "copy_to": ["plain"]}}}}}  # fmt: skip
    mappings = MAPPINGS | {"_meta": {"built_from": "2026-11-30T10:00:00.000Z"}}
    runs = {"tf-search-runs": {"mappings": mappings}}
    new = {"tf-search-new": {"mappings": mappings}}
    nameless = {"properties": {name: kind for name, kind in MAPPINGS["properties"].items() if name != "requester"}}
    before_names = {"tf-search-nameless": {"mappings": MAPPINGS | nameless}}

    def settings(name: str, tokenizer: dict) -> dict:  # as OpenSearch answers: every value a string
        return {name: {"settings": {"index": {"analysis": {"tokenizer": {"words": tokenizer}}}}}}

    split = settings("tf-search-runs", {"type": "pattern", "pattern": "[^\\p{L}\\p{N}]+"})
    client = FakeClient(**{
        "indices.get_mapping": [old, runs, new, before_names],
        "indices.get_settings": [split, settings("tf-search-new", {"type": "pattern", "pattern": WORD, "group": "0"})],
    })  # fmt: skip
    home = OpenSearchHome(client, "tf")
    assert home.outdated("tf-search-old") and home.outdated("tf-search-runs") and not home.outdated("tf-search-new")
    assert home.outdated("tf-search-nameless")  # made before the requester's name
    indexes = [kwargs["index"] for name, kwargs in client.calls]
    assert indexes == ["tf-search-old", "tf-search-runs", "tf-search-runs", "tf-search-new", "tf-search-new",
                       "tf-search-nameless"]  # fmt: skip


def test_a_fragment_with_a_word_of_thousands_of_letters_is_cut_around_its_mark():
    """OpenSearch's highlighter never cuts inside a word: a dump of 3,000 letters came whole, past the window the
    embedded engine keeps."""
    from services.search.opensearch import snippet

    text = "The toner & " + "x" * 3000 + " ends."
    source = {"description": text}
    found = {"description": ["The <mark>toner</mark> &amp; " + "x" * 3000 + " ends."]}
    shown = snippet(source, found)
    assert shown.startswith("The <mark>toner</mark> &amp; xxx") and shown.endswith("x…")
    assert len(shown) < 2 * SNIPPET_CHARS


def test_a_fragment_a_little_past_the_window_is_left_whole():
    """The highlighter's usual: it ends at the word after SNIPPET_CHARS. Nothing is cut mid-word."""
    from services.search.opensearch import snippet

    words = "Please print the double sided document again, " * 5
    text = words + "the toner is low."
    source = {"description": text}
    found = {"description": [words + "the <mark>toner</mark> is low."]}
    assert len(text) > SNIPPET_CHARS and snippet(source, found) == found["description"][0]


def test_a_chinese_word_is_the_phrase_of_its_characters_as_the_tokenizer_cuts_them():
    from services.search.opensearch import WORD, text_query

    assert SETTINGS["analysis"]["tokenizer"]["words"] == {"type": "pattern", "pattern": WORD, "group": 0}
    assert WORD.endswith(r"|[\p{IsHan}\p{IsHiragana}\p{IsKatakana}]")  # queries.WORD's second half, in Java's words
    subject = text_query("打印机")["bool"]["should"][0]["dis_max"]["queries"][0]["dis_max"]["queries"][0]
    assert subject == {"match_phrase": {"subject": {"query": "打 印 机", "boost": 2.0}}}


def test_the_characters_of_a_chinese_word_marked_one_by_one_are_marked_as_one():
    from services.search.opensearch import snippet

    found = {"description": ["我的<mark>打</mark><mark>印</mark><mark>机</mark>坏了"]}
    assert snippet({"description": "我的打印机坏了"}, found) == "我的<mark>打印机</mark>坏了"
