"""The email with a link to choose a new password, for "Forgot your password?" on the sign-in page; sent by the
portal's worker from the requests the page noted, as check-status links are.

The page answers the same whatever address was typed, and the worker decides: an enabled account's address gets
a link of its own (one hour, once; only its digest is stored), any other address nothing. Asking changes no
password: the old one works until the link is used, so a stranger who asks for someone's link locks nobody out.
"""

from __future__ import annotations

from services.portal import mailing
from services.portal.handlers import RESET_LINK_LIFE, Portal


def send_reset(svc: Portal, request: dict) -> str:
    """Email the account at the request's address a link to choose a new password: "sent"; "no-account" when
    no enabled account has that address. The link goes again if the email does not."""
    account = svc.store.account_by_email(request["email"])
    if account is None or account.get("disabled_at"):
        return "no-account"
    minutes = int(RESET_LINK_LIFE.total_seconds() // 60)
    mailing.send_password_link(
        svc,
        account["_id"],
        account["email"],
        "Choose a new password for the help desk",
        lambda url: (
            "Hello,\n\nSomeone, we hope you, asked for a new password for your account on the help desk. Choose "
            f"one\nhere (the link works once, for {minutes} minutes):\n\n{url}\n\n"
            "If you did not ask for it, ignore this email: your password stays as it is.\n"
        ),
        RESET_LINK_LIFE,
    )
    return "sent"
