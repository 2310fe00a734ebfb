"""The embedded engine's joined copies: how a text and a typed word are joined up, the schema with and without the
copies, and an index made before them (read as it is until the worker rebuilds it)."""

from __future__ import annotations

import os

import pytest
import tantivy

from services.search import queries
from services.search.engine import SHAPES, Engine, Scope, _document, build_schema, outdated
from tests.unit.test_search_engine import make_doc

EVERYONE = Scope(everything=True)


def schema_before_the_copies() -> tantivy.Schema:
    """engine.build_schema as it was before the joined copies: the schema of every index made until then."""
    builder = tantivy.SchemaBuilder()
    for name in ("ticket_id", "status", "team", "requester_email", "agent_id", "created_at", "resolved_at"):
        builder.add_text_field(name, stored=True, tokenizer_name="raw")
    builder.add_integer_field("number", stored=True, indexed=True, fast=True)
    for name in ("subject", "description", "messages", "resolution"):
        builder.add_text_field(name, stored=True, tokenizer_name="en")
    builder.add_text_field("plain", tokenizer_name="plain", index_option="freq")
    return builder.build()


def index_made_before_the_copies(path: str, *docs: dict) -> None:
    """An index at `path` as the code before the joined copies wrote it."""
    os.makedirs(path, exist_ok=True)
    index = tantivy.Index(schema_before_the_copies(), path=path)
    index.register_tokenizer("en", queries.english(cjk=False))
    index.register_tokenizer("plain", queries.plain(cjk=False))
    writer = index.writer(15_000_000, 1)
    for doc in docs:
        fields = _document(doc, copies=False).to_dict()
        assert "subject_joined" not in fields
        writer.add_document(tantivy.Document(**fields))
    writer.commit()
    writer.wait_merging_threads()


@pytest.mark.parametrize(
    ("text", "joined"),
    [
        ("Wi-Fi", "WiFi"),
        ("my e-mail, your log-in", "my email, your login"),
        ("the set‐up (U+2010) and on‑boarding (U+2011)", "the setup (U+2010) and onboarding (U+2011)"),
        ("e\u00admail", "email"),  # a soft hyphen
        ("out-of-office", "outofoffice"),
        ("COVID-19 and 2025-3318", "COVID19 and 20253318"),
        ("ERR_CONN_RESET won't <b>", "ERR_CONN_RESET won't <b>"),  # other punctuation stays
        ("Monday - Friday, 2025–2026, e--mail, -wifi-, wi_-fi", "Monday - Friday, 2025–2026, e--mail, -wifi-, wi_-fi"),
        ("café-crème", "cafécrème"),
    ],
)
def test_joined_takes_out_a_hyphen_between_two_letters_or_digits_only(text, joined):
    assert queries.joined(text) == joined


def test_a_typed_word_joined_up_unless_that_makes_a_part_the_analysers_drop():
    assert queries.together_of("wi-fi") == "wifi"
    assert queries.together_of("ERR_CONN_RESET") == "ERR_CONN_RESET"
    assert queries.together_of("a" * 20 + "-" + "b" * 20) is None  # 40 letters: dropped, as in the copies
    assert queries.together_of("a" * 19 + "-" + "b" * 20) == "a" * 19 + "b" * 20


def test_the_stems_a_query_looks_for_joined_up_and_those_it_does_not_look_for_as_written():
    together, unwritten = queries.joined_terms('Wi-Fi "e-mails bounce" printer\'s #12 wifi')
    assert together == {"wifi", "email", "bounc", "printer", "12"}
    assert unwritten == {"email"}  # "wifi" is also typed as written
    assert queries.joined_terms("***") == (set(), set())


def test_the_parts_a_query_looks_for_only_together():
    alone, sequences = queries.parts_looked_for('e-mail ERR_CONN_RESET reset "mail server" wifi')
    assert sequences == (("e", "mail"), ("err", "conn", "reset"))
    assert alone == {"e", "err", "conn"}  # "reset" is typed alone, "mail" in a phrase: marked wherever they stand
    alone, sequences = queries.parts_looked_for('"wi-fi drops" wifi')  # a phrase's word too: its parts together
    assert (alone, sequences) == ({"wi", "fi"}, (("wi", "fi"),))
    assert queries.parts_looked_for("printer") == (frozenset(), ())


def test_the_schema_without_the_copies_is_the_one_indexes_were_made_with():
    assert build_schema(SHAPES[-1]) == schema_before_the_copies()
    assert build_schema() != schema_before_the_copies()


def test_a_document_has_a_joined_copy_of_each_of_its_texts(tmp_path):
    doc = make_doc("a", 1, "Wi-Fi down", "No e-mail either.", messages=["log-in fails", ""], resolution="Set-up redone")
    fields = _document(doc).to_dict()
    assert fields["subject_joined"] == ["WiFi down"] and fields["description_joined"] == ["No email either."]
    assert fields["messages_joined"] == ["login fails"] and fields["resolution_joined"] == ["Setup redone"]
    assert fields["subject"] == ["Wi-Fi down"] and fields["plain"][0] == "Wi-Fi down"  # as written, as before
    assert "subject_joined" not in _document(doc, copies=False).to_dict()


