"""The portal's own emails' text (services/portal/mailing.py): lines as notify's are, links whole."""

from __future__ import annotations

from services.portal.mailing import LINE, wrapped


def test_long_lines_wrap_keeping_their_indent_or_quote_marks_and_links_stay_whole():
    link = "https://help.example.com/password/" + "x" * 80
    text = "  " + "apple " * 30 + "\n> " + "quoted " * 20 + f"\nOpen {link}\n\nShort line.\tTab kept."

    lines = wrapped(text).split("\n")

    assert all(len(line) <= LINE for line in lines if link not in line)
    assert link in lines and "Short line.\tTab kept." in lines
    apples, quoted = [line for line in lines if "apple" in line], [line for line in lines if "quoted" in line]
    assert len(apples) > 1 and all(line.startswith("  apple") for line in apples)
    assert len(quoted) > 1 and all(line.startswith("> quoted") for line in quoted)
    said = lambda t: [word for word in t.split() if word != ">"]  # noqa: E731 - the words, without quote marks
    assert said(" ".join(lines)) == said(text)  # nothing lost, nothing added
