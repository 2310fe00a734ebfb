"""SLA policies: the four priorities' terms, each one's versions, editing one, and what a draft would have done."""

from __future__ import annotations

from flask import g, redirect, url_for

from services.portal import domain
from services.portal.admin import sla
from services.portal.handlers import UserError
from services.portal.pages import admin_required, error_page, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "saved": "The policy is saved. New tickets of this priority run under it.",
    "unchanged": "Nothing changed: these are the policy's terms already, so its version stays.",
}


@blueprint.get("/policies")
@admin_required
def policies():
    return page("admin/policies.html", "policies", policies=sla.policies(portal(), g.session))


def _edit(priority: str, form: dict | None = None, errors=None, message=None, status=200, what_if=None, draft_odd=()):
    if priority not in sla.PRIORITIES:
        return error_page(404, "No such priority", "Policies are per priority: emergency, high, normal or low.")
    found = sla.policy(portal(), g.session, priority)
    return page(
        "admin/policy.html", "policies", status, priority=priority, form=form or sla.policy_form(found["policy"]),
        errors=errors or {}, message=message, notices=NOTICES, what_if=what_if, draft_odd=draft_odd,
        oddities=[] if draft_odd else domain.policy_oddities(found["policy"]), **found,
    )  # fmt: skip


@blueprint.get("/policies/<priority>")
@admin_required
def policy(priority: str):
    return _edit(priority)


@blueprint.post("/policies/<priority>")
@admin_required
def put_policy(priority: str):
    form = form_data()
    draft_odd = domain.policy_oddities(sla.policy_body(form))
    # allowed, but likely a slip: asked once more, nothing saved. "Save anyway" confirms the slips it was shown
    # (their digest): another draft typed after the question, odd otherwise, is asked about again
    if draft_odd and form.get("odd_confirmed") != domain.oddities_digest(draft_odd):
        return _edit(priority, form, draft_odd=draft_odd)
    try:
        _, changed = sla.put_policy(portal(), g.session, priority, form)
    except UserError as exc:
        return _edit(priority, form, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.policy", priority=priority, notice="saved" if changed else "unchanged"), 303)


@blueprint.post("/policies/<priority>/what-if")
@admin_required
def what_if(priority: str):
    """The draft in the form, replayed over the last 30 days by sla; the form keeps the draft."""
    form = form_data()
    try:
        answer = sla.what_if(portal(), g.session, priority, form)
    except UserError as exc:
        return _edit(priority, form, exc.errors, exc.message, exc.status)
    # what the draft would do, and what in it is likely a slip (said as a save would: the what-if saves nothing)
    return _edit(priority, form, what_if=answer, draft_odd=domain.policy_oddities(sla.policy_body(form)))
