"""intake's IMAP poller: each unseen mail of one mailbox handed to `deliver`, and marked \\Seen once it is stored.

TICKETFLOW_IMAP_URL: imaps://user:pass@host[:port]/MAILBOX (TLS, port 993) or imap://... (plain, port 143: for
loopback and tests). User, password and mailbox are percent-decoded; the mailbox is INBOX when the URL names none.

intake's mail process runs `ImapPoller(url, deliver).run(stop)` in a thread. A round fetches every unseen mail with
BODY.PEEK[] (which leaves \\Seen alone) and calls `deliver(raw, envelope_sender)`: when it returns, the mail is
stored and gets \\Seen; when it raises PermanentFailure, the mail gets \\Seen and \\Flagged and is never fetched
again; any other exception leaves it unseen for the next round. Between rounds the poller waits in IDLE (renewed
every `poll_seconds`) or, on a server without IDLE, sleeps `poll_seconds`. Pollers sharing a mailbox may deliver a
mail twice (both fetch it before either marks it); the store keeps one per Message-ID.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

from services.intake.imap_client import Session, connect, ok, one_line, quoted
from shared.config import ConfigError

log = logging.getLogger(__name__)

_SCHEMES = {"imaps": (True, 993), "imap": (False, 143)}
_UID = re.compile(rb"\bUID (\d+)")


class PermanentFailure(Exception):
    """The mail can never be stored (too big, refused): it is marked \\Seen and \\Flagged, and not fetched again."""


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    tls: bool
    username: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"


def parse_imap_url(url: str) -> ImapConfig:
    """ImapConfig from TICKETFLOW_IMAP_URL; ConfigError (without the password) for anything it cannot use."""
    parts = urlsplit(url.strip())
    shown = re.sub(r"(//[^:/@]*:)[^/]*@", r"\1***@", url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigError(f"TICKETFLOW_IMAP_URL must start with imaps:// or imap://, got {shown!r}")
    tls, default_port = _SCHEMES[parts.scheme.lower()]
    if not parts.hostname:
        raise ConfigError(f"TICKETFLOW_IMAP_URL has no host, got {shown!r}")
    try:
        port = default_port if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"TICKETFLOW_IMAP_URL has a port that is not a number from 1 to 65535, got {shown!r}")
    if not parts.username or parts.password is None:
        raise ConfigError(f"TICKETFLOW_IMAP_URL needs a user and a password (user:pass@host), got {shown!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"TICKETFLOW_IMAP_URL takes no ?query or #fragment, got {shown!r}")
    mailbox = unquote(parts.path[1:]) or "INBOX"
    if not mailbox.isascii() or not mailbox.isprintable():
        raise ConfigError(f"TICKETFLOW_IMAP_URL: the mailbox name must be printable ASCII, got {shown!r}")
    return ImapConfig(parts.hostname, port, tls, unquote(parts.username), unquote(parts.password), mailbox)


def envelope_sender(raw: bytes) -> str:
    """The Return-Path's address ("" for the null sender <>), else the From address, else ""."""
    headers = BytesHeaderParser().parsebytes(raw, headersonly=True)
    value = headers.get("Return-Path", headers.get("From", ""))
    return parseaddr(str(value))[1]


