"""The portal's rules for files: what a form may send, sizes in words, which entry a file goes with (pure)."""

from __future__ import annotations

from services.portal.domain import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_MAX_BYTES,
    attachments_by_entry,
    file_problems,
    size_words,
)

MB = 1024 * 1024


def test_sizes_in_words():
    assert [size_words(size) for size in (0, 1, 532, 1024, 1536, 12_345, MB, 1.5 * MB, 10 * MB, 150 * MB)] == [
        "0 bytes", "1 byte", "532 bytes", "1 KB", "1.5 KB", "12.1 KB", "1 MB", "1.5 MB", "10 MB", "150 MB",
    ]  # fmt: skip


def test_files_within_the_limits_will_do():
    assert file_problems([]) == []
    assert file_problems([("a.pdf", ATTACHMENT_MAX_BYTES), ("b.pdf", ATTACHMENT_MAX_BYTES), ("c", 5 * MB)]) == []


def test_an_empty_file_and_one_too_large_are_named():
    problems = file_problems([("empty.txt", 0), ("scan.pdf", ATTACHMENT_MAX_BYTES + 1), ("ok.txt", 10)])
    assert problems == ["“empty.txt” is empty. Choose another file.",
                        "“scan.pdf” is larger than 10 MB, the most a file may have."]  # fmt: skip


def test_files_too_large_together_are_said_so():
    problems = file_problems([("a", 9 * MB), ("b", 9 * MB), ("c", 9 * MB)])
    assert problems == ["The files are 27 MB together, more than the 25 MB that may be sent at once."]
    assert file_problems([("a", 10 * MB), ("b", 10 * MB), ("c", ATTACHMENTS_MAX_BYTES - 20 * MB)]) == []


def test_each_file_goes_with_its_entry_and_the_rest_with_the_opening():
    ticket = {
        "requester": {"name": "Ana"},
        "thread": [
            {"id": "m1", "author": {"type": "requester", "name": "Ana"}},
            {"id": "r1", "author": {"type": "agent", "name": "Ada"}},
        ],
    }
    files = [
        {"id": "f3", "message_id": "r1", "size": 2048, "created_at": "2026-01-01T10:02:00.000Z"},
        {"id": "f1", "message_id": None, "size": 10, "created_at": "2026-01-01T10:00:00.000Z"},
        {"id": "f2", "message_id": "m1", "size": 1, "created_at": "2026-01-01T10:01:00.000Z"},
        {"id": "f4", "message_id": "gone", "size": 5, "created_at": "2026-01-01T10:03:00.000Z"},
    ]

    grouped = attachments_by_entry(ticket, files)

    assert {key: [file["id"] for file in value] for key, value in grouped.items()} == {
        None: ["f1", "f4"], "m1": ["f2"], "r1": ["f3"],
    }  # fmt: skip
    assert grouped["r1"][0]["by"] == "Ada" and grouped["r1"][0]["size_words"] == "2 KB"
    assert grouped[None][0]["by"] == "Ana" and grouped["m1"][0]["size_words"] == "1 byte"
