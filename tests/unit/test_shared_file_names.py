"""File names as events and messages carry them (shared/schemas.py): as intake stores the files."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from shared.schemas import FILES_NAMED_MOST, file_names, files_sent, named_files


class _Body(Schema):
    files = file_names()


def test_names_are_cleaned_as_stored_files_are_and_the_first_50_kept():
    assert named_files(["C:\\Users\\ana\\shot.png", "\u202etxt.exe", None, "../.."]) == [
        "shot.png", "txt.exe", "attachment", "attachment"]  # fmt: skip
    assert len(named_files(f"{n}.txt" for n in range(60))) == FILES_NAMED_MOST


def test_a_message_of_files_alone_names_them_and_says_how_many_there_were():
    assert files_sent(["a.png"]) == "Sent a file: a.png"
    assert files_sent(["a.png", "b.pdf"]) == "Sent 2 files: a.png, b.pdf"
    assert files_sent(["a.png", "b.pdf"], 60) == "Sent 60 files: a.png, b.pdf, …"  # more than an event names


def test_a_request_body_cleans_names_and_refuses_more_than_50():
    assert _Body().load({"files": ["/tmp/x.log", "\x07bell.txt"]}) == {"files": ["x.log", "bell.txt"]}
    with pytest.raises(ValidationError) as refused:
        _Body().load({"files": ["a.txt"] * (FILES_NAMED_MOST + 1)})
    assert "files" in refused.value.messages
