"""What an attached file's bytes say it is, the name it keeps and the header it is downloaded with (pure)."""

from __future__ import annotations

import pytest

from services.intake.files import OCTET_STREAM, clean_filename, content_disposition, declared_type, served_type


@pytest.mark.parametrize(
    ("declared", "stored"),
    [
        ("image/PNG", "image/png"),
        ("text/plain; charset=ISO-8859-1", "text/plain"),
        ("image/jpg", "image/jpeg"),
        ("", OCTET_STREAM),
        (None, OCTET_STREAM),
        ("not a type", OCTET_STREAM),
        ("text/html\r\nSet-Cookie: x=1", OCTET_STREAM),
    ],
)
def test_the_declared_type_is_stored_plain_or_as_octet_stream(declared, stored):
    assert declared_type(declared) == stored


@pytest.mark.parametrize(
    ("declared", "data", "served"),
    [
        ("image/gif", b"GIF89a\x01\x00", "image/gif"),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        ("application/zip", b"PK\x05\x06" + b"\x00" * 18, "application/zip"),
        ("text/csv", "a,b\r\n1,ü\r\n".encode(), "text/csv; charset=utf-8"),
        ("text/plain", b"\xff\xfe latin-1 is not utf-8", OCTET_STREAM),
        ("text/html", b"<p>hi</p>", OCTET_STREAM),
        ("application/xhtml+xml", b"<html/>", OCTET_STREAM),
        ("image/svg+xml", b"<svg/>", OCTET_STREAM),
        ("application/javascript", b"alert(1)", OCTET_STREAM),
        ("text/css", b"body{}", OCTET_STREAM),
        ("application/octet-stream", b"%PDF-1.7", OCTET_STREAM),  # never more than was declared
        ("image/gif", b"\x89PNG\r\n\x1a\n", OCTET_STREAM),  # another image than declared
    ],
)
def test_the_served_type_is_the_declared_one_only_when_the_bytes_agree(declared, data, served):
    assert served_type(declared, data) == served


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\ana\\report.pdf", "report.pdf"),
        ("/etc/passwd", "passwd"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # no right-to-left override
        ("a\r\nb.txt", "ab.txt"),
        ("  spaced .txt ", "spaced .txt"),
        ("..", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
    ],
)
def test_a_file_keeps_its_own_name_only(given, kept):
    assert clean_filename(given) == kept


def test_a_long_name_is_cut_to_255_characters_keeping_its_extension():
    name = clean_filename("é" * 400 + ".docx")
    assert len(name) == 255 and name.endswith("é.docx")


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        ('a "quoted"; name.txt', "attachment; filename=\"a _quoted__ name.txt\"; "
         "filename*=UTF-8''a%20%22quoted%22%3B%20name.txt"),
        ("Ünïcödé.txt", "attachment; filename=\"Unicode.txt\"; filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B6d%C3%A9.txt"),
        ("日本語.pdf", "attachment; filename=\"attachment.pdf\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf"),
    ],
)  # fmt: skip
def test_the_disposition_is_always_attachment_with_an_ascii_fallback_and_the_utf8_name(name, header):
    assert content_disposition(name) == header


def test_the_first_file_past_a_limit_is_named_with_the_limit_it_breaks():
    from services.intake.domain import ATTACHMENT_MAX_BYTES, ATTACHMENTS_MAX_BYTES, over_the_limits

    assert over_the_limits([("a.pdf", 10), ("b.pdf", ATTACHMENT_MAX_BYTES)]) is None
    assert over_the_limits([("a.pdf", 10), ("big.bin", ATTACHMENT_MAX_BYTES + 1)]) == ("file", "big.bin")
    nine = 9 * 1024 * 1024
    assert over_the_limits([("1", nine), ("2", nine), ("3", ATTACHMENTS_MAX_BYTES - 2 * nine + 1)]) == ("together", "3")
    assert over_the_limits([]) is None
