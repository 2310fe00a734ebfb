"""The browser harness itself: Chromium loads a page from a server on 127.0.0.1, finds what a person finds,
and axe-core tells an accessible page from one that is not. Nothing leaves the loopback range."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error, expect

from tests.browser.helpers import FAILING_IMPACTS, assert_accessible, axe_version

# The portal's policy: axe-core must run under it too.
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'"
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PAGES = {
    "accessible.html": f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Report a problem</title></head>
<body><main>
<h1>Report a problem</h1>
<img src="{PIXEL}" alt="The help desk's logo">
<form method="post" action="/accessible.html">
  <label for="email">Your email address</label>
  <input id="email" name="email" type="email" autocomplete="email">
  <button type="submit">Send</button>
</form>
</main></body></html>
""",
    "inaccessible.html": f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title></head>
<body><main>
<h1>Broken</h1>
<img src="{PIXEL}">
<input id="nameless" name="nameless" type="text">
</main></body></html>
""",
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pages above, served from 127.0.0.1 on a free port."""
    root = tmp_path_factory.mktemp("site")
    for name, text in PAGES.items():
        (root / name).write_text(text, encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_page_loads(page, site):
    response = page.goto(f"{site}/accessible.html")
    assert response is not None and response.ok
    expect(page).to_have_title("Report a problem")
    expect(page.get_by_role("heading", level=1)).to_have_text("Report a problem")
    assert page.context.browser.version.split(".")[0].isdigit()  # Debian's chromium, e.g. 156.0.8078.108


def test_a_labelled_input_is_found_by_its_label(new_context, site):
    page = new_context(base_url=site).new_page()
    page.goto("/accessible.html")  # relative to the context's base_url
    field = page.get_by_label("Your email address")
    field.fill("ada@example.org")
    expect(field).to_have_value("ada@example.org")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_an_accessible_page_passes(page, site):
    page.goto(f"{site}/accessible.html")
    assert_accessible(page)


def test_an_image_without_alt_and_an_unlabelled_input_fail(page, site):
    page.goto(f"{site}/inaccessible.html")
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page)
    message = str(failure.value)
    assert "image-alt (critical)" in message and "label (critical)" in message, message
    assert "#nameless" in message and "img" in message, message  # the nodes are named
    assert f"axe-core {axe_version()}" in message


def test_ignored_rules_do_not_fail(page, site):
    page.goto(f"{site}/inaccessible.html")
    assert_accessible(page, ignore=["image-alt", "label"])
    assert_accessible(page, context="h1")  # only the heading is checked


def test_axe_core_comes_with_the_installed_package():
    """axe-core is read from axe-playwright-python's axe.min.js, never fetched."""
    import axe_playwright_python

    assert (Path(axe_playwright_python.__file__).parent / "axe.min.js").is_file()
    major, minor, _ = (int(part) for part in axe_version().split("."))
    assert (major, minor) >= (4, 8)
    assert FAILING_IMPACTS == ("serious", "critical")


def test_each_test_gets_a_fresh_context(page, new_context, site):
    assert page.context.cookies() == []
    page.goto(f"{site}/accessible.html")
    page.context.add_cookies([{"name": "session", "value": "secret", "url": site}])
    assert [cookie["name"] for cookie in page.context.cookies()] == ["session"]
    assert new_context().cookies() == []


def test_phone_page_has_a_phone_screen(phone_page, site):
    phone_page.goto(f"{site}/accessible.html")
    assert phone_page.viewport_size == {"width": 390, "height": 844}
    assert phone_page.evaluate("window.innerWidth") == 390
    assert phone_page.evaluate("matchMedia('(pointer: coarse)').matches")


def test_screenshots_go_to_tmp_and_to_the_folder_asked_for(page, site, screenshot, tmp_path, monkeypatch):
    monkeypatch.delenv("TICKETFLOW_SCREENSHOTS", raising=False)  # the harness's pictures are no documentation
    page.goto(f"{site}/accessible.html")
    first = screenshot(page, "harness-tmp-only")
    assert first.is_relative_to(tmp_path) and first.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    wanted = tmp_path / "wanted" / "screenshots"
    monkeypatch.setenv("TICKETFLOW_SCREENSHOTS", str(wanted))
    second = screenshot(page, "harness")
    assert second.is_relative_to(tmp_path)
    assert (wanted / "harness.png").read_bytes() == second.read_bytes()
    assert sorted(path.name for path in wanted.iterdir()) == ["harness.png"]
    with pytest.raises(ValueError):
        screenshot(page, "../outside")


def test_no_request_leaves_the_loopback_range(page, site):
    """A name outside the machine goes to the dead-end proxy on 127.0.0.1 (refused), never to a DNS server;
    loopback addresses and localhost are reached directly."""
    with pytest.raises(Error, match="ERR_PROXY_CONNECTION_FAILED"):
        page.goto("http://portal.ticketflow.invalid/")
    other = page.context.new_page()  # page itself goes on to show Chromium's error page
    assert other.goto(site.replace("127.0.0.1", "localhost") + "/accessible.html").ok


def test_a_browser_module_is_one_xdist_group(request):
    """Marked `browser` and in an xdist_group named after its module: under `make test` (-n 2 --dist loadgroup)
    a module's tests run in one process (its system and Chromium start once there)."""
    assert request.node.get_closest_marker("browser") is not None
    assert request.node.get_closest_marker("xdist_group").args == ("test_browser_harness",)
    if hasattr(request.config, "workerinput") and request.config.getoption("dist") == "loadgroup":
        assert request.node.nodeid.endswith("@test_browser_harness"), "xdist did not see the group (tryfirst)"