class ImapPoller:
    """Delivers the unseen mail of one mailbox: `poll_once()` for one round, `run(stop)` for a thread's life."""

    def __init__(
        self,
        url: str,
        deliver: Callable[[bytes, str], None],
        poll_seconds: float = 30.0,
        timeout: float = 30.0,
        log: logging.Logger = log,
        ssl_context: ssl.SSLContext | None = None,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> None:
        self.config = parse_imap_url(url)
        self.deliver, self.poll_seconds, self.timeout, self.log = deliver, poll_seconds, timeout, log
        # imaplib's own default context checks no certificate: always pass one that does.
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        c = self.config
        self.where = f"{'imaps' if c.tls else 'imap'}://{c.username}@{c.host}:{c.port}/{c.mailbox}"

    def poll_once(self) -> int:
        """Connect, deliver every unseen mail, log out; how many were delivered. Connection errors are raised."""
        with self._session() as imap:
            return self._deliver_unseen(imap)

    def run(self, stop: threading.Event) -> None:
        """Rounds until `stop` is set; after any error it logs why, waits (longer each time) and connects again."""
        failures = 0
        while not stop.is_set():
            try:
                with self._session() as imap:
                    idle = "IDLE" in ok(imap.capability(), "CAPABILITY")[0].decode().upper().split()
                    while not stop.is_set():
                        self._deliver_unseen(imap, stop)
                        failures = 0  # a whole round went well
                        if "EXISTS" in imap.untagged_responses:
                            continue  # mail came during the round: the server told of it then, and IDLE won't again
                        if idle:
                            imap.idle(self.poll_seconds, stop)
                        else:
                            stop.wait(self.poll_seconds)
            except Exception as exc:  # noqa: BLE001 - the thread outlives every failure
                failures += 1
                delay = min(self.retry_max_seconds, self.retry_seconds * 2 ** min(failures - 1, 30))
                expected = isinstance(exc, OSError | imaplib.IMAP4.error)
                self.log.warning(
                    "IMAP %s: %s; connecting again in %g s", self.where, _reason(exc), delay, exc_info=not expected
                )
                stop.wait(delay)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        c = self.config
        imap = connect(c.host, c.port, c.tls, self.ssl_context, self.timeout)
        try:
            ok(imap.login(c.username, c.password), "LOGIN")
            ok(imap.select(quoted(c.mailbox)), f"SELECT {c.mailbox}")
            yield imap
        except BaseException:
            with contextlib.suppress(OSError):
                imap.shutdown()
            raise
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):  # the server went away meanwhile: logout left the socket open
            with contextlib.suppress(OSError):
                imap.shutdown()

    def _deliver_unseen(self, imap: Session, stop: threading.Event | None = None) -> int:
        """Deliver every unseen mail; afterwards imap.untagged_responses holds what the server told from the search
        on (an EXISTS: more mail came meanwhile, perhaps after the search saw the mailbox)."""
        imap.noop()  # the session's view catches up with mail that arrived since its last command
        imap.untagged_responses.clear()  # imaplib keeps every response it was not asked for: a leak, else
        uids = (ok(imap.uid("SEARCH", "UNSEEN"), "UID SEARCH")[0] or b"").split()
        delivered = 0
        for uid in uids:
            if stop is not None and stop.is_set():
                break
            delivered += self._deliver_one(imap, uid.decode())
        return delivered

    def _deliver_one(self, imap: Session, uid: str) -> bool:
        raw = self._fetch(imap, uid)
        if raw is None:
            return False  # expunged by another client since the search
        try:
            self.deliver(raw, envelope_sender(raw))
        except PermanentFailure as exc:
            self.log.warning("IMAP %s: mail %s refused for good (%s): marked seen and flagged", self.where, uid, exc)
            ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen \Flagged)"), "UID STORE")
            return False
        except Exception:
            self.log.exception("IMAP %s: mail %s not stored; it stays unseen and is tried again", self.where, uid)
            return False
        # Stored: a connection lost before this STORE delivers the mail again next round; the store keeps one.
        ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
        return True

    def _fetch(self, imap: Session, uid: str) -> bytes | None:
        for item in ok(imap.uid("FETCH", uid, "(BODY.PEEK[])"), "UID FETCH"):
            if isinstance(item, tuple) and (found := _UID.search(item[0])) and found.group(1).decode() == uid:
                return item[1]
        return None


def _reason(exc: BaseException) -> str:
    """A one-line reason for the log, without secrets."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {one_line(exc.verify_message or exc)}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, imaplib.IMAP4.error):  # imaplib raises with the server's words, often as bytes
        return f"IMAP: {one_line(exc.args[0] if len(exc.args) == 1 else exc)}"
    return one_line(f"{type(exc).__name__}: {exc}")