def test_an_index_made_before_the_copies_is_read_as_it_is_and_known_as_outdated(tmp_path):
    path = str(tmp_path / "old")
    index_made_before_the_copies(
        path,
        make_doc("a", 1, "Wi-Fi down", "The Wi-Fi drops on floor 3."),
        make_doc("b", 2, "Printer jams", "The printer jams."),
    )
    assert outdated(path)
    reader = Engine(path, create=False)  # an api process, before the worker rebuilt it
    assert not reader.copies
    [item], total = reader.search("wi-fi", scope=EVERYONE)
    assert (item["ticket_id"], total) == ("a", 1)
    assert item["snippet"] == "The <mark>Wi-Fi</mark> drops on floor 3."  # its parts, where they stand together
    assert [i["ticket_id"] for i in reader.search("printers", scope=EVERYONE)[0]] == ["b"]
    assert reader.search("wifi", scope=EVERYONE) == ([], 0)  # joined up only once rebuilt
    writer = Engine(path)
    writer.upsert(make_doc("c", 3, "Wi-Fi slow", "Slow Wi-Fi."))  # written as it was: its schema's fields
    writer.commit()
    writer.close()
    assert reader.search("wi-fi", scope=EVERYONE)[1] == 2


def test_a_new_index_has_the_copies_and_is_not_outdated(tmp_path):
    assert not outdated(str(tmp_path / "none"))
    assert not outdated(str(tmp_path))  # a directory without an index yet (a generation being made)
    engine = Engine(str(tmp_path / "new"))
    engine.upsert(make_doc("a", 1, "Wi-Fi down", "The Wi-Fi drops."))
    engine.commit()
    engine.close()
    assert engine.copies and not outdated(engine.path)
    assert [i["ticket_id"] for i in Engine(engine.path, create=False).search("wifi", scope=EVERYONE)[0]] == ["a"]


# --- Chinese and Japanese: each character a word ---------------------------------------------------------


def test_each_chinese_character_and_kana_is_a_word_and_other_runs_are_cut_as_before():
    assert queries.PLAIN.analyze("我的打印机坏了 printers") == ["我", "的", "打", "印", "机", "坏", "了", "printers"]
    assert queries.PLAIN.analyze("プリンターが動かない") == ["プ", "リ", "ン", "タ", "ー", "が", "動", "か", "な", "い"]
    before = queries.plain(cjk=False)
    for text in ("Wi-Fi café naïve x86_64 3.5mm", "Straße ΑΒΓ привет", "한국어 프린터가 고장", "ＡＢＣ１２３ x²"):
        assert queries.PLAIN.analyze(text) == before.analyze(text), text  # Korean writes spaces: words as before
    assert before.analyze("我的打印机坏了") == ["我的打印机坏了"]


@pytest.mark.parametrize(
    "text",
    [
        "我的打印机坏了，无法打印。",
        "会議室のプリンターが動きません",
        "VPN接続できない ERR_CONN_RESET",
        "e-mail 紙詰まり",
    ],
)
def test_python_cuts_a_text_into_the_parts_tantivy_cuts_it_into(text):
    """engine._parts_spans finds a typed word's parts in a text with queries.PART: it must cut where WORD cuts."""
    assert [part.casefold() for part in queries.PART.findall(text)] == queries.PLAIN.analyze(text)


def test_a_chinese_or_japanese_word_is_found_inside_a_longer_run_and_marked_whole(tmp_path):
    engine = Engine(str(tmp_path / "index"))
    engine.upsert(make_doc("a", 1, "打印机坏了", "我的打印机坏了，无法打印。请帮忙。"))
    engine.upsert(make_doc("b", 2, "プリンターが動かない", "会議室のプリンターが動きません。紙詰まりです。"))
    engine.upsert(make_doc("c", 3, "机器很慢", "电脑很慢。"))  # 机 alone, not after 打印
    engine.commit()

    def found(q: str) -> list[tuple[str, str]]:
        return [(item["ticket_id"], item["snippet"]) for item in engine.search(q, scope=EVERYONE)[0]]

    assert found("打印机") == [("a", "我的<mark>打印机</mark>坏了，无法打印。请帮忙。")]
    assert found("紙詰まり") == [("b", "会議室のプリンターが動きません。<mark>紙詰まり</mark>です。")]
    assert [ticket for ticket, _ in found("プリンター")] == ["b"]
    # quoted, the characters are marked where they stand together, never one by one (了 is everywhere)
    assert found('"打印机坏了"') == [("a", "我的<mark>打印机坏了</mark>，无法打印。请帮忙。")]
    assert found("机坏打印") == []  # the characters in another order are not the word


