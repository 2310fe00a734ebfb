"""The IMAP poller's pure parts: TICKETFLOW_IMAP_URL parsing, and the envelope sender of a fetched mail."""

import pytest

from services.intake.imap import ImapConfig, ImapPoller, envelope_sender, parse_imap_url
from shared.config import ConfigError


@pytest.mark.parametrize(
    "url, expected",
    [
        ("imaps://help:pw@mail.example.com", ImapConfig("mail.example.com", 993, True, "help", "pw", "INBOX")),
        ("imaps://help:pw@mail.example.com/", ImapConfig("mail.example.com", 993, True, "help", "pw", "INBOX")),
        ("imap://help:pw@127.0.0.1/INBOX", ImapConfig("127.0.0.1", 143, False, "help", "pw", "INBOX")),
        (
            "IMAPS://help:pw@mail.example.com:10993/Tickets",
            ImapConfig("mail.example.com", 10993, True, "help", "pw", "Tickets"),
        ),
        ("imap://help:pw@[::1]:1143", ImapConfig("::1", 1143, False, "help", "pw", "INBOX")),
        # user, password and mailbox are percent-decoded
        (
            "imaps://help%40example.com:p%40ss%2Fw%3Ard%20%25@mail.example.com/Help%20Desk%2FNew",
            ImapConfig("mail.example.com", 993, True, "help@example.com", "p@ss/w:rd %", "Help Desk/New"),
        ),
        ("imaps://help:@mail.example.com/INBOX", ImapConfig("mail.example.com", 993, True, "help", "", "INBOX")),
        (
            "  imaps://help:pw@mail.example.com/INBOX\n",
            ImapConfig("mail.example.com", 993, True, "help", "pw", "INBOX"),
        ),
    ],
)
def test_parse_imap_url(url, expected):
    assert parse_imap_url(url) == expected


@pytest.mark.parametrize(
    "url, complaint",
    [
        ("pop3s://help:hunter2@mail.example.com", "must start with imaps:// or imap://"),
        ("https://help:hunter2@mail.example.com", "must start with imaps:// or imap://"),
        ("mail.example.com", "must start with imaps:// or imap://"),
        ("imaps://help:hunter2@/INBOX", "has no host"),
        ("imaps://help:hunter2@mail.example.com:0", "port"),
        ("imaps://help:hunter2@mail.example.com:70000", "port"),
        ("imaps://help:hunter2@mail.example.com:imap", "port"),
        ("imaps://mail.example.com/INBOX", "needs a user and a password"),
        ("imaps://help@mail.example.com/INBOX", "needs a user and a password"),
        ("imaps://help:hunter2@mail.example.com/INBOX?tls=no", "no ?query"),
        ("imaps://help:hunter2@mail.example.com/INBOX#x", "no ?query"),
        ("imaps://help:hunter2@mail.example.com/Entr%C3%A9e", "printable ASCII"),
        ("imaps://help:hunter2@mail.example.com/IN%0D%0ABOX", "printable ASCII"),
    ],
)
def test_parse_imap_url_refuses_what_it_cannot_use_without_showing_the_password(url, complaint):
    with pytest.raises(ConfigError) as raised:
        parse_imap_url(url)
    message = str(raised.value)
    assert complaint in message and "TICKETFLOW_IMAP_URL" in message
    assert "hunter2" not in message


def test_a_raw_at_in_the_password_is_masked_too():
    with pytest.raises(ConfigError) as raised:
        parse_imap_url("imaps://help:hun@ter2@mail.example.com:99999/INBOX")
    assert "ter2" not in str(raised.value) and "hun" not in str(raised.value)


def test_the_password_is_not_in_the_configs_repr():
    assert "hunter2" not in repr(parse_imap_url("imaps://help:hunter2@mail.example.com"))


def test_the_poller_refuses_a_bad_url_when_it_is_made():
    with pytest.raises(ConfigError, match="must start with imaps:// or imap://"):
        ImapPoller("imap4://help:pw@mail.example.com", lambda raw, sender: None)


@pytest.mark.parametrize(
    "headers, sender",
    [
        (
            b"Return-Path: <bounces+ana=example.com@lists.example.org>\r\nFrom: Ana <ana@example.com>\r\n",
            "bounces+ana=example.com@lists.example.org",
        ),
        (b"Return-Path: <>\r\nFrom: Mail Delivery System <mailer-daemon@example.com>\r\n", ""),
        (b'From: "Lima, Ana" <ana@example.com>\r\n', "ana@example.com"),
        (b"From: ana@example.com (Ana Lima)\r\n", "ana@example.com"),
        (b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.com>\r\n", "jose@example.com"),
        (b"Subject: no sender at all\r\n", ""),
        # the topmost Return-Path is the one the last delivery wrote
        (b"Return-Path: <last@example.com>\r\nReturn-Path: <first@example.com>\r\n", "last@example.com"),
    ],
)
def test_envelope_sender(headers, sender):
    assert envelope_sender(headers + b"To: help@example.com\r\n\r\nbody\r\n") == sender
