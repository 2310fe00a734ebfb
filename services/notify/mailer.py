"""notify's email: a message built with threading headers, sent over SMTP (shared.smtp parses SMTP_URL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.charset import QP, Charset
from email.message import Message as Email
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

from services.notify.domain import Message, SendError
from shared import smtp
from shared.smtp import SmtpConfig, parse_smtp_url

__all__ = ["SmtpConfig", "build_email", "parse_smtp_url", "send_email"]

_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # safe on the left of @ in a Message-ID, and without "+"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in any client's source view, 7-bit clean for any relay
_FOLD_AT = 78  # RFC 5322's "SHOULD" for a line; its "MUST" is 998
# The email's own policy: its headers are set already folded (below), so none is folded again short of 998.
_POLICY = policy.compat32.clone(max_line_length=998)


def build_email(sender: str, recipient: str, message: Message, ticket_id: str, notification_id: str) -> Email:
    """The email, threaded under its ticket; the Message-ID is stable, so a resend is the same message.

    The Message-ID names the ticket too (`<notification+ticket@ticketflow>`), and References names the ticket's
    thread: a reply whose client keeps only In-Reply-To still finds its ticket when it comes back by mail.

    Built with the email package's plain (compat32) classes: its modern EmailMessage parses every header it is
    given and cost notify's worker about 2 ms an email, a fifth of its time. A header that needs encoding or
    folding (a name or subject beyond ASCII, a long subject) is still written by the modern policy, so it reads
    exactly as before; the rest are ASCII and go as they are.
    """
    for name, value in (("sender", sender), ("recipient", recipient)):
        if _CONTROL.search(value):
            raise ValueError(f"{name} must not contain line breaks or control characters: {value!r}")
    for name, value in (("ticket_id", ticket_id), ("notification_id", notification_id)):
        if not _ID_PART.fullmatch(value):
            raise ValueError(f"{name} may hold letters, digits, '.', '_' and '-' only: {value!r}")
    email = MIMEMultipart("alternative", policy=_POLICY)
    email["From"] = _header("From", sender)
    email["To"] = _header("To", recipient)
    email["Subject"] = _header("Subject", message.subject)
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = f"<{notification_id}+{ticket_id}@ticketflow>"
    email["In-Reply-To"] = f"<ticket-{ticket_id}@ticketflow>"
    email["References"] = f"<ticket-{ticket_id}@ticketflow>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    email.attach(_text_part(message.text, "plain"))
    email.attach(_text_part(message.html, "html"))
    return email


def _header(name: str, value: str) -> str:
    """The header's value as it goes out: printable ASCII that fits a line as it is; otherwise encoded (RFC 2047)
    and folded by the modern policy, addresses parsed as addresses. A line break is refused (ValueError), as the
    modern policy refuses it: it would start a header of its own."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must not contain line breaks: {value!r}")
    if value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= _FOLD_AT:
        return value
    folded = policy.default.header_factory(name, value).fold(policy=policy.SMTP)
    return folded[len(name) + 2 :].removesuffix("\r\n")


def _text_part(text: str, subtype: str) -> MIMEText:
    """A text part: 7bit when it is ASCII in lines a relay takes, quoted-printable UTF-8 otherwise; it ends with
    a line break, as the modern policy's parts do."""
    if not text.endswith("\n"):
        text += "\n"
    lines = text.splitlines() or [""]
    plain = text.isascii() and max(map(len, lines)) <= 998 and "\r" not in text
    part = MIMEText(text, subtype, "us-ascii" if plain else _UTF8, policy=_POLICY)
    del part["MIME-Version"]  # the email says it once
    return part


def send_email(config: SmtpConfig, email: Email, sessions: smtp.Sessions | None = None) -> None:
    """Hand the email to the SMTP server (over a kept connection of `sessions`, if given); SendError with a short
    reason for any failure."""
    try:
        if sessions is None:
            smtp.send_email(config, email)
        else:
            sessions.send(config, email)
    except smtp.SmtpError as exc:
        raise SendError(str(exc), unreachable=exc.unreachable) from exc
