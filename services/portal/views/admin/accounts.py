"""The accounts of the help desk: who signs in to the console, as agent or admin."""

from __future__ import annotations

from flask import url_for

from services.portal import handlers
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, form_data, page


@blueprint.get("/")
@admin_required
def index():
    return _page()


def _page(form=None, errors=None, message=None, added=None, status=200):
    accounts = portal().store.list_accounts()
    return page(
        "admin/index.html", "accounts", status, accounts=accounts, form=form or {}, errors=errors or {},
        message=message, added=added,
    )  # fmt: skip


@blueprint.post("/accounts")
@admin_required
def add_account():
    form = form_data()
    try:
        account, token = handlers.create_account(
            portal(), form.get("email", ""), form.get("role", ""), form.get("agent_id") or None, None
        )
    except handlers.UserError as exc:
        return _page(form, exc.errors, exc.message, status=exc.status)
    link = portal().settings.portal_url + url_for("auth.password", token=token)
    return _page(added={"email": account["email"], "link": link})
