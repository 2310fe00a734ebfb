"""Fixtures of the real-browser tests: one headless Chromium per pytest process, a fresh context per test.

browser      Playwright's Browser: Debian's chromium, headless, launched once per session (process).
new_context  new_context(**options) -> a BrowserContext (base_url=..., viewport=...), closed after the test.
context      a fresh context: no cookie or storage of another test in it.
page         a page in `context`.
phone_page   a page in a context of its own with a phone's screen (390 x 844, mobile, touch).
screenshot   screenshot(page, name) -> the PNG in the test's tmp_path; also <$TICKETFLOW_SCREENSHOTS>/<name>.png.

Every context waits DEFAULT_TIMEOUT_MS (30 s) for an action or a navigation, and so does `expect`.
Nothing here sends traffic outside 127.0.0.0/8 (see helpers.launch_options).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.helpers import (
    DEFAULT_TIMEOUT_MS,
    PHONE,
    chromium_executable,
    launch_options,
    save_screenshot,
)

expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def _dead_end_port() -> Iterator[int]:
    """A loopback port where nothing listens for the whole session: bound, never listening, so no other
    process can take it and every connection to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def browser(_dead_end_port: int) -> Iterator[Browser]:
    executable = chromium_executable()
    if executable is None:
        pytest.fail("no chromium for the browser tests: run scripts/ensure-chromium.sh (make test does)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options(executable, _dead_end_port))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def phone_page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context(**PHONE).new_page()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Path]:
    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        return save_screenshot(page, name, tmp_path / "screenshots", full_page=full_page)

    return take
