"""The email with a new account's link to set its password, sent by the portal's worker (as check-status links are).

The page that adds an agent shows the admin a one-time link at once; the email carries a link of its own,
minted when the worker sends it, so no usable link waits in the database (only its digest, as always).
Setting a password ends every link of the account.
"""

from __future__ import annotations

from services.portal import passwords
from services.portal.handlers import PASSWORD_LINK_LIFE, Portal
from shared.clock import now


def queue_welcome(svc: Portal, account: dict, name: str | None = None) -> None:
    """`name`: the agent's, as the admin typed it (the email greets them by it)."""
    svc.store.add_welcome(account["_id"], account["email"], now(), name)


def send_welcome(svc: Portal, waiting: dict) -> str:
    """Email a new account a link of its own to set its password; the link goes again if the email does not.
    An account disabled meanwhile (or gone) gets nothing: "skipped"."""
    account = svc.store.account(waiting["account_id"])
    if account is None or account.get("disabled_at"):
        return "skipped"
    portal, days = svc.settings.portal_url, PASSWORD_LINK_LIFE.days
    hello = f"Hello {name}," if (name := " ".join((waiting.get("name") or "").split())) else "Hello,"
    passwords.send_password_link(
        svc,
        waiting["account_id"],
        waiting["email"],
        "Your account on the help desk",
        lambda url: (
            f"{hello}\n\nAn admin has added you to the help desk as an agent. Choose your password here (the link "
            f"works once, for {days} days):\n\n{url}\n\nThen sign in at {portal}/login with this email address.\n"
        ),
        PASSWORD_LINK_LIFE,
    )
    return "sent"
