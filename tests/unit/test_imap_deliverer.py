"""intake's `deliver` for the IMAP poller: which failures leave a polled mail for the next round, and which end it."""

from __future__ import annotations

import logging

import pytest
from pymongo.errors import (
    AutoReconnect,
    DocumentTooLarge,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from services.intake import inbox, mail
from services.intake.imap import PermanentFailure

RAW = b"From: ana@example.com\r\nSubject: VPN drops\r\n\r\nSince Monday.\r\n"


class Inbox:
    """inbox.receive failing with `errors` in turn (then storing), and the mails recorded as refused."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.stored, self.refused = list(errors), [], []

    def receive(self, svc, raw, sender, recipients):
        if self.errors:
            raise self.errors.pop(0)
        self.stored.append(raw)

    def record_refused(self, svc, raw, sender, reason, given_up=False):
        self.refused.append((raw, sender, reason) + (("given up",) if given_up else ()))


@pytest.fixture
def fake_inbox(monkeypatch):
    def make(*errors: Exception) -> Inbox:
        fake = Inbox(*errors)
        monkeypatch.setattr(inbox, "receive", fake.receive)
        monkeypatch.setattr(inbox, "record_refused", fake.record_refused)
        return fake

    return make


def test_a_mail_that_fails_in_every_round_for_the_same_fault_is_refused_and_recorded_at_the_last(fake_inbox, caplog):
    fake = fake_inbox(*[DocumentTooLarge("BSON document too large")] * 3)
    deliver = mail.imap_deliverer(svc=None, give_up_after=3, give_up_hours=0)
    for _ in range(2):
        with pytest.raises(DocumentTooLarge):
            deliver(RAW, "ana@example.com")  # the poller leaves it unseen for the next round
    assert fake.refused == []
    with caplog.at_level(logging.ERROR), pytest.raises(PermanentFailure) as ended:
        deliver(RAW, "ana@example.com")
    assert "could not be stored in 3 tries (DocumentTooLarge" in str(ended.value)
    assert fake.refused == [(RAW, "ana@example.com", str(ended.value), "given up")]  # taken as new if sent again
    assert "failed 3 times: left flagged" in caplog.text


def test_rounds_that_follow_each_other_within_the_hour_never_end_a_mail(fake_inbox, monkeypatch):
    """IDLE's rounds may come seconds apart (mail arriving during one starts the next): five of them are no proof
    that a mail will never go through."""
    clock = [1000.0]
    monkeypatch.setattr(mail.time, "monotonic", lambda: clock[0])
    fake = fake_inbox(*[ValueError("a fault")] * 7)
    deliver = mail.imap_deliverer(svc=None, give_up_after=5, give_up_hours=1)
    for _ in range(6):
        with pytest.raises(ValueError):
            deliver(RAW, "ana@example.com")
        clock[0] += 60
    clock[0] += 3600
    with pytest.raises(PermanentFailure):
        deliver(RAW, "ana@example.com")  # its seventh round, over an hour after its first
    assert len(fake.refused) == 1


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no servers"),
        AutoReconnect("connection closed"),
        ConnectionRefusedError(111, "refused"),
        OperationFailure("primary stepped down", 189, {"errorLabels": ["RetryableWriteError"]}),
        OperationFailure("not authorized", 13),  # credentials changed: every mail fails alike
        WriteError("disk full", 14031),
    ],
)
def test_a_database_that_cannot_be_reached_or_written_never_ends_a_mail(fake_inbox, error):
    fake = fake_inbox(*[error] * 10)
    deliver = mail.imap_deliverer(svc=None, give_up_after=3, give_up_hours=0)
    for _ in range(10):
        with pytest.raises(type(error)):
            deliver(RAW, "ana@example.com")
    deliver(RAW, "ana@example.com")  # back: stored
    assert fake.stored == [RAW] and fake.refused == []


def test_the_count_is_of_rounds_in_a_row_and_of_each_mail_alone(fake_inbox):
    other = RAW.replace(b"VPN", b"Printer")
    fake = fake_inbox(ValueError("a fault"), ValueError("a fault"), ValueError("a fault"), ValueError("a fault"))
    deliver = mail.imap_deliverer(svc=None, give_up_after=3, give_up_hours=0)
    for raw in (RAW, RAW, other, other):
        with pytest.raises(ValueError):
            deliver(raw, "ana@example.com")
    deliver(RAW, "ana@example.com")  # stored at its third try: its count goes
    fake.errors = [ValueError("a fault")] * 2
    with pytest.raises(ValueError):
        deliver(RAW, "ana@example.com")  # one failure again, not three
    with pytest.raises(PermanentFailure):
        deliver(other, "ana@example.com")  # its third
    assert fake.stored == [RAW] and [refused[0] for refused in fake.refused] == [other]


def test_a_mail_whose_refusal_cannot_be_recorded_either_still_ends(fake_inbox, monkeypatch, caplog):
    fake_inbox(KeyError("x"))

    def cannot(*args):
        raise DocumentTooLarge("too large")

    monkeypatch.setattr(inbox, "record_refused", cannot)
    deliver = mail.imap_deliverer(svc=None, give_up_after=1, give_up_hours=0)
    with pytest.raises(PermanentFailure):
        deliver(RAW, "ana@example.com")
    assert "could not record the mail from ana@example.com as refused" in caplog.text


def test_a_mail_refused_by_the_inbox_ends_at_once(fake_inbox):
    fake = fake_inbox(inbox.MailRefused(552, "Too big."))
    deliver = mail.imap_deliverer(svc=None)
    with pytest.raises(PermanentFailure, match="Too big."):
        deliver(RAW, "")
    assert fake.refused == [(RAW, "", "Too big.")]