def index_of_shape(path: str, shape, analysers: dict, *docs: tantivy.Document) -> None:
    """An index at `path` as the code of an earlier `shape` wrote it (its analysers by name)."""
    os.makedirs(path, exist_ok=True)
    index = tantivy.Index(build_schema(shape), path=path)
    for name, analyser in analysers.items():
        index.register_tokenizer(name, analyser)
    writer = index.writer(15_000_000, 1)
    for doc in docs:
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()


def test_an_index_made_before_each_chinese_character_was_a_word_is_outdated_and_read_as_it_is(tmp_path):
    path = str(tmp_path / "old")
    old = SHAPES[2]
    assert (old.copies, old.words, old.plain, old.requester) == (True, "en", "plain", False)
    analysers = {"en": queries.english(cjk=False), "plain": queries.plain(cjk=False)}
    index_of_shape(path, old, analysers, _document(make_doc("a", 1, "打印机坏了", "我的打印机坏了 and the Wi-Fi")))

    assert outdated(path)
    reader = Engine(path, create=False)  # an api process, before the worker rebuilt it
    assert reader.copies and reader.search("wifi", scope=EVERYONE)[1] == 1  # everything else as before
    for typed in ("打印机", "打印机坏了"):  # Chinese and Japanese are found once it is rebuilt, not before
        assert reader.search(typed, scope=EVERYONE)[1] == 0


# --- the requester's name: searched, never a snippet nor a word of "similar" ----------------------------------


def test_a_ticket_is_found_by_its_requesters_name(tmp_path):
    engine = Engine(str(tmp_path / "new"))
    for doc in (
        make_doc("a", 1, "Printer jams", "The printer on floor 3 jams.", requester_name="Ana Ruiz"),
        make_doc("b", 2, "VPN drops", "The tunnel drops every hour.", requester_name="Bo Lindqvist"),
        make_doc("c", 3, "Access for Ruiz", "Please give Ruiz the shared drive.", requester_name="Cy Díaz"),
        make_doc("d", 4, "Laptop fan", "Loud.", requester_name=None),  # mail in without a name
    ):
        engine.upsert(doc)
    engine.commit()
    assert engine.requester and not outdated(engine.path)

    def found(q: str) -> list[str]:
        return sorted(item["ticket_id"] for item in engine.search(q, scope=EVERYONE)[0])

    assert found("Lindqvist") == ["b"]
    assert found("ruiz") == ["a", "c"]  # her name, or the word in a ticket's text
    assert found('"Ana Ruiz"') == ["a"]
    assert found("ana printer") == ["a"] and found("ana tunnel") == []  # both words wanted, each anywhere
    assert found("diaz") == ["c"]  # accents folded as in the texts
    [hit], _ = engine.search("Lindqvist", scope=EVERYONE)
    assert "<mark>" not in hit["snippet"] and "Lindqvist" not in hit["snippet"]  # the name is no snippet
    assert hit["requester_name"] == "Bo Lindqvist"  # but is shown beside it


def test_the_requesters_name_is_no_word_of_similar(tmp_path):
    engine = Engine(str(tmp_path / "new"))
    for doc in (
        make_doc("asked", 1, "Printer jams", "The printer jams on every page.", requester_name="Ana Ruiz"),
        make_doc(
            "hers",
            2,
            "Tunnel drops",
            "VPN drops hourly.",
            requester_name="Ana Ruiz",
            status="resolved",
            resolution="New VPN profile.",
        ),  # fmt: skip
        make_doc("jam", 3, "Printer jam", "Paper jams in the printer.", status="resolved", resolution="Cleaned it."),
    ):
        engine.upsert(doc)
    engine.commit()
    assert [item["ticket_id"] for item in engine.similar("asked", scope=EVERYONE)] == ["jam"]


def test_an_index_made_before_the_requesters_name_is_outdated_and_read_as_it_is(tmp_path):
    path = str(tmp_path / "old")
    old = SHAPES[1]
    assert (old.copies, old.words, old.plain, old.requester) == (True, "en2", "plain2", False)
    doc = _document(make_doc("a", 1, "Wi-Fi down", "No signal.", requester_name="Ana"), requester=False)
    index_of_shape(path, old, {"en2": queries.english(), "plain2": queries.plain()}, doc)

    assert outdated(path)
    reader = Engine(path, create=False)  # an api process, before the worker rebuilt it
    assert not reader.requester and reader.copies
    assert reader.search("wifi", scope=EVERYONE)[1] == 1 and reader.search("ana", scope=EVERYONE)[1] == 0
    assert reader.search("wifi", scope=EVERYONE)[0][0]["requester_name"] is None
    writer = Engine(path)  # the worker, written as its schema has it until it rebuilds
    writer.upsert(make_doc("b", 2, "Wi-Fi slow", "Slow.", requester_name="Bo"))
    writer.commit()
    writer.close()
    assert reader.search("wifi", scope=EVERYONE)[1] == 2
