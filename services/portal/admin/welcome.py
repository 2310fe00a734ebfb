"""The email with a new account's link to set its password, sent by the portal's worker (as check-status links are).

The page that adds an agent shows the admin a one-time link at once; the email carries a link of its own,
minted when the worker sends it, so no usable link waits in the database (only its digest, as always).
Setting a password ends every link of the account.
"""

from __future__ import annotations

import logging
import secrets
from email.message import EmailMessage

from services.portal.handlers import PASSWORD_LINK_LIFE, Portal
from shared import smtp
from shared.clock import now

log = logging.getLogger(__name__)


def queue_welcome(svc: Portal, account: dict) -> None:
    svc.store.add_welcome(account["_id"], account["email"], now())


def send_welcome_emails(svc: Portal) -> int:
    """Email each new account queued a link to set its password; how many were sent."""
    sent = 0
    for waiting in svc.store.pending_welcomes():
        token = secrets.token_urlsafe(32)
        svc.store.add_password_link(token, waiting["account_id"], now() + PASSWORD_LINK_LIFE)
        try:
            smtp.send_email(
                smtp.parse_smtp_url(svc.settings.smtp_url, svc.settings.smtp_timeout), _email(svc, waiting, token)
            )
        except smtp.SmtpError as exc:
            svc.store.use_password_link(token, now())  # not sent: the link goes too
            log.warning("welcome email %s not sent yet: %s", waiting["_id"], exc)
            return sent  # try again on the next round
        svc.store.finish_welcome(waiting["_id"], now())
        sent += 1
    return sent


def _email(svc: Portal, waiting: dict, token: str) -> EmailMessage:
    url = f"{svc.settings.portal_url}/password/{token}"
    days = PASSWORD_LINK_LIFE.days
    message = EmailMessage()
    message["From"] = svc.settings.notify_from
    message["To"] = waiting["email"]
    message["Subject"] = "Your account on the help desk"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Hello,\n\nAn admin has added you to the help desk as an agent. Choose your password here (the link\n"
        f"works once, for {days} days):\n\n{url}\n\nThen sign in at {svc.settings.portal_url}/login with this "
        "email address.\n"
    )
    return message
