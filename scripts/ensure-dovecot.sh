#!/usr/bin/env bash
# Make sure Debian's Dovecot IMAP server is on PATH for intake's IMAP tests; install it with apt-get if not.
# The tests start private instances (tests/mailserver.py): the packaged system service is kept stopped and
# disabled, so nothing listens on ports 143/993 because of this script.
set -euo pipefail

PACKAGES=(dovecot-core dovecot-imapd)
POLICY=/usr/sbin/policy-rc.d

give_up() {
    echo "ticketflow: no dovecot for the IMAP tests ($1); install Debian's packages: apt-get install ${PACKAGES[*]}" >&2
    exit 1
}

on_path() { command -v dovecot >/dev/null 2>&1 || [[ -x /usr/sbin/dovecot ]]; }

on_path && exit 0

command -v apt-get >/dev/null 2>&1 || give_up "dovecot is not on PATH and there is no apt-get"
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo -n"
apt() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2; }
has_candidate() { apt-cache policy dovecot-imapd 2>/dev/null | grep -q 'Candidate: [0-9]'; }

# The package's postinst starts the service through invoke-rc.d / deb-systemd-invoke; a policy-rc.d that
# answers 101 ("action forbidden") keeps it from starting at all. Docker images ship one; otherwise one is
# put in place for the install only.
own_policy=""
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\n# ticketflow: ensure-dovecot.sh, during apt-get install only\nexit 101\n' | $SUDO tee $POLICY >/dev/null
    $SUDO chmod 755 $POLICY
    own_policy=1
fi
remove_policy() { [[ -z $own_policy ]] || $SUDO rm -f $POLICY; }
trap remove_policy EXIT

echo "ticketflow: installing ${PACKAGES[*]} with apt-get ..." >&2
if ! has_candidate; then
    apt update -q || give_up "apt-get update failed"
fi
if ! apt install -y -q "${PACKAGES[@]}"; then
    # Lists older than the mirror's files (404s): fetch them again once.
    { apt update -q && apt install -y -q "${PACKAGES[@]}"; } ||
        give_up "apt-get install ${PACKAGES[*]} failed"
fi
remove_policy
own_policy=""

# Whatever the policy did: the system service neither runs nor starts at boot.
if [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
else
    $SUDO /etc/init.d/dovecot stop >/dev/null 2>&1 || true
    $SUDO update-rc.d dovecot disable >/dev/null 2>&1 || true
fi

on_path || give_up "apt-get installed ${PACKAGES[*]}, yet dovecot is not on PATH"
echo "ticketflow: dovecot $(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version)" >&2
