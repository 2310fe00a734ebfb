"""notify's email: a message built with threading headers, sent over SMTP (shared.smtp parses SMTP_URL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from services.notify.domain import Message, SendError
from shared import smtp
from shared.smtp import SmtpConfig, parse_smtp_url

__all__ = ["SmtpConfig", "build_email", "parse_smtp_url", "send_email"]

_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # safe on the left of @ in a Message-ID, and without "+"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def build_email(sender: str, recipient: str, message: Message, ticket_id: str, notification_id: str) -> EmailMessage:
    """The email, threaded under its ticket; the Message-ID is stable, so a resend is the same message.

    The Message-ID names the ticket too (`<notification+ticket@ticketflow>`), and References names the ticket's
    thread: a reply whose client keeps only In-Reply-To still finds its ticket when it comes back by mail.
    """
    for name, value in (("sender", sender), ("recipient", recipient)):
        if _CONTROL.search(value):
            raise ValueError(f"{name} must not contain line breaks or control characters: {value!r}")
    for name, value in (("ticket_id", ticket_id), ("notification_id", notification_id)):
        if not _ID_PART.fullmatch(value):
            raise ValueError(f"{name} may hold letters, digits, '.', '_' and '-' only: {value!r}")
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = f"<{notification_id}+{ticket_id}@ticketflow>"
    email["In-Reply-To"] = f"<ticket-{ticket_id}@ticketflow>"
    email["References"] = f"<ticket-{ticket_id}@ticketflow>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    email.set_content(message.text, subtype="plain", charset="utf-8")
    email.add_alternative(message.html, subtype="html", charset="utf-8")
    return email


def send_email(config: SmtpConfig, email: EmailMessage, sessions: smtp.Sessions | None = None) -> None:
    """Hand the email to the SMTP server (over a kept connection of `sessions`, if given); SendError with a short
    reason for any failure."""
    try:
        if sessions is None:
            smtp.send_email(config, email)
        else:
            sessions.send(config, email)
    except smtp.SmtpError as exc:
        raise SendError(str(exc), unreachable=exc.unreachable) from exc
