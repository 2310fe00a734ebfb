#!/usr/bin/env bash
# Make sure Debian's chromium is on PATH for the browser tests (tests/browser); install it with apt-get if not.
# Playwright drives this browser: it never downloads one of its own (no `playwright install`).
set -euo pipefail

PACKAGES=(chromium chromium-driver)

give_up() {
    echo "ticketflow: no chromium for the browser tests ($1); install Debian's packages: apt-get install ${PACKAGES[*]}" >&2
    exit 1
}

command -v chromium >/dev/null 2>&1 && exit 0

command -v apt-get >/dev/null 2>&1 || give_up "chromium is not on PATH and there is no apt-get"
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo -n"
apt() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2; }
# No package lists yet (a fresh machine): apt-get knows of no chromium until they are fetched.
has_candidate() { apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; }

echo "ticketflow: installing ${PACKAGES[*]} with apt-get ..." >&2
if ! has_candidate; then
    apt update -q || give_up "apt-get update failed"
fi
if ! apt install -y -q "${PACKAGES[@]}"; then
    # Lists older than the mirror's files (404s): fetch them again once.
    { apt update -q && apt install -y -q "${PACKAGES[@]}"; } ||
        give_up "apt-get install ${PACKAGES[*]} failed"
fi
command -v chromium >/dev/null 2>&1 || give_up "apt-get installed ${PACKAGES[*]}, yet chromium is not on PATH"
# Debian's launcher prints a harmless shell warning on stderr on some machines: keep only the version line.
echo "ticketflow: $(chromium --version 2>/dev/null || echo 'chromium installed')" >&2
