"""Helpers for the real-browser tests: where Chromium is, how it is launched, accessibility checks, screenshots.

Chromium is Debian's (`scripts/ensure-chromium.sh` installs it), driven by Playwright for Python; Playwright's
own browser builds are never downloaded (no `playwright install`). axe-core comes bundled in the
axe-playwright-python package (axe.min.js), so no test fetches it either.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from ticketflow.local import REPO_ROOT

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Generous for a busy two-core machine; a test that waits this long has failed anyway.
DEFAULT_TIMEOUT_MS = 30_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# Chromium's own traffic (updates, sync, safe browsing lists, field trials...) stays off: the tests reach only
# servers on this machine. Playwright passes most of these itself; they are repeated here so that no release
# of it can drop one unnoticed.
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
)
# Impacts that fail assert_accessible (axe-core's four are minor, moderate, serious and critical).
FAILING_IMPACTS = ("serious", "critical")
SCREENSHOTS_ENV = "TICKETFLOW_SCREENSHOTS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def chromium_executable() -> str | None:
    """Debian's chromium: the one on PATH, else /usr/bin/chromium; None when neither is there."""
    found = shutil.which("chromium")
    if found:
        return found
    return DEFAULT_CHROMIUM if os.access(DEFAULT_CHROMIUM, os.X_OK) else None


def launch_options(executable: str, dead_end_port: int) -> dict:
    """Keyword arguments for playwright's chromium.launch.

    Every request for an address outside the loopback range goes to a "proxy" at 127.0.0.1:dead_end_port,
    where nothing listens: it fails at once (net::ERR_PROXY_CONNECTION_FAILED) and no packet leaves this
    machine, not even a DNS query, whatever a page (a stray CDN link) or Chromium itself asks for. Loopback
    addresses are reached directly.
    """
    args = [*QUIET_FLAGS]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    return {
        "executable_path": executable,
        "headless": True,
        "args": args,
        "proxy": {
            "server": f"http://127.0.0.1:{dead_end_port}",
            # <-loopback> drops Chromium's built-in exceptions (which include link-local addresses); then
            # exactly the loopback names and addresses are exempted again.
            "bypass": "<-loopback>,localhost,*.localhost,127.0.0.1/8,[::1]",
        },
    }


def axe_violations(page, context: str | list | dict | None = None) -> list[dict]:
    """axe-core's violations on the page as it is now (every impact)."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page, context=context).response["violations"]


def axe_version() -> str:
    """The axe-core version the installed axe-playwright-python bundles (from axe.min.js's first line)."""
    from axe_playwright_python.base import AXE_SCRIPT

    match = re.search(r"axe v(\d+\.\d+\.\d+)", AXE_SCRIPT[:200])
    return match.group(1) if match else "unknown"


def assert_accessible(page, *, context: str | list | dict | None = None, ignore: Iterable[str] = ()) -> None:
    """Run axe-core on the current page; fail listing every serious or critical violation.

    context: what to check (an axe-core context: a CSS selector, {"include": ..., "exclude": ...}); all of the
    page when None. ignore: rule ids not to fail on (say why next to the call).
    """
    ignored = set(ignore)
    failing = [
        violation
        for violation in axe_violations(page, context)
        if violation.get("impact") in FAILING_IMPACTS and violation["id"] not in ignored
    ]
    if not failing:
        return
    lines = [f"{len(failing)} serious or critical accessibility violation(s) on {page.url} (axe-core {axe_version()}):"]
    for violation in failing:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            target = " ".join(" >> ".join(part) if isinstance(part, list) else part for part in node["target"])
            lines.append(f"    {target}: {node.get('html', '')[:200]}")
    raise AssertionError("\n".join(lines))


def save_screenshot(page, name: str, directory: Path, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as directory/<name>.png, and a copy in $TICKETFLOW_SCREENSHOTS when that is set.

    TICKETFLOW_SCREENSHOTS is a folder, relative to the repository's root unless absolute (docs/screenshots,
    say); it is made if missing. Returns the path in directory.
    """
    if not _NAME.match(name):
        raise ValueError(f"screenshot name {name!r}: letters, digits, '.', '_' and '-' only")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    wanted = os.environ.get(SCREENSHOTS_ENV)
    if wanted:
        folder = Path(wanted)
        folder = folder if folder.is_absolute() else REPO_ROOT / folder
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / f"{name}.png")
    return path
