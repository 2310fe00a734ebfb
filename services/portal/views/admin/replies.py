"""Saved replies: the list, adding one, changing one, deleting one (services/portal/admin/replies.py)."""

from __future__ import annotations

from flask import g, redirect, url_for

from services.portal import domain
from services.portal.admin import replies
from services.portal.handlers import UserError
from services.portal.pages import admin_required, error_page, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "added": "The saved reply is added: agents can insert it into a reply now.",
    "saved": "The saved reply's changes are saved.",
    "deleted": "The saved reply is deleted.",
}
LABELS = {"title": "Title", "body": "Text"}


def _gone():
    back = ("Back to the saved replies", url_for("admin.saved_replies"))
    return error_page(404, "No such saved reply", "It does not exist, or no longer does.", back=back)


def _list(form: dict | None = None, errors=None, message=None, status=200):
    return page(
        "admin/replies.html", "replies", status, saved_replies=replies.listed(portal()), form=form or {},
        errors=errors or {}, message=message, notices=NOTICES, labels=LABELS, fields=domain.SAVED_REPLY_FIELDS,
    )  # fmt: skip


@blueprint.get("/replies")
@admin_required
def saved_replies():
    return _list()


@blueprint.post("/replies")
@admin_required
def add_saved_reply():
    form = form_data()
    try:
        replies.add(portal(), g.session, form)
    except UserError as exc:
        return _list(form, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.saved_replies", notice="added"), 303)


def _edit(reply: dict, form: dict | None = None, errors=None, message=None, status=200):
    form = form or {"title": reply["title"], "body": reply["body"]}
    return page(
        "admin/reply.html", "replies", status, reply=reply, form=form, errors=errors or {}, message=message,
        labels=LABELS, fields=domain.SAVED_REPLY_FIELDS,
    )  # fmt: skip


@blueprint.get("/replies/<reply_id>")
@admin_required
def saved_reply(reply_id: str):
    try:
        return _edit(replies.one(portal(), reply_id))
    except UserError:
        return _gone()


@blueprint.post("/replies/<reply_id>")
@admin_required
def change_saved_reply(reply_id: str):
    form = form_data()
    try:
        replies.change(portal(), reply_id, form)
    except UserError as exc:
        if exc.status == 404:
            return _deleted_meanwhile(form)
        try:
            stored = replies.one(portal(), reply_id)  # its heading names it as it is, not as typed
        except UserError:
            return _deleted_meanwhile(form)
        if exc.message == replies.CHANGED:  # told now: saved again, the form replaces the version it was shown
            form = {name: value for name, value in form.items() if name != "version"}
        return _edit(stored, form, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.saved_replies", notice="saved"), 303)


DELETED_MEANWHILE = (
    "Someone deleted this saved reply since you opened it. Your title and text are in the form to add one below: "
    "add it to keep them."
)


def _deleted_meanwhile(form: dict):
    """A save of a saved reply deleted in another tab: the list, its title and text in the form that adds one."""
    kept = {"title": form.get("title", ""), "body": form.get("body", "")}
    return _list(kept, message=DELETED_MEANWHILE, status=409)


@blueprint.post("/replies/<reply_id>/delete")
@admin_required
def delete_saved_reply(reply_id: str):
    try:
        replies.delete(portal(), reply_id)
    except UserError:
        return _gone()
    return redirect(url_for("admin.saved_replies", notice="deleted"), 303)
