"""The accounts of the help desk: who signs in to the console, as agent or admin; disabling and enabling them, a new
link to set a password, deleting a disabled one."""

from __future__ import annotations

from flask import g, redirect, url_for

from services.portal import handlers, passwords
from services.portal.admin import people
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "disabled": "The account is disabled: its sessions ended and it cannot sign in.",
    "disabled-agent": "The account is disabled: its sessions ended and it cannot sign in. Its agent is away "
    "now, so it gets no new tickets. Give its open tickets to others from its page in Agents, or from the queue.",
    "disabled-agent-available": "The account is disabled: its sessions ended and it cannot sign in. Its agent could "
    "not be set away just now, so it still takes new tickets of its teams: set it away on its page in Agents.",
    "disabled-shared": "The account is disabled: its sessions ended and it cannot sign in. Its agent is left as it "
    "is: another account still signs in as that agent.",
    "enabled": "The account is enabled again: it signs in with its password.",
    "enabled-agent": "The account is enabled again: it signs in with its password. Its agent is still away: "
    "set it available on its page in Agents when it takes tickets again.",
    "deleted": "The account is deleted.",
    "enabled-no-password": "The account is enabled again. It has no password yet and no link waiting (disabling "
    "and enabling end an account's links): give its person one with “New password link” on its row.",
    "enabled-no-password-agent": "The account is enabled again. It has no password yet and no link waiting "
    "(disabling and enabling end an account's links): give its person one with “New password link” on its row. "
    "Its agent is still away: set it available on its page in Agents when it takes tickets again.",
}


@blueprint.get("/")
@admin_required
def index():
    return _page()


def _page(form=None, errors=None, message=None, added=None, status=200, link=None):
    accounts = portal().store.list_accounts()
    return page(
        "admin/index.html", "accounts", status, NOTICES, accounts=accounts, form=form or {}, errors=errors or {},
        message=message, added=added, link=link, me=g.session.get("account_id"),
    )  # fmt: skip


NEW_LINK_HINT = (
    "To give its person a new one-time link to set a password, use “New password link” on its row in the list above "
    "(if it is disabled, Enable it first)."
)


@blueprint.post("/accounts")
@admin_required
def add_account():
    form = form_data()
    try:
        account, token = people.add_account(
            portal(), g.session, form.get("email", ""), form.get("role", ""), form.get("agent_id") or None
        )
    except handlers.UserError as exc:
        if people.ACCOUNT_TAKEN in exc.errors.get("email", []):  # added already (a reload resends the form that
            exc.errors["email"] = [*exc.errors["email"], NEW_LINK_HINT]  # added it): its link is one button away
        return _page(form, exc.errors, exc.message, status=exc.status)
    return _page(added={"email": account["email"], "link": passwords.url(portal(), token)})


@blueprint.post("/accounts/<account_id>/disabled")
@admin_required
def account_disabled(account_id: str):
    """The form's `disabled` is "true" (disable) or "false" (enable)."""
    disabled = form_data().get("disabled") == "true"
    by = {"_id": g.session.get("account_id")}
    try:
        account = handlers.set_disabled(portal(), account_id, disabled, by=by)
    except handlers.UserError as exc:
        return _page(message=exc.message, status=exc.status)
    if disabled:  # someone who left: no new tickets go to them
        said = people.leaves(portal(), g.session, account)
    else:
        away = people.still_away(portal(), g.session, account)
        said = "enabled-agent" if away else "enabled"
        if not (portal().store.account(account["_id"]) or {}).get("password_hash"):  # never set: a new link it needs
            said = "enabled-no-password-agent" if away else "enabled-no-password"
    return redirect(url_for("admin.index", notice=said), 303)


@blueprint.get("/accounts/<account_id>/password-link")
@admin_required
def password_link_page(account_id: str):
    """The address the link was shown at, opened again (Back, a bookmark): the accounts, no new link."""
    return redirect(url_for("admin.index"), 303)


@blueprint.post("/accounts/<account_id>/password-link")
@admin_required
def password_link(account_id: str):
    """A one-time link to set a password, shown once for the admin to give the person (another account's)."""
    try:
        account, token = passwords.new_link(
            portal(), account_id, by=f"admin {g.session.get('email')}", own_id=g.session.get("account_id")
        )
    except handlers.UserError as exc:
        return _page(message=exc.message, status=exc.status)
    return _page(link={"email": account["email"], "link": passwords.url(portal(), token)})


@blueprint.post("/accounts/<account_id>/delete")
@admin_required
def delete_account(account_id: str):
    """A disabled account, deleted for good (asked once more on the page)."""
    try:
        handlers.delete_account(portal(), account_id, by={"_id": g.session.get("account_id")})
    except handlers.UserError as exc:
        return _page(message=exc.message, status=exc.status)
    return redirect(url_for("admin.index", notice="deleted"), 303)
