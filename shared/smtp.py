"""SMTP plumbing: SMTP_URL parsed once, one message handed to the server per call (`send_email`), or many over
connections kept open between them (`Sessions`, notify's senders).

SMTP_URL forms: smtp://host[:port] (plain, port 25), smtp://user:pass@host:587?starttls=true or
smtp+starttls://user:pass@host[:port] (STARTTLS, port 587 by default for smtp+starttls), and
smtps://user:pass@host[:port] (TLS from the start, port 465). User and password are percent-decoded;
the client logs in only when the URL names a user.
"""

from __future__ import annotations

import re
import select
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.config import ConfigError

# the right of @ in the help desk's own Message-IDs: notify's (<notification+ticket@...>, <ticket-ID@...>), which mail
# in reads back to find the ticket a reply is about, and the portal's own emails' (which name no ticket)
OWN_MESSAGE_DOMAIN = "ticketflow"

_SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class SmtpError(Exception):
    """The server did not take the message; the text is a short, one-line reason without secrets.

    `unreachable`: the message was never judged: no server answered at all (refused, timed out or cut before its
    greeting, or a greeting that was not 220: the relay's state), or the send's time ran out before the message
    was handed over (see `_Timed`). Either says nothing about this message.
    """

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "none"  # "none" | "starttls" | "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0


