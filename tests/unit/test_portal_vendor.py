"""The portal's vendored browser files are the ones its manifest names, byte for byte, and its pages load
scripts and style sheets from the portal itself, never from another host (no CDN)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "services" / "portal"
VENDOR = PORTAL / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"
# The folder's own description of what it holds: not vendored files themselves.
DESCRIPTIONS = {"manifest.json", "VENDOR.md"}
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# A script, style sheet, font or image the browser would fetch from another host: an absolute (http:, https:)
# or protocol-relative (//host) address in a src or href attribute, a CSS @import or a CSS url().
_ADDRESS = r"""\s*=\s*["']?\s*(?:https?:)?//"""
REMOTE = re.compile(
    rf"""<script\b[^>]*\bsrc{_ADDRESS}"""
    rf"""|<link\b[^>]*\bhref{_ADDRESS}"""
    rf"""|<(?:img|source|video|audio|iframe|embed)\b[^>]*\b(?:src|srcset|poster){_ADDRESS}"""
    r"""|@import\s+(?:url\(\s*)?["']?\s*(?:https?:)?//"""
    r"""|\burl\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def entries() -> list[dict]:
    data = manifest()
    return [*data["files"], *data.get("licenses", [])]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_manifest_lists_htmx():
    """The portal's pages find htmx's file through the manifest (the first file of package htmx.org)."""
    htmx = [item for item in manifest()["files"] if item["package"] == "htmx.org"]
    assert len(htmx) == 1
    assert re.fullmatch(r"2\.0\.\d+", htmx[0]["version"])
    assert htmx[0]["path"] == f"htmx-{htmx[0]['version']}.min.js"
    # the file is the release it claims to be: htmx.min.js carries its own version
    assert f'version:"{htmx[0]["version"]}"' in (VENDOR / htmx[0]["path"]).read_text(encoding="utf-8")


@pytest.mark.parametrize("item", entries(), ids=lambda item: item["path"])
def test_each_listed_file_is_there_with_its_sha256(item: dict):
    assert set(item) >= {"path", "package", "version", "sha256"}
    assert SHA256.match(item["sha256"]), item["sha256"]
    path = VENDOR / item["path"]
    assert path.parent == VENDOR and path.is_file(), f"{item['path']}: listed in manifest.json, not in {VENDOR}"
    assert sha256(path) == item["sha256"], f"{item['path']}: not the file manifest.json describes"


def test_every_file_in_the_folder_is_listed():
    on_disk = {path.relative_to(VENDOR).as_posix() for path in VENDOR.rglob("*") if path.is_file()}
    listed = [item["path"] for item in entries()]
    assert len(listed) == len(set(listed)), "a file listed twice"
    assert on_disk - DESCRIPTIONS - set(listed) == set(), "files in static/vendor that manifest.json does not list"


def test_every_package_has_its_license_beside_it():
    licensed = {(item["package"], item["version"]) for item in manifest().get("licenses", [])}
    for item in manifest()["files"]:
        assert item.get("license"), f"{item['path']}: no license in manifest.json"
        assert (item["package"], item["version"]) in licensed, f"{item['path']}: no license file beside it"


def test_vendor_md_tells_the_same():
    text = (VENDOR / "VENDOR.md").read_text(encoding="utf-8")
    for item in entries():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{item['path']}` |")), None)
        assert row is not None, f"{item['path']}: no row in VENDOR.md"
        assert item["version"] in row and item["sha256"] in row and f"`{item['package']}`" in row, row


def page_sources() -> list[Path]:
    """The portal's templates, and its own style sheets and pages in static/ (vendored files are checked above)."""
    found = sorted((PORTAL / "templates").rglob("*")) if (PORTAL / "templates").is_dir() else []
    static = PORTAL / "static"
    if static.is_dir():
        found += [p for p in sorted(static.rglob("*")) if p.suffix in (".css", ".html") and VENDOR not in p.parents]
    return [path for path in found if path.is_file()]


def test_no_page_loads_anything_from_another_host():
    problems = []
    for path in page_sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in REMOTE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}")
    assert not problems, "pages load files from another host (vendor them into static/vendor):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="https://unpkg.com/htmx.org@2.0.4"></script>',
        "<script defer src='http://cdn.example/x.js'></script>",
        '<script type="module" src="//cdn.example/x.js"></script>',
        '<link rel="stylesheet" href="https://fonts.example/css?family=Inter">',
        "<LINK REL=stylesheet HREF=https://cdn.example/x.css>",
        '<img alt="" src="https://cdn.example/logo.png">',
        "<style>@import url('https://fonts.example/inter.css');</style>",
        '@import "//cdn.example/x.css";',
        "body { background: url(https://cdn.example/bg.png) }",
    ],
)
def test_a_remote_source_is_found(snippet: str):
    assert REMOTE.search(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "<script src=\"{{ url_for('site.static', filename='vendor/' ~ htmx_file) }}\" defer></script>",
        '<script src="/static/js/portal.js"></script>',
        '<link rel="stylesheet" href="/static/css/portal.css">',
        '<a href="https://example.org/help">help</a>',  # a link the reader may follow: the browser fetches nothing
        "body { background: url(/static/bg.png) }",
        "<p>See http://example.org for more.</p>",
    ],
)
def test_a_local_source_is_not(snippet: str):
    assert not REMOTE.search(snippet)
