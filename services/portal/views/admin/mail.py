"""Mail in: every inbound mail with what it became (a ticket, a requester's message, kept or ignored) and why."""

from __future__ import annotations

from flask import g, request

from services.portal.admin import mail
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, page


@blueprint.get("/mail")
@admin_required
def mail_in():
    outcome = request.args.get("outcome") or None
    if outcome not in (None, *mail.OUTCOMES):
        outcome = None
    found = mail.inbound(portal(), g.session, outcome, request.args.get("cursor") or None)
    return page("admin/mail.html", "mail", outcome=outcome, outcomes=mail.OUTCOMES, **found)
