"""intake's IMAP poller against a real, private Dovecot (tests/mailserver.py): no broker, no database."""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest

from services.intake.imap import ImapPoller, PermanentFailure
from tests.mailserver import Dovecot, running_dovecot

SEEN, FLAGGED = "\\Seen", "\\Flagged"
_numbers = itertools.count(1)


def make_mail(subject: str = "VPN drops", sender: str = "ana@example.com", return_path: str | None = None) -> bytes:
    n = next(_numbers)
    mail = EmailMessage()
    if return_path is not None:
        mail["Return-Path"] = return_path
    mail["From"] = f"Ana Lima <{sender}>"
    mail["To"] = "help@example.com"
    mail["Subject"] = f"{subject} {n}"
    mail["Message-ID"] = f"<mail-{n}@example.com>"
    mail.set_content(f"Hello,\n\nmail number {n}.\n")
    return mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))


class Deliveries:
    """The poller's `deliver`: records (raw, sender); `fail_with` makes it raise instead (N times, or always)."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []
        self.fail_with: Exception | None = None
        self.failures_left = 0  # 0 with fail_with set: fail every time
        self._changed = threading.Condition()

    def __call__(self, raw: bytes, sender: str) -> None:
        with self._changed:
            if self.fail_with is not None:
                self.failures_left -= 1
                if self.failures_left == 0:
                    error, self.fail_with = self.fail_with, None
                    raise error
                raise self.fail_with
            self.calls.append((raw, sender))
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[bytes, str]]], bool], timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.calls), timeout), f"delivered only {self.calls!r}"

    @property
    def raws(self) -> list[bytes]:
        return [raw for raw, _ in self.calls]


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    """A new, empty mailbox of the test's own (on a running server: a test before may have stopped it)."""
    dovecot.start()
    name = f"Test {next(_numbers)}"  # a space: the URL's mailbox is percent-decoded, SELECT quotes it
    dovecot.create(name)
    return name


@pytest.fixture
def deliveries() -> Deliveries:
    return Deliveries()


