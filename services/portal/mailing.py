"""The portal's own emails (check-status links, new accounts' welcomes, links to choose a new password), sent by its
worker from job queues.

A job is taken by one worker at a time. One that cannot be sent (the SMTP server or intake does not answer,
the server refuses the address) goes back with a growing delay, and after ATTEMPTS tries ends `failed`: an
address that is always refused never holds up the jobs behind it.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from services.portal.client import Unreachable
from shared import smtp
from shared.clock import now
from shared.smtp import OWN_MESSAGE_DOMAIN

log = logging.getLogger(__name__)
ATTEMPTS = 5
DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
STALE = timedelta(minutes=5)  # a job taken this long ago by a worker that died is free again


def work(svc, queue: str, handle: Callable[[object, dict], str], most: int = 50) -> int:
    """Do up to `most` due jobs of `queue` with `handle(svc, job) -> outcome`; how many were done."""
    done = 0
    while done < most and (job := svc.store.take_job(queue, now(), STALE)) is not None:
        try:
            outcome = handle(svc, job)
        except Exception as exc:  # noqa: BLE001 - any job that fails is tried again later, then given up
            if not isinstance(exc, (Unreachable, smtp.SmtpError)):
                log.exception("%s job %s failed unexpectedly", queue, job["_id"])
            if job.get("attempts", 1) >= ATTEMPTS:
                log.error("%s job %s failed for good after %s tries: %s", queue, job["_id"], ATTEMPTS, exc)
                svc.store.finish_job(queue, job["_id"], "failed", now())
            else:
                delay = DELAYS[min(job.get("attempts", 1), len(DELAYS)) - 1]
                log.warning("%s job %s not done yet (again in %s): %s", queue, job["_id"], delay, exc)
                svc.store.retry_job(queue, job["_id"], now() + delay)
            continue
        svc.store.finish_job(queue, job["_id"], outcome, now())
        done += 1
    return done


LINE = 72  # characters a line of an email's text, as notify's emails are written


def wrapped(text: str) -> str:
    """The text with each line longer than LINE broken between words (a link, or any word longer than a line,
    stays whole: a broken link does not open); the lines a line makes keep its indent or quote marks."""

    def fill(line: str) -> str:
        prefix = re.match(r"[ \t>]*", line).group()
        return textwrap.fill(
            line, LINE, subsequent_indent=prefix, break_long_words=False, break_on_hyphens=False,
            expand_tabs=False, replace_whitespace=False,
        )  # fmt: skip

    return "\n".join(fill(line) if len(line) > LINE else line for line in text.split("\n"))


def send(settings, to: str, subject: str, text: str) -> None:
    """One plain-text email from NOTIFY_FROM over SMTP_URL; smtp.SmtpError when the server does not take it."""
    message = EmailMessage()
    message["From"] = settings.notify_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now())
    # a new one each time (each carries a link of its own), never one that names a ticket as notify's do
    message["Message-ID"] = make_msgid("portal", domain=OWN_MESSAGE_DOMAIN)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    message.set_content(wrapped(text))
    smtp.send_email(smtp.parse_smtp_url(settings.smtp_url, settings.smtp_timeout), message)
