"""The documentation links only to files of this repository, and the generated pages match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").rglob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
BARE_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]*://|\bwww\.)\S+")


def prose(page: Path) -> str:
    """The page without code blocks and code spans: what Markdown turns into links."""
    return INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))


def links(page: Path) -> list[str]:
    text = prose(page)
    return [m.group(1) for pattern in (LINK, REFERENCE, HTML_LINK) for m in pattern.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)}


def test_there_are_pages_to_check():
    names = {page.name for page in PAGES}
    assert {"README.md", "architecture.md", "api.md", "events.md"} <= names
    assert all(links(page) is not None for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_is_a_file_of_this_repository(page: Path):
    problems = []
    for target in links(page):
        if not target:
            problems.append("an empty link")
            continue
        if SCHEME.match(target) or target.startswith("//"):
            problems.append(f"{target}: links outside the repository (a URL)")
            continue
        path, _, fragment = target.partition("#")
        path = unquote(path)
        if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path) or path.startswith("~"):
            problems.append(f"{target}: an absolute path")
            continue
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file in the repository")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    assert not problems, f"{page.relative_to(ROOT)}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_bare_url_outside_code(page: Path):
    """A bare URL in prose becomes a link on most renderers: the pages name outside sites, never link them."""
    assert BARE_URL.findall(prose(page)) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_points_at_files_outside_the_repository(page: Path):
    """Not even as text: the contract the code follows is described here, in the repository's own words."""
    text = page.read_text(encoding="utf-8")
    assert [word for word in ("CONTRACT.md", "../shared/", "/work/") if word in text] == []


def test_generated_pages_match_the_code():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# the variables of this project (and of the tools it starts) that its code reads by name; not those of the tools
# themselves, which their own documentation describes (gunicorn's GUNICORN_CMD_ARGS)
OUR_VARIABLE = re.compile(r"[\"']((?:TICKETFLOW|GUNICORN|FERRETDB|TEST|BARE)_[A-Z0-9_]+)[\"']")
THEIR_OWN = {"GUNICORN_CMD_ARGS"}
READERS = ("services", "shared", "ticketflow", "benchmarks", "tests/conftest.py", "tests/browser/helpers.py")


def test_every_variable_the_code_reads_is_in_the_configuration_page():
    sources = [
        path
        for reader in READERS
        for path in ([ROOT / reader] if reader.endswith(".py") else sorted((ROOT / reader).rglob("*.py")))
    ]
    named = {m.group(1) for path in sources for m in OUR_VARIABLE.finditer(path.read_text(encoding="utf-8"))}
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert len(named) > 40, "the pattern no longer finds the variables"
    assert sorted(name for name in named - THEIR_OWN if f"`{name}`" not in page) == []
