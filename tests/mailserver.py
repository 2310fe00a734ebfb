"""A private Dovecot IMAP server for the tests: config, certificate, user, mail and log under one directory.

Dovecot is Debian's package (scripts/ensure-dovecot.sh, `make dovecot`). Nothing is written outside `root`; the
server listens on 127.0.0.1 only, plain IMAP on one free port and IMAP over TLS (a self-signed certificate made
for the test) on another. 2.3 and 2.4 spell their settings differently: the config is written for the version
found (2.3 is what Debian 12 ships and what the suite runs on; the 2.4 template follows 2.4's documentation).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from ticketflow.local import REPO_ROOT, free_ports, log_tail

USER = "helpdesk@example.com"
PASSWORD = "s3cret /@%pw"  # a space, a slash, an @ and a %: the URL must percent-encode them all

_CONF_23 = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = ticketflow-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
mail_chroot = {chroot}
valid_chroot_dirs = {chroot}
mail_location = maildir:{inside}/Maildir
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = home={inside}/home
}}
{services}"""

_CONF_24 = """\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {root}/run
state_dir = {root}/state
instance_name = ticketflow-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_server_cert_file = {root}/cert.pem
ssl_server_key_file = {root}/key.pem
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
mail_chroot = {chroot}
valid_chroot_dirs = {chroot}
mail_home = {inside}/home
mail_driver = maildir
mail_path = {inside}/Maildir
mailbox_idle_check_interval = 1 secs
passdb passwd-file {{
  passwd_file_path = {root}/passwd
}}
userdb static {{
}}
{services}"""

# No growing delay for the same IP's failed logins (anvil's auth penalty): the tests log in wrongly on purpose.
_SERVICES = """\
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
"""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)


def dovecot_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = re.match(r"(\d+)\.(\d+)", out).groups()
    return int(major), int(minor)


class Dovecot:
    """A private Dovecot: start(), stop(), URLs for the poller, and an IMAP client's view of its mailboxes."""

    host = "127.0.0.1"

    def __init__(self, root: Path, binary: str, extra: str = "") -> None:
        """`extra`: more settings, appended to the config (e.g. `imap_capability = IMAP4rev1` for a server without
        IDLE)."""
        self.root, self.binary, self.extra = root, binary, extra
        if len(str(root / "run")) + len("/token-login/imap-urlauth") >= 108:  # sun_path's limit, the NUL included
            raise ValueError(f"{root}: too long a path for Dovecot's sockets; use a shorter temporary folder")
        self.user, self.password = USER, PASSWORD
        self.port, self.tls_port = free_ports(2)  # two different ones
        self.proc: subprocess.Popen | None = None
        self.cert = root / "cert.pem"
        self.log_path = root / "dovecot.log"
        self._write_files()

    # --- URLs -------------------------------------------------------------------------------------------------

    def url(self, mailbox: str = "INBOX", tls: bool = False, password: str | None = None) -> str:
        scheme, port = ("imaps", self.tls_port) if tls else ("imap", self.port)
        secret = quote(self.password if password is None else password, safe="")
        return f"{scheme}://{quote(self.user, safe='')}:{secret}@{self.host}:{port}/{quote(mailbox, safe='')}"

    @property
    def imap_url(self) -> str:
        return self.url()

    @property
    def imaps_url(self) -> str:
        return self.url(tls=True)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks it names 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))

    # --- the process ------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server (in the foreground of its own process group); return once it greets an IMAP client."""
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (self._greets(self.port, None) and self._greets(self.tls_port, self.ssl_context())):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}:\n{log_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not greet within {timeout} s:\n{log_tail(self.log_path)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the master (it stops its children), SIGKILL to the whole group after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a login or imap process that outlived the master

    def _greets(self, port: int, context: ssl.SSLContext | None) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1) as sock:
                if context is None:
                    return sock.makefile("rb").readline().startswith(b"* OK")
                with context.wrap_socket(sock, server_hostname=self.host) as tls:
                    return tls.makefile("rb").readline().startswith(b"* OK")
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- a client's view --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            imap.login(self.user, self.password)
            yield imap
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                with contextlib.suppress(OSError):
                    imap.shutdown()

    def create(self, mailbox: str) -> None:
        with self.client() as imap:
            _ok(imap.create(_quoted(mailbox)))

    def append(self, raw: bytes, mailbox: str = "INBOX", flags: str = "") -> None:
        with self.client() as imap:
            _ok(imap.append(_quoted(mailbox), f"({flags})" if flags else None, None, raw))

    def messages(self, mailbox: str = "INBOX") -> list[tuple[set[str], bytes]]:
        """(flags, raw) of each message in UID order, read without changing a flag."""
        with self.client() as imap:
            _ok(imap.select(_quoted(mailbox), readonly=True))
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            _ok((typ, data))
        found = []
        for item in data:
            if isinstance(item, tuple):
                flags = {flag.decode() for flag in imaplib.ParseFlags(item[0])}
                found.append((flags, item[1]))
        return found

    def _write_files(self) -> None:
        for folder in ("run", "state", "mail/home"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.cert),
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        me = pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            # As root, Dovecot runs neither its login processes nor mail access as root. The mail user cannot
            # reach into pytest's 0700 directories, so its processes chroot into `mail` (done while still root).
            login_user, mail_user = _first_user("dovenull", "nobody"), pwd.getpwnam(_first_user("nobody"))
            uid, gid, chroot, inside = mail_user.pw_uid, mail_user.pw_gid, self.root / "mail", ""
            for folder in (chroot, chroot / "home"):
                os.chown(folder, uid, gid)
        else:
            login_user, uid, gid, chroot, inside = me.pw_name, me.pw_uid, me.pw_gid, "", self.root / "mail"
        template = _CONF_24 if dovecot_version(self.binary) >= (2, 4) else _CONF_23
        conf = template.format(
            root=self.root, port=self.port, internal_user=me.pw_name, login_user=login_user, uid=uid, gid=gid,
            chroot=chroot, inside=inside, services=_SERVICES.format(port=self.port, tls_port=self.tls_port),
        )  # fmt: skip
        (self.root / "dovecot.conf").write_text(conf + self.extra + "\n")


@contextlib.contextmanager
def running_dovecot(root: Path, extra: str = "") -> Iterator[Dovecot]:
    """A private Dovecot under `root` for the block (a test that stops it need not start it again: `start()` does);
    a test module makes it its fixture."""
    server = Dovecot(root, require_dovecot(), extra)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def require_dovecot() -> str:
    """The dovecot binary; scripts/ensure-dovecot.sh installs Debian's when there is none (as `make test` does)."""
    if binary := dovecot_binary():
        return binary
    result = subprocess.run([str(REPO_ROOT / "scripts" / "ensure-dovecot.sh")], capture_output=True, text=True)
    if binary := dovecot_binary():
        return binary
    pytest.fail(f"no dovecot for the IMAP tests: {result.stderr.strip()} (make dovecot)", pytrace=False)


def _first_user(*names: str) -> str:
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError(f"none of the users {names} exists to run Dovecot's login processes")


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, list]) -> None:
    typ, data = response
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ}: {data!r}")
