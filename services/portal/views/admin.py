"""Admins' pages: the accounts of the help desk."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from services.portal import handlers
from services.portal.pages import admin_required, portal

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.get("/")
@admin_required
def index():
    return _page()


def _page(form=None, errors=None, message=None, link=None, status=200):
    accounts = portal().store.list_accounts()
    html = render_template(
        "admin/index.html", accounts=accounts, form=form or {}, errors=errors or {}, message=message, link=link
    )
    return html, status


@blueprint.post("/accounts")
@admin_required
def add_account():
    form = {name: request.form.get(name, "").strip() for name in ("email", "role", "agent_id")}
    try:
        account, token = handlers.create_account(portal(), form["email"], form["role"], form["agent_id"] or None, None)
    except handlers.UserError as exc:
        return _page(form, exc.errors, exc.message, status=exc.status)
    link = url_for("auth.password", token=token, _external=False)
    return _page(
        message=f"Account {account['email']} added. Send them this one-time link to set a password:", link=link
    )
