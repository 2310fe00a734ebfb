"""Passwords of agents and admins: set from a one-time link, asked for by email ("Forgot your password?"),
changed with the current one, a new link an admin gives; and the emails the portal's worker sends about them.

Every password link is one use, its token's digest alone stored (`PortalStore.new_password_link`). Setting or
changing a password ends every session and link of the account, and the account keeps the moment
(`password_changed_at`): a link or a session made before it is void even when made in the same instant as the
change (a sign-in with the old password racing it ends at the session's next check, within a minute).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from services.portal import domain, mailing
from services.portal.handlers import (
    PASSWORD_LINK_LIFE,
    Portal,
    UserError,
    count_attempt,
    failures_key,
    password_matches,
    shown,
    start_session,
    within_limits,
)
from shared import smtp
from shared.clock import now, written

log = logging.getLogger(__name__)
RESET_LINK_LIFE = timedelta(hours=1)
# "Forgot your password?" requests a clock hour, checked in this order and each counted only once the ones before
# it passed: per client network, per address from that network, per address. Each mails the address: the caps
# keep the form from mailing someone again and again, and one stranger uses up 3 of the owner's 10, not all
LIMITS = (("client", 20), ("address-client", 3), ("address", 10))
LINK_GONE = (
    "Links to set a password work once, for a while. Ask for a new one with “Forgot your password?” on the "
    "sign-in page, or ask an admin."
)


def url(svc: Portal, token: str) -> str:
    """A password link as people get it (pages, the API, emails): under TICKETFLOW_PORTAL_URL."""
    return f"{svc.settings.portal_url}/password/{token}"


def send_password_link(svc: Portal, account_id: str, to: str, subject: str, text: Callable[[str], str], life) -> None:
    """Mint a link to set the account's password (`life` long) and email `text(url)`; when the server does not take
    the email the link goes too (smtp.SmtpError: the job tries again later, with a link of its own)."""
    token = svc.store.new_password_link(account_id, now(), life)
    try:
        mailing.send(svc.settings, to, subject, text(url(svc, token)))
    except smtp.SmtpError:
        svc.store.use_password_link(token, now())
        raise


def link_account(svc: Portal, token: str) -> dict | None:
    """The account a link sets the password of, while the link is good (unused, in time, not older than the
    account's last password change, the account enabled); else None."""
    link = svc.store.password_link(token, now())
    account = svc.store.account(link["account_id"]) if link else None
    return account if account is not None and domain.password_link_good(link, account) else None


def set_password(svc: Portal, token: str, password: str) -> dict:
    """Set the password of the link's account (once); every session and every other link of the account ends,
    and so do its failed sign-ins (whoever holds the link reads the account's email)."""
    problems = domain.password_problems(password)
    if problems:
        raise UserError("Choose another password.", {"password": problems})
    link = svc.store.use_password_link(token, now())
    account = svc.store.account(link["account_id"]) if link else None
    if account is None or not domain.password_link_good(link, account):
        raise UserError(LINK_GONE, status=404)
    _new_password(svc, account, password)
    svc.store.clear_failures(account["email"])
    return account


def change_password(
    svc: Portal, session: dict, current: str, new: str, again: str, device: str | None = None
) -> tuple[str, dict]:
    """A signed-in person's new password, given their current one: every session of the account ends (one someone
    else took too) and so do its password links; the (token, session) of a new one for this browser.

    A wrong current password counts as a failed sign-in of the account's email: a session left open on a shared
    computer cannot be used to guess it."""
    account = svc.store.account(session["account_id"])
    if account is None or account.get("disabled_at"):
        raise UserError("This account cannot sign in any more.", status=403)
    errors: dict[str, list[str]] = {}
    if not current:  # nothing tried: no failure counted
        errors["current"] = ["Enter your current password."]
    else:
        counted = failures_key(svc, account["email"], account, device)
        count_attempt(svc, counted, "Too many wrong passwords.")
        if not password_matches(svc, account.get("password_hash"), current):
            errors["current"] = ["This is not your current password."]
    if problems := domain.password_problems(new):
        errors["password"] = problems
    if not again:  # said with the new password's problems, not once they are mended
        errors["again"] = ["Type the new password again."]
    elif new != again:
        errors["again"] = ["This is not the same as the new password above."]
    elif not errors and new == current:
        errors["password"] = ["This is your current password. Choose a new one."]
    if errors:
        raise UserError("Some answers need another look.", errors)
    svc.store.clear_failures(account["email"])  # a new password ends every lock of the email, as a link's does
    _new_password(svc, account, new)
    return start_session(svc, account=account)


def _new_password(svc: Portal, account: dict, password: str) -> None:
    at = now()
    svc.store.set_password_hash(account["_id"], svc.hasher.hash(password), at)
    svc.store.end_password_links_of(account["_id"])  # the emailed link, when the admin's was used (or the reverse)
    svc.store.end_sessions_of(account["_id"])
    if account.get("password_hash"):  # a change, not a new account's first password: its person is told
        svc.store.add_account_notice(account["email"], "password-changed", at)
    log.info("account %s: its password changed", account["email"])


def new_link(svc: Portal, account_id: str, by: str, own_id: str | None = None) -> tuple[dict, str]:
    """(the account, a one-time link token) for an admin to give someone who cannot choose a password by email
    (it never arrives, or they never had one): 3 days; the account's earlier links end (a reload of the page
    that showed one makes a new one), its password works until the link is used, and its person is told by
    email. `by`: who, for the log; `own_id`: the admin's own account, whose password "Your password" changes."""
    if own_id is not None and own_id == account_id:
        raise UserError("Change your own password on “Your password”.", status=409)
    account = svc.store.account(account_id)
    if account is None:
        raise UserError("No such account.", status=404)
    if account.get("disabled_at"):
        raise UserError("The account is disabled: enable it first.", status=409)
    at = now()
    svc.store.end_password_links_of(account_id)
    token = svc.store.new_password_link(account_id, at, PASSWORD_LINK_LIFE)
    first = not account.get("password_hash")  # as it is when the link is made: the person may use it at once
    svc.store.add_account_notice(account["email"], "admin-first-link" if first else "admin-link", at)
    log.info("account %s: %s made a new link to set its password", account["email"], by)
    return shown(account), token


def request_reset(svc: Portal, email: str, client: str) -> None:
    """Note the request for the worker, which emails a link when the address is an enabled account's: the page
    answers the same whether or not it is one (nobody learns who has an account). Limits apply."""
    email = email.strip().lower()
    if not domain.email_ok(email):
        raise UserError(
            "Some answers need another look.",
            {"email": ["Enter the email address you sign in with, like ada@example.com."]},
        )
    at = now()
    keys = {"client": client, "address-client": f"{email}|{client}", "address": email}
    within_limits(svc, "reset", LIMITS, keys, at)
    svc.store.add_password_reset(email, at)


# the worker's side
def send_reset(svc: Portal, request: dict) -> str:
    """Email the account at the request's address a link to choose a new password: "sent"; "no-account" when no
    enabled account has that address; "superseded" when its password changed after the request (its links
    ended then; a request still waiting or retrying mints none after). The link goes again if the email does not."""
    account = svc.store.account_by_email(request["email"])
    if account is None or account.get("disabled_at"):
        return "no-account"
    changed = account.get("password_changed_at")
    if changed and request["created_at"] < changed:
        return "superseded"
    minutes = int(RESET_LINK_LIFE.total_seconds() // 60)
    send_password_link(
        svc,
        account["_id"],
        account["email"],
        "Choose a new password for the help desk",
        lambda url: (
            "Hello,\n\nSomeone, we hope you, asked for a new password for your account on the help desk. Choose "
            f"one here (the link works once, for {minutes} minutes):\n\n{url}\n\n"
            "If you did not ask for it, ignore this email: your password stays as it is.\n"
        ),
        RESET_LINK_LIFE,
    )
    return "sent"


NOTICES = {
    "password-changed": (
        "Your password on the help desk was changed",
        "The password of your account on the help desk was changed on {when}. If you did it, there is nothing to "
        "do. If you did not, choose a new one at once with “Forgot your password?” ({portal}/password/forgot) "
        "and tell an admin.\n",
    ),
    "admin-link": (
        "A link to set your password on the help desk",
        "On {when} an admin made a link to set a new password for your account on the help desk, to give to "
        "you. Your password works until the link is used. If you did not ask for it, tell an admin.\n",
    ),
    "address-changed-old": (
        "The address you sign in with on the help desk was changed",
        "On {when} an admin changed the address you sign in with on the help desk to {address}, where your ticket "
        "emails go from now on. Your password stays as it is. If this is wrong, tell an admin.\n",
    ),
    "address-changed-new": (
        "You sign in to the help desk with this address",
        "On {when} an admin changed the address of your account on the help desk to this one ({address}): sign "
        "in with it from now on ({portal}/login). Your password stays as it is.\n",
    ),
    "admin-first-link": (
        "A link to set your password on the help desk",
        "On {when} an admin made a link for you to choose your password for your account on the help desk (it "
        "has none yet), to give to you. If you did not ask for it, tell an admin.\n",
    ),
}


def send_notice(svc: Portal, notice: dict) -> str:
    """Tell an account's person what happened to their password or address; "sent", or "no-account" when it is
    gone (a notice to an address the account had names it by its id)."""
    about = notice.get("account_id")
    if (svc.store.account(about) if about else svc.store.account_by_email(notice["email"])) is None:
        return "no-account"
    subject, text = NOTICES[notice["kind"]]
    when = written(notice["at"], svc.settings.time_zone)  # the desk's zone, as notify's emails
    text = "Hello,\n\n" + text.format(when=when, portal=svc.settings.portal_url, address=notice.get("address", ""))
    mailing.send(svc.settings, notice["email"], subject, text)
    return "sent"
