"""notify's email: a message built with threading headers, sent over SMTP (shared.smtp parses SMTP_URL)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from email import policy
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.message import Message as Email
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

from services.notify.domain import Message, SendError
from shared import smtp
from shared.events import MAIL_MESSAGE_ID
from shared.smtp import OWN_MESSAGE_DOMAIN, SmtpConfig, parse_smtp_url

__all__ = ["SmtpConfig", "build_email", "parse_smtp_url", "send_email"]

_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # safe on the left of @ in a Message-ID, and without "+"
_PIECES = re.compile(r" *[^ ]+")  # a subject's words, each with the spaces before it (_folded)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in any client's source view, 7-bit clean for any relay
_UTF8_HEADER = Charset("utf-8")
_UTF8_HEADER.header_encoding = BASE64  # a subject's words beyond ASCII: the shorter encoding for most scripts
_FOLD_AT = 78  # RFC 5322's "SHOULD" for a line
_MAX_LINE = 998  # its "MUST"
# The plain email's policy: a header that needs folding is set folded already (`_subject`), so none is folded
# again; a line is at most _MAX_LINE long (the boundary's Content-Type line is over 78).
_POLICY = policy.compat32.clone(max_line_length=_MAX_LINE)
# The other emails' policy: the Subject, set folded already (set_raw), is never folded again, even with a word
# longer than a line (refold_source "long" would, its own way: see _subject).
_MODERN = policy.default.clone(refold_source="none")


def build_email(
    sender: str,
    recipient: str,
    message: Message,
    ticket_id: str,
    notification_id: str,
    replying_to: str | None = None,
    answers: bool = True,
) -> Email:
    """The email, threaded under its ticket; the Message-ID is stable, so a resend is the same message.

    The Message-ID names the ticket too (`<notification+ticket@ticketflow>`), and References names the ticket's
    thread: a reply whose client keeps only In-Reply-To still finds its ticket when it comes back by mail.
    `replying_to`: the Message-ID (without <>) of the requester's mail that opened the ticket (by mail): References
    starts with it, and, when the email `answers` it (the receipt), In-Reply-To names it, so the requester's mail
    client shows the receipt, and the emails after it, under the mail they sent. One a header cannot carry
    (events.MAIL_MESSAGE_ID) is left out.

    When the sender and the recipient are printable ASCII that fits a line (nearly always), the email is built
    with the email package's plain (compat32) classes: the modern EmailMessage parses every header it is given,
    about 2 ms an email, a fifth of notify's worker. A subject beyond ASCII or a line is encoded and folded by
    `_subject` in both. Otherwise (an address or a name to encode: the envelope then comes from the modern
    policy's parse, with SMTPUTF8 where needed) the whole email is the modern EmailMessage, as it always was.
    A header value with a line break of any kind is refused (ValueError): it would start a header of its own.
    """
    for name, value in (("sender", sender), ("recipient", recipient)):
        if _CONTROL.search(value):
            raise ValueError(f"{name} must not contain line breaks or control characters: {value!r}")
    for name, value in (("ticket_id", ticket_id), ("notification_id", notification_id)):
        if not _ID_PART.fullmatch(value):
            raise ValueError(f"{name} may hold letters, digits, '.', '_' and '-' only: {value!r}")
    if message.subject.splitlines() not in ([], [message.subject]):  # any break str.splitlines knows
        raise ValueError(f"the subject must not contain line breaks: {message.subject!r}")
    plain = all(_fits(name, value) for name, value in (("From", sender), ("To", recipient)))
    email = MIMEMultipart("alternative", policy=_POLICY) if plain else EmailMessage(policy=_MODERN)
    email["From"] = sender
    email["To"] = recipient
    if plain:
        email["Subject"] = _subject(message.subject)
    else:  # as folded here: the modern policy would parse it and fold it again, its own way (see _subject)
        email.set_raw("Subject", _subject(message.subject))
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = f"<{notification_id}+{ticket_id}@{OWN_MESSAGE_DOMAIN}>"
    thread = f"<ticket-{ticket_id}@{OWN_MESSAGE_DOMAIN}>"
    root = f"<{replying_to}>" if replying_to and MAIL_MESSAGE_ID.fullmatch(replying_to) else None
    for name, value in (
        ("In-Reply-To", root if root and answers else thread),
        ("References", f"{root} {thread}" if root else thread),
    ):
        if plain:
            email[name] = value
        else:  # as it is (under 998 characters): the modern policy would write a long id as encoded words
            email.set_raw(name, value)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    if plain:
        email.attach(_text_part(message.text, "plain"))
        email.attach(_text_part(message.html, "html"))
    else:
        email.set_content(message.text, subtype="plain", charset="utf-8")
        email.add_alternative(message.html, subtype="html", charset="utf-8")
    return email


def _fits(name: str, value: str) -> bool:
    """Printable ASCII that fits one line after its header's name: it goes out as it is."""
    return value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= _FOLD_AT


def _subject(value: str) -> str:
    """The Subject as it goes out, read back exactly as written: as it is when it fits; printable ASCII folded
    before one of its spaces (`_folded`); else (beyond ASCII, or holding what reads as an encoded word) its leading
    ASCII words (the ticket's `[#number]`) as they are and the rest encoded (RFC 2047) and folded by
    `email.header.Header`, which cuts between characters inside encoded words only. Not the modern policy's
    folding: it drops a space at each fold between encoded words and where a fold meets two spaces, may write an
    empty `=?utf-8?q??=` (which some clients show as it is), and may fold right after "Subject:"."""
    literal = "=?" not in value  # else even ASCII is encoded: a reader would take "=?utf-8?q?x?=" for "x"
    if literal and _fits("Subject", value):
        return value
    if literal and value.isascii() and value.isprintable():
        return _folded(value, _FOLD_AT - len("Subject: "))
    words = value.split(" ")
    plain = list(itertools.takewhile(_plain_word, words[: len(words) - 1]))  # at least the last word is encoded
    while plain and len("Subject: ") + len(" ".join(plain)) > _FOLD_AT // 2:
        plain.pop()
    prefix = " ".join(plain) + " " if plain else ""
    first_line = len("Subject: ") + len(prefix)
    encoded = Header(value[len(prefix) :], _UTF8_HEADER, _FOLD_AT, header_name="x" * (first_line - 2))
    return prefix + encoded.encode(linesep="\r\n")


def _folded(value: str, room: int) -> str:
    """ASCII text in lines of at most _FOLD_AT (a word longer than a line stays whole), each fold a line break put
    before the spaces between two words, so that unfolding (taking the breaks out) gives the text back, every
    space kept: no line ends in a space (a generator may strip it) or is only spaces. The first line has `room`."""
    pieces = _PIECES.findall(value)  # each word with the spaces before it
    pieces[-1] += value[len("".join(pieces)) :]  # spaces at the end, if any, stay on the last line
    lines, line = [], pieces[0]
    for piece in pieces[1:]:
        if len(line) + len(piece) > room:
            lines.append(line)
            line, room = piece, _FOLD_AT
        else:
            line += piece
    return "\r\n".join([*lines, line])


def _plain_word(word: str) -> bool:
    """A word of the subject that goes out as it is: printable ASCII that cannot be read as an encoded word."""
    return bool(word) and word.isascii() and word.isprintable() and "=?" not in word


def _text_part(text: str, subtype: str) -> MIMEText:
    """A text part: 7bit when it is ASCII in lines a relay takes, quoted-printable UTF-8 otherwise; it ends with
    a line break, as the modern policy's parts do."""
    if not text.endswith("\n"):
        text += "\n"
    plain = text.isascii() and "\r" not in text and max(map(len, text.split("\n"))) <= _MAX_LINE
    part = MIMEText(text, subtype, "us-ascii" if plain else _UTF8, policy=_POLICY)
    del part["MIME-Version"]  # the email says it once
    return part


def send_email(
    config: SmtpConfig, email: Email, sessions: smtp.Sessions | None = None, until: float | None = None
) -> None:
    """Hand the email to the SMTP server (over a kept connection of `sessions`, if given) by `until` (a
    `time.monotonic()` time: see `shared.smtp._Timed`); SendError with a short reason for any failure."""
    try:
        if sessions is None:
            smtp.send_email(config, email, until)
        else:
            sessions.send(config, email, until)
    except smtp.SmtpError as exc:
        raise SendError(str(exc), unreachable=exc.unreachable) from exc
