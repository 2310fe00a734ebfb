"""Webhooks (their last deliveries, adding one with its secret shown once, removing one) and the notifications
that ended dead, each with a Retry button."""

from __future__ import annotations

import uuid

from flask import g, redirect, url_for

from services.portal.admin import notify
from services.portal.handlers import UserError
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "deleted": "The webhook is removed: it gets no more deliveries.",
    "retried": "The notification is being sent again. It leaves this list; its webhook's deliveries show how it went.",
}


def _webhooks(form: dict | None = None, errors=None, message=None, created=None, status=200):
    hooks = notify.webhooks(portal(), g.session)
    return page(
        "admin/webhooks.html", "webhooks", status, webhooks=hooks, form=form or {"events": "ticket.* sla.*"},
        form_key=(form or {}).get("form_key") or uuid.uuid4().hex,
        errors=errors or {}, message=message, notices=NOTICES, created=created,
    )  # fmt: skip


@blueprint.get("/webhooks")
@admin_required
def webhooks():
    return _webhooks()


@blueprint.post("/webhooks")
@admin_required
def add_webhook():
    form = form_data()
    try:
        hook, secret = notify.add_webhook(portal(), g.session, form)
    except UserError as exc:
        if exc.status == 409:  # sent before: a new form for another webhook
            form = {name: value for name, value in form.items() if name != "form_key"}
        return _webhooks(form, exc.errors, exc.message, status=exc.status)
    return _webhooks(created={"webhook": hook, "secret": secret})


@blueprint.post("/webhooks/<webhook_id>/delete")
@admin_required
def delete_webhook(webhook_id: str):
    try:
        notify.delete_webhook(portal(), g.session, webhook_id)
    except UserError as exc:
        return _webhooks(message=exc.message, status=exc.status)
    return redirect(url_for("admin.webhooks", notice="deleted"), 303)


def _dead(message=None, status=200):
    items = notify.dead(portal(), g.session)
    done = None
    said = g.session.get("flash") and portal().store.pop_flash(g.session["_id"])  # "Retry all"'s outcome, once
    if said and said.get("page") == "dead":
        done, message = (said["text"], message) if said.get("ok") else (None, message or said["text"])
    return page("admin/dead.html", "dead", status, notifications=items, message=message, notices=NOTICES, done=done)


@blueprint.get("/notifications")
@admin_required
def dead():
    return _dead()


@blueprint.post("/notifications/retry-all")
@admin_required
def retry_all():
    """Every failed notification of the list that can be sent again; the page then says once how many were."""
    outcome = notify.retry_all(portal(), g.session)
    said = {"page": "dead", "text": retried_words(outcome), "ok": not outcome["failed"]}
    portal().store.set_flash(g.session["_id"], said)
    return redirect(url_for("admin.dead"), 303)


def retried_words(outcome: dict[str, int]) -> str:
    retried, gone, failed = outcome["retried"], outcome["gone"], outcome["failed"]
    said = [f"{retried} {'notification is' if retried == 1 else 'notifications are'} being sent again."]
    if gone:
        said.append(f"{gone} had left the list meanwhile (sent, or retried from another page).")
    if failed:
        said.append(f"{failed} could not be retried: notify refused or did not answer. Try again in a moment.")
    return " ".join(said)


@blueprint.post("/notifications/<notification_id>/retry")
@admin_required
def retry(notification_id: str):
    try:
        notify.retry(portal(), g.session, notification_id)
    except UserError as exc:
        return _dead(f"That did not work: {exc.message}", exc.status)
    return redirect(url_for("admin.dead", notice="retried"), 303)
