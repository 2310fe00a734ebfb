"""The email with a link to choose a new password, for "Forgot your password?" on the sign-in page; sent by the
portal's worker from the requests the page noted, as check-status links are.

The page answers the same whatever address was typed, and the worker decides: an enabled account's address gets
a link of its own (one hour, once; only its digest is stored), any other address nothing. Asking changes no
password: the old one works until the link is used, so a stranger who asks for someone's link locks nobody out.
"""

from __future__ import annotations

import secrets

from services.portal import mailing
from services.portal.handlers import RESET_LINK_LIFE, Portal
from shared import smtp
from shared.clock import now


def send_reset(svc: Portal, request: dict) -> str:
    """Email the account at the request's address a link to choose a new password: "sent"; "no-account" when
    no enabled account has that address. The link goes again if the email does not."""
    account = svc.store.account_by_email(request["email"])
    if account is None or account.get("disabled_at"):
        return "no-account"
    token = secrets.token_urlsafe(32)
    svc.store.add_password_link(token, account["_id"], now() + RESET_LINK_LIFE)
    portal, minutes = svc.settings.portal_url, int(RESET_LINK_LIFE.total_seconds() // 60)
    text = (
        "Hello,\n\nSomeone, we hope you, asked for a new password for your account on the help desk. Choose one\n"
        f"here (the link works once, for {minutes} minutes):\n\n{portal}/password/{token}\n\n"
        "If you did not ask for it, ignore this email: your password stays as it is.\n"
    )
    try:
        mailing.send(svc.settings, account["email"], "Choose a new password for the help desk", text)
    except smtp.SmtpError:
        svc.store.use_password_link(token, now())  # not sent: the link goes too
        raise
    return "sent"
