"""Webhooks (their last deliveries, adding one with its secret shown once, removing one) and the notifications
that ended dead, each with a Retry button."""

from __future__ import annotations

import uuid

from flask import g, redirect, request, url_for

from services.portal.admin import notify
from services.portal.handlers import UserError
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, form_data, page
from shared.clock import now

NOTICES = {
    "deleted": "The webhook is removed: it gets no more deliveries.",
    "retried": "The notification is being sent again. It leaves this list; its webhook's deliveries show how it went.",
}
EVENTS_OFFERED = "ticket.* sla.warning sla.breached"  # a new webhook's patterns: not sla.deadlines_changed's stream


def _webhooks(form: dict | None = None, errors=None, message=None, created=None, status=200):
    hooks = notify.webhooks(portal(), g.session)
    return page(
        "admin/webhooks.html", "webhooks", status, webhooks=hooks, form=form or {"events": EVENTS_OFFERED},
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
    said = (g.session.get("flash") or {}).get("dead") and portal().store.pop_flash(
        g.session["_id"], "dead", "", now()
    )  # "Retry all"'s outcome, once: taken first, so that a page that fails to draw does not keep it for later
    done = None
    if said:
        done, message = (said["text"], message) if said.get("ok") else (None, message or said["text"])
    items, more = notify.dead(portal(), g.session)
    return page(
        "admin/dead.html", "dead", status, notifications=items, more=more, message=message, notices=NOTICES, done=done
    )


@blueprint.get("/notifications")
@admin_required
def dead():
    return _dead()


@blueprint.post("/notifications/retry-all")
@admin_required
def retry_all():
    """The failed notifications the page showed as retriable, each sent again; the page then says once how it went."""
    outcome = notify.retry_all(portal(), g.session, request.form.getlist("notification_ids"))
    ok = outcome["retried"] > 0 and not (outcome["refused"] or outcome["unanswered"] or outcome["not_tried"])
    said = {"text": retried_words(outcome), "ok": ok}
    portal().store.set_flash(g.session["_id"], "dead", "", said, now())
    return redirect(url_for("admin.dead"), 303)


def retried_words(outcome: dict[str, int]) -> str:
    def count(n: int) -> str:
        return f"{n} notification{'' if n == 1 else 's'}"

    said = []
    if outcome["retried"]:
        verb = "is" if outcome["retried"] == 1 else "are"
        said.append(f"{count(outcome['retried'])} {verb} being sent again.")
    if outcome["gone"]:
        said.append(f"{count(outcome['gone'])} had left the list meanwhile (sent, retried from another page, or its "
                    "webhook removed).")  # fmt: skip
    if outcome["refused"]:
        said.append(f"notify refused {count(outcome['refused'])}.")
    if outcome["unanswered"]:
        said.append("notify stopped answering: the last one tried may or may not be sent again.")
    if outcome["not_tried"]:
        said.append(f"{count(outcome['not_tried'])} not tried: Retry all again in a moment.")
    return " ".join(said) or "Nothing to retry: no failed notification was chosen."


@blueprint.post("/notifications/<notification_id>/retry")
@admin_required
def retry(notification_id: str):
    try:
        notify.retry(portal(), g.session, notification_id)
    except UserError as exc:
        return _dead(f"That did not work: {exc.message}", exc.status)
    return redirect(url_for("admin.dead", notice="retried"), 303)