def parse_smtp_url(url: str, timeout: float = 10.0) -> SmtpConfig:
    """SmtpConfig from SMTP_URL; ConfigError (without the password) for anything it cannot use."""
    parts = urlsplit(url.strip())
    shown = _redacted(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigError(f"SMTP_URL must start with smtp://, smtp+starttls:// or smtps://, got {shown!r}")
    security, default_port = _SCHEMES[parts.scheme.lower()]
    if not parts.hostname:
        raise ConfigError(f"SMTP_URL has no host, got {shown!r}")
    try:
        port = default_port if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"SMTP_URL has a port that is not a number from 1 to 65535, got {shown!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"SMTP_URL takes no path, got {shown!r}")
    security = _starttls_option(parts.query, security, shown)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if username and parts.password is not None else None
    return SmtpConfig(parts.hostname, port, security, username, password, timeout)


def _starttls_option(query: str, security: str, shown: str) -> str:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "starttls" or value.lower() not in _TRUE + _FALSE:
            raise ConfigError(f"SMTP_URL takes only ?starttls=true or ?starttls=false, got {shown!r}")
        if security == "tls":
            raise ConfigError(f"SMTP_URL: smtps:// is TLS from the start; leave out ?starttls, got {shown!r}")
        security = "starttls" if value.lower() in _TRUE else "none"
    return security


def _redacted(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def send_email(config: SmtpConfig, email: Message, until: float | None = None) -> None:
    """Hand the email to the SMTP server over a connection of its own; SmtpError with a short reason for any failure.
    `until` (a `time.monotonic()` time, or None): when the send must be over, see `_Timed`."""
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _connect(config, until)
        _hand_over(smtp, email)
    except (smtplib.SMTPException, OSError) as exc:
        raise _error(exc, config) from exc
    else:
        _quit(smtp)
    finally:
        if smtp is not None:
            smtp.close()


class Sessions:
    """SMTP connections kept open for the next message: up to `keep` idle ones, shared by the sending threads.

    Mail relays take many messages per connection; a kept one saves, per message, the TCP (and TLS)
    handshake, the greeting, EHLO (STARTTLS, login) and QUIT, on both sides. A thread takes an idle one
    for a message and gives it back after; beyond `keep` (notify: as many as may send to the SMTP server
    at once) a connection is closed, so a relay never sees more open connections than concurrent sends.
    Before it is used again it is checked with RSET (answered within RSET_TIMEOUT): one that the server
    closed meanwhile (relays close idle connections after a few minutes), that does not answer 250, or
    that sat idle longer than `idle` seconds is closed and a new one opened, before anything of the
    message is sent, so a kept connection never makes a message go twice. One given back less than FRESH
    seconds ago (the next email of a busy minute) is checked without a round trip: it is used when the
    server has sent nothing on it since its last answer (a server that closes a connection, or says 421,
    makes it readable), and otherwise goes through RSET as above. Whatever fails while a message is handed
    over closes the connection, and the error is the message's, as with `send_email`. `until`: as there.
    `bound` (notify's worker): a function giving a `time.monotonic()` time no send may pass whatever its `until`
    (the worker stops: its exit, less the time to store the outcome), or None; asked at each step, so that it
    also bounds the sends under way when it is set.
    """

    RSET_TIMEOUT = 2.0  # seconds: a kept connection slower than this to answer RSET is replaced
    FRESH = 5.0  # seconds: a connection given back more recently, the server silent on it since, skips RSET

    def __init__(self, keep: int = 1, idle: float = 60.0, bound: Callable[[], float | None] | None = None) -> None:
        self.keep, self.idle, self.bound = keep, idle, bound
        self._lock = threading.Lock()
        self._idle: list[tuple[SmtpConfig, _Timed, float]] = []  # (its server, it, idle since), newest last

    def send(self, config: SmtpConfig, email: Message, until: float | None = None) -> None:
        smtp = self._reusable(config, until)
        try:
            if smtp is None:
                smtp = _connect(config, until, self.bound)
            _hand_over(smtp, email)
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            raise _error(exc, config) from exc
        except BaseException:
            _close(smtp)
            raise
        self._give_back(config, smtp)

    def close(self) -> None:
        """QUIT and close the idle connections (the worker stops)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, smtp, _ in idle:
            _quit(smtp, timeout=1.0)
            smtp.close()

    def _reusable(self, config: SmtpConfig, until: float | None) -> _Timed | None:
        """An idle connection to `config`'s server that still takes commands; None: open a new one."""
        while True:
            with self._lock:
                found = [i for i, (server, _, _) in enumerate(self._idle) if server == config]
                if not found:
                    return None
                _, smtp, since = self._idle.pop(found[-1])
            smtp.until, smtp.bound = until, self.bound  # this message's
            idle = time.monotonic() - since
            if idle < self.idle and ((idle < self.FRESH and _silent(smtp)) or _answers_rset(smtp, config.timeout)):
                return smtp
            _close(smtp)

    def _give_back(self, config: SmtpConfig, smtp: _Timed) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append((config, smtp, time.monotonic()))
                return
        _quit(smtp, timeout=1.0)
        smtp.close()


def _silent(smtp: smtplib.SMTP) -> bool:
    """Whether the server has sent nothing on the connection since its last answer: no goodbye (421), no end of
    the connection, nothing waiting in TLS's buffer. A check of the socket, without a round trip."""
    sock = smtp.sock
    try:
        if sock is None or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed meanwhile
        return False
    return not readable


def _answers_rset(smtp: _Timed, timeout: float) -> bool:
    smtp.step = min(timeout, Sessions.RSET_TIMEOUT)
    try:
        return smtp.rset()[0] == 250
    except (smtplib.SMTPException, OSError, AttributeError):  # AttributeError: no socket any more
        return False
    finally:
        smtp.step = timeout


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


class _NoTimeLeft(smtplib.SMTPServerDisconnected):
    """The send's time ran out before the message was handed over: nothing of it reached the server.

    A disconnect for smtplib, which then never masks a refusal with it (its RSET after a refused command)."""


class _Unanswered(smtplib.SMTPServerDisconnected):
    """The server took the whole message and did not answer its end within the send's time. `stopped`: the wait
    was cut by the process stopping (`bound`), not by the send's own time: no fault of the message."""

    def __init__(self, message: str, stopped: bool) -> None:
        super().__init__(message)
        self.stopped = stopped


class _Timed(smtplib.SMTP):
    """smtplib's client, each wait for the server at most `step` seconds and over by `until` (a
    `time.monotonic()` time; None: no end but the steps') and by what `bound` says (see `Sessions`), no command
    sent once that time has passed, and the message itself only while a step's wait is left for its answer.

    The server's answer to the end of a message is awaited as long as `until` allows, not one step: a server
    that has taken the message and is slow to say so (RFC 5321 gives that answer ten minutes) would otherwise
    have it sent again. notify's senders give `until` as the end of their claim on the notification, less the
    time to store the outcome, so that no other sender takes it while the send may still be going on.
    """

    def __init__(
        self, host: str, port: int, step: float, until: float | None, bound: Callable | None = None, **options
    ) -> None:
        self.step, self.until, self.bound = step, until, bound
        self._ending = self._end_sent = False  # a message's data is going out / went out: its answer may be long
        self._stopping = False  # the wait under way ends at `bound` (the process stops)
        try:
            super().__init__(host, port, timeout=self._left(step), **options)  # connects and reads the greeting
        except BaseException:
            self.close()  # a greeting cut short by the send's time leaves no socket open
            raise

    def data(self, msg):
        self._ending = True
        try:
            return super().data(msg)
        finally:
            self._ending = self._end_sent = False

    def send(self, s) -> None:
        body = self._ending and isinstance(s, bytes)  # data() sends the command as text, the message as bytes
        until = self._until()
        if body and until is not None and until - time.monotonic() < self.step:
            raise _NoTimeLeft("not sent: too little time left for the server to confirm the message")
        self._settimeout(self._left(self.step))
        super().send(s)
        self._end_sent = body

    def getreply(self):
        """The server's answer, awaited a step (the answer to the message's end: until the send's time is over),
        and never past the send's time, asked again every SLICE seconds: a bound set meanwhile (the worker
        stops) ends a wait under way, not just the next one."""
        ending, started = self._end_sent, time.monotonic()
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if self._until() is None:  # no time of its own: one step, as smtplib waits
            self._stopping = False
            self._settimeout(self.step)
            return self._read_reply(ending, started)
        while True:
            over, by_time, self._stopping = self._over(ending, started)
            left = over - time.monotonic()
            if self._answered():
                self._settimeout(max(left, 0.001))
                return self._read_reply(ending, started)
            if left <= 0:
                break
            self._select(min(self.SLICE, left))
        if by_time and not ending:  # nothing of the message went out yet
            self.close()
            raise _NoTimeLeft("not sent: no time left to send the message")
        self._settimeout(0.001)  # over: the read says so as smtplib would (a timeout, and the connection closed)
        return self._read_reply(ending, started)

    def _over(self, ending: bool, started: float) -> tuple[float, bool, bool]:
        """When the wait for an answer is over; whether by the send's time (rather than by its step), and whether
        that time is the stop's `bound`."""
        until = self._until()
        stopping = until is not None and until != self.until
        if ending:
            return until, True, stopping
        if until is not None and until < started + self.step:
            return until, True, stopping
        return started + self.step, False, False

    SLICE = 0.5  # seconds: how often a wait for the server asks again for the send's time

    def _read_reply(self, ending: bool, started: float):
        try:
            return super().getreply()
        except smtplib.SMTPServerDisconnected as exc:
            if ending and isinstance(exc.__context__, TimeoutError):
                waited, stopping = time.monotonic() - started, self._stopping
                why = " (the worker stopped)" if stopping else ""
                raise _Unanswered(f"no answer to the end of the message within {waited:.1f} s{why}", stopping) from exc
            raise

    def _answered(self) -> bool:
        """Whether something of the answer is there to read (or the connection is gone: the read says so)."""
        sock = self.sock
        if sock is None or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            return True
        return self._select(0)

    def _select(self, timeout: float) -> bool:
        """Whether the server's answer has started within `timeout` seconds (poll: any descriptor number)."""
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(max(timeout, 0) * 1000))
        except (OSError, ValueError, TypeError):  # closed meanwhile: the read says so
            return True

    def _until(self) -> float | None:
        bound = self.bound() if self.bound is not None else None
        if bound is None or (self.until is not None and self.until <= bound):
            return self.until
        return bound

    def _left(self, step: float) -> float:
        """How long the next wait (a connect, a write) may last; _NoTimeLeft when the send's time is over."""
        until = self._until()
        if until is None:
            return step
        left = until - time.monotonic()
        if left <= 0:
            raise _NoTimeLeft("not sent: no time left to send the message")
        return min(step, left)

    def _settimeout(self, timeout: float) -> None:
        if self.sock is not None:
            self.sock.settimeout(timeout)


class _TimedSSL(_Timed, smtplib.SMTP_SSL):
    """`_Timed` over TLS from the start (smtps://)."""


def _connect(config: SmtpConfig, until: float | None = None, bound: Callable | None = None) -> _Timed:
    """A connection greeted, secured and logged in as SMTP_URL says; SmtpError(unreachable) if none answered."""
    try:  # the constructor connects and reads the greeting
        if config.security == "tls":
            context = ssl.create_default_context()
            smtp = _TimedSSL(config.host, config.port, config.timeout, until, bound, context=context)
        else:
            smtp = _Timed(config.host, config.port, config.timeout, until, bound)
    except (smtplib.SMTPException, OSError) as exc:
        raise SmtpError(_reason(exc, config), unreachable=not isinstance(exc, ssl.SSLError)) from exc
    try:
        smtp.ehlo()
        if config.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, config.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _hand_over(smtp: smtplib.SMTP, email: Message) -> None:
    refused = smtp.send_message(email)
    if refused:  # some recipients taken, some not: the send did not reach everyone
        raise smtplib.SMTPRecipientsRefused(refused)


def _quit(smtp: _Timed, timeout: float | None = None) -> None:
    if timeout is not None:
        smtp.step, smtp.until, smtp.bound = timeout, None, None  # a goodbye: not worth waiting long for, nor refused
    try:
        smtp.quit()  # the server has the message; a failing QUIT must not cause a second send
    except (smtplib.SMTPException, OSError):
        pass


def _error(exc: BaseException, config: SmtpConfig) -> SmtpError:
    """What a failure while handing a message over is: never judged when its time ran out before it went out, or
    when the process stopping cut the wait for the end's answer (tried again without using up a retry)."""
    never_judged = isinstance(exc, _NoTimeLeft) or (isinstance(exc, _Unanswered) and exc.stopped)
    return SmtpError(_reason(exc, config), unreachable=never_judged)


def _reason(exc: BaseException, config: SmtpConfig) -> str:
    """A short, one-line reason for `last_error`."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, (_NoTimeLeft, _Unanswered)):
        return f"{exc} ({where})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        address, (code, text) = next(iter(exc.recipients.items()))
        return f"SMTP {code}: {_one_line(text)} (recipient {address} refused)"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {_one_line(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read timeout as a disconnect
            return f"timed out after {config.timeout:g} s ({where})"
        return f"connection closed by the server ({where})"
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP: {_one_line(str(exc))} ({where})"
    if isinstance(exc, TimeoutError):
        return f"timed out after {config.timeout:g} s ({where})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({where})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {_one_line(getattr(exc, 'verify_message', None) or exc.reason or str(exc))} ({where})"
    return f"{_one_line(exc.strerror or str(exc))} ({where})"


def _one_line(text: bytes | str, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())[:limit]