@pytest.fixture
def start_poller() -> Iterator[Callable[..., ImapPoller]]:
    """start_poller(poller): its run() in a thread; at the end the thread must stop within 5 s of being asked."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start(poller: ImapPoller) -> ImapPoller:
        stop = threading.Event()
        thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        thread.start()
        started.append((thread, stop))
        return poller

    yield start
    for _, stop in started:
        stop.set()
    for thread, _ in started:
        thread.join(timeout=5)
        assert not thread.is_alive(), "run() did not return within 5 s of stop being set"


def poller_for(dovecot: Dovecot, mailbox: str, deliver, **kwargs) -> ImapPoller:
    kwargs = {"poll_seconds": 60.0, "timeout": 5.0, "retry_seconds": 0.05, "retry_max_seconds": 0.5, **kwargs}
    return ImapPoller(dovecot.url(mailbox), deliver, **kwargs)


def test_each_unseen_mail_is_delivered_once_and_then_seen(dovecot, mailbox, deliveries):
    mails = [make_mail(), make_mail(), make_mail()]
    for raw in mails:
        dovecot.append(raw, mailbox)
    read_before = make_mail()
    dovecot.append(read_before, mailbox, flags=SEEN)  # seen already (someone read it in a mail client): left alone
    poller = poller_for(dovecot, mailbox, deliveries)

    assert poller.poll_once() == 3
    assert deliveries.raws == mails  # byte for byte, in the mailbox's order
    assert [SEEN in flags for flags, _ in dovecot.messages(mailbox)] == [True, True, True, True]
    assert poller.poll_once() == 0
    assert len(deliveries.calls) == 3


def test_the_envelope_sender_is_the_return_path_else_the_from_address(dovecot, mailbox, deliveries):
    dovecot.append(make_mail(sender="ana@example.com", return_path="<bounces+ana@lists.example.com>"), mailbox)
    dovecot.append(make_mail(sender="mailer-daemon@example.com", return_path="<>"), mailbox)
    dovecot.append(make_mail(sender="ben@example.com"), mailbox)

    poller_for(dovecot, mailbox, deliveries).poll_once()

    assert [sender for _, sender in deliveries.calls] == ["bounces+ana@lists.example.com", "", "ben@example.com"]


def test_a_failed_delivery_leaves_the_mail_unseen_and_the_next_poll_delivers_it(dovecot, mailbox, deliveries, caplog):
    first, second = make_mail(), make_mail()
    dovecot.append(first, mailbox)
    dovecot.append(second, mailbox)
    deliveries.fail_with, deliveries.failures_left = ConnectionError("MongoDB is away"), 1
    poller = poller_for(dovecot, mailbox, deliveries)

    assert poller.poll_once() == 1  # the first failed; the poller went on with the second
    assert deliveries.raws == [second]
    assert [SEEN in flags for flags, _ in dovecot.messages(mailbox)] == [False, True]
    assert "not stored; it stays unseen" in caplog.text and "MongoDB is away" in caplog.text

    assert poller.poll_once() == 1
    assert deliveries.raws == [second, first]
    assert [SEEN in flags for flags, _ in dovecot.messages(mailbox)] == [True, True]


def test_a_permanent_failure_marks_the_mail_seen_and_flagged(dovecot, mailbox, deliveries, caplog):
    dovecot.append(make_mail(), mailbox)
    deliveries.fail_with, deliveries.failures_left = PermanentFailure("552 larger than 25 MiB"), 1
    poller = poller_for(dovecot, mailbox, deliveries)

    assert poller.poll_once() == 0
    [(flags, _)] = dovecot.messages(mailbox)
    assert {SEEN, FLAGGED} <= flags
    assert "refused for good (552 larger than 25 MiB)" in caplog.text
    assert poller.poll_once() == 0  # not fetched again
    assert deliveries.calls == []


def test_run_delivers_a_mail_that_arrives_while_it_waits_in_idle(dovecot, mailbox, deliveries, start_poller, caplog):
    dovecot.append(make_mail(), mailbox)
    start_poller(poller_for(dovecot, mailbox, deliveries, poll_seconds=60.0))
    deliveries.wait_for(lambda calls: len(calls) == 1)

    later = make_mail()
    dovecot.append(later, mailbox)
    # poll_seconds is 60: only the server's word in IDLE brings it this soon
    deliveries.wait_for(lambda calls: len(calls) == 2)
    assert deliveries.raws[1] == later
    wait_until(lambda: all(SEEN in flags for flags, _ in dovecot.messages(mailbox)), what="both mails seen")
    assert "connecting again" not in caplog.text


def test_run_does_not_leave_a_mail_that_arrived_during_a_round_for_the_next_poll(
    dovecot, mailbox, deliveries, start_poller
):
    first, second = make_mail(), make_mail()

    def deliver(raw: bytes, sender: str) -> None:
        deliveries(raw, sender)
        if raw == first:  # after the round's search: the server may tell of it before IDLE begins, not in IDLE
            dovecot.append(second, mailbox)

    dovecot.append(first, mailbox)
    start_poller(poller_for(dovecot, mailbox, deliver, poll_seconds=60.0))

    deliveries.wait_for(lambda calls: len(calls) == 2)
    assert deliveries.raws == [first, second]


def test_run_renews_idle_every_poll_seconds_and_retries_a_failed_delivery(
    dovecot, mailbox, deliveries, start_poller, caplog
):
    mail = make_mail()
    deliveries.fail_with, deliveries.failures_left = ConnectionError("MongoDB is away"), 1
    start_poller(poller_for(dovecot, mailbox, deliveries, poll_seconds=0.3))
    dovecot.append(mail, mailbox)

    deliveries.wait_for(lambda calls: len(calls) == 1)  # the round after the failed one: IDLE ended with DONE
    assert deliveries.raws == [mail]
    assert "connecting again" not in caplog.text  # leaving IDLE and entering it again kept the connection


def test_run_polls_a_server_without_idle_every_poll_seconds(tmp_path_factory, deliveries, start_poller):
    # tmp_path_factory: a test's own tmp_path, named after it, is too long a path for Dovecot's sockets
    with running_dovecot(tmp_path_factory.mktemp("dovecot"), extra="imap_capability = IMAP4rev1 LITERAL+") as server:
        with server.client() as imap:
            assert "IDLE" not in imap.capability()[1][0].decode()
        start_poller(poller_for(server, "INBOX", deliveries, poll_seconds=0.2))
        mail = make_mail()
        server.append(mail)
        deliveries.wait_for(lambda calls: len(calls) == 1)
        assert deliveries.raws == [mail]


def test_run_connects_again_after_the_server_restarts(dovecot, mailbox, deliveries, start_poller, caplog):
    start_poller(poller_for(dovecot, mailbox, deliveries))
    dovecot.append(make_mail(), mailbox)
    deliveries.wait_for(lambda calls: len(calls) == 1)

    dovecot.stop()
    wait_until(lambda: "connecting again" in caplog.text, what="the lost connection logged")
    dovecot.start()
    after = make_mail()
    dovecot.append(after, mailbox)

    deliveries.wait_for(lambda calls: len(calls) == 2, timeout=15)
    assert deliveries.raws[1] == after


def test_imaps_with_the_servers_certificate(dovecot, mailbox, deliveries):
    mail = make_mail()
    dovecot.append(mail, mailbox)
    url = dovecot.url(mailbox, tls=True)

    with pytest.raises(ssl.SSLCertVerificationError):  # the default context does not trust a self-signed one
        ImapPoller(url, deliveries, timeout=5.0).poll_once()
    assert ImapPoller(url, deliveries, timeout=5.0, ssl_context=dovecot.ssl_context()).poll_once() == 1
    assert deliveries.raws == [mail]


def test_a_wrong_password_is_logged_and_the_thread_keeps_trying(dovecot, mailbox, deliveries, start_poller, caplog):
    caplog.set_level(logging.WARNING, logger="services.intake.imap")
    url = dovecot.url(mailbox, password="not-the-password")
    start_poller(ImapPoller(url, deliveries, timeout=5.0, retry_seconds=0.05, retry_max_seconds=0.1))

    def attempts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "AUTHENTICATIONFAILED" in r.getMessage()]

    wait_until(lambda: len(attempts()) >= 3, what="three failed logins logged")
    assert "connecting again" in attempts()[0].getMessage()
    assert "not-the-password" not in caplog.text and dovecot.password not in caplog.text
    assert deliveries.calls == []


def test_pollers_sharing_a_mailbox_lose_no_mail(dovecot, mailbox, deliveries, start_poller):
    for _ in range(2):
        start_poller(poller_for(dovecot, mailbox, deliveries))
    mails = [make_mail() for _ in range(20)]
    for raw in mails:
        dovecot.append(raw, mailbox)

    deliveries.wait_for(lambda calls: {raw for raw, _ in calls} == set(mails))
    wait_until(lambda: all(SEEN in flags for flags, _ in dovecot.messages(mailbox)), what="every mail seen")
