"""`ticketflow send-mail`: a mail to intake's mail-in listener, as a requester's mail client would send it.

A new mail opens a ticket. With `--reply-to FILE` (an .eml the local sink kept, say the receipt) it answers that
mail as mail clients do: "Re: " and the subject, In-Reply-To and References naming it, the original quoted below.
"""

from __future__ import annotations

import smtplib
import sys
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

# Headers folded where mail clients fold them, at spaces: the default (78) turns a longer message id (notify's
# are 88 characters) into encoded words, which no client writes and threading cannot read.
LINES = policy.default.clone(max_line_length=998)


def build(sender: str, to: str, subject: str, body: str, reply_to: Path | None = None) -> EmailMessage:
    """The mail; a reply to the mail in `reply_to` when given (its subject, threading headers and a quote).
    Addresses are taken without the spaces and line ends around them (one pasted from a file keeps its "\r",
    which would end the mail's headers after the first)."""
    mail = EmailMessage(policy=LINES)
    mail["From"], mail["To"] = sender.strip(), to.strip()
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain="ticketflow-cli.localhost")
    if reply_to is not None:
        original = BytesParser(policy=policy.default).parsebytes(reply_to.read_bytes())
        original_id = str(original.get("Message-ID", "")).strip()
        subject = subject or str(original.get("Subject", ""))
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        if original_id:
            mail["In-Reply-To"] = original_id
            mail["References"] = " ".join(filter(None, [str(original.get("References", "")).strip(), original_id]))
        part = original.get_body(("plain",))
        quoted = part.get_content() if part is not None else ""
        said = f"On {original.get('Date', 'an earlier day')}, {original.get('From', 'the help desk')} wrote:"
        body = f"{body}\n\n{said}\n" + "".join(f"> {line}\n" for line in quoted.splitlines())
    mail["Subject"] = subject or "(no subject)"
    mail.set_content(body)
    return mail


def send(host: str, port: int, mail: EmailMessage) -> int:
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        print(f"ticketflow: intake's mail-in on {host}:{port} did not take the mail: {exc}", file=sys.stderr)
        return 1
    print(f"sent {mail['Message-ID']} to {host}:{port}: {mail['Subject']}")
    return 0
