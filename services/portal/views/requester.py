"""The requester's pages: open a ticket, check a ticket's status, follow a link, read, reply and close."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, g, redirect, render_template, request, url_for

from services.portal import domain, handlers
from services.portal.pages import error_page, portal, set_session
from shared.links import LinkError

blueprint = Blueprint("requester", __name__)
FORM_KEY = re.compile(r"[A-Za-z0-9-]{8,64}")  # the page's Idempotency-Key, as the form carries it


def _home(form: dict | None = None, errors: dict | None = None, message: str | None = None, status: int = 200):
    form = form or {}
    form.setdefault("form_key", uuid.uuid4().hex)  # the Idempotency-Key: a resubmitted form opens one ticket
    page = render_template(
        "requester/home.html", topics=handlers.topics(portal()), form=form, errors=errors or {}, message=message
    )
    return page, status


@blueprint.get("/")
def home():
    return _home()


@blueprint.post("/tickets")
def open_ticket():
    form = request.form.to_dict()
    key = form.get("form_key") or ""
    if not FORM_KEY.fullmatch(key):
        form.pop("form_key", None)
        return _home(form, message="This form has expired. Please check your answers and send it again.", status=400)
    try:
        ticket = handlers.open_ticket(portal(), form, key, g.get("request_id"))
    except handlers.UserError as exc:
        return _home(form, exc.errors, exc.message, exc.status)
    _grant({"id": ticket["id"], "email": ticket["requester"]["email"]})
    return redirect(url_for("requester.ticket", ticket_id=ticket["id"], notice="opened"), 303)


def _grant(grant: dict) -> None:
    """Let this browser's session open the ticket (a new session if it has none)."""
    if g.session:
        portal().store.grant_ticket(g.session["_id"], grant["id"], grant["email"])
    else:
        token, g.session = handlers.start_session(portal(), grant=grant)
        set_session(token)


@blueprint.get("/t/<token>")
def follow_link(token: str):
    try:
        grant = handlers.follow_link(portal(), token)
    except LinkError:
        page = render_template("requester/bad_link.html", form={}, errors={})
        return page, 404
    _grant(grant)
    return redirect(url_for("requester.ticket", ticket_id=grant["id"]), 303)  # the token leaves the address bar


def _granted(ticket_id: str) -> dict | None:
    for grant in (g.session or {}).get("tickets", []):
        if grant["id"] == ticket_id:
            return grant
    return None


def _no_access():
    return error_page(
        404,
        "We cannot show this request",
        "Open it from the link in one of our emails about it, or ask for a fresh link with "
        "“Check a request” on the home page.",
    )


def _ticket_page(grant: dict, form: dict | None = None, errors: dict | None = None, message=None, status=200):
    ticket = handlers.requester_ticket(portal(), grant)
    title, explanation = domain.REQUESTER_STATUS.get(ticket["status"], (ticket["status"], ""))
    page = render_template(
        "requester/ticket.html",
        ticket=ticket,
        status_title=title,
        status_explanation=explanation,
        form=form or {},
        errors=errors or {},
        message=message,
        notice=NOTICES.get(request.args.get("notice", "")),
    )
    return page, status


NOTICES = {  # what a redirect after a change says (a fixed text: nothing from the address is shown)
    "opened": "Thank you. We have your request and have emailed you a receipt with a link to this page.",
    "sent": "Your message was sent.",
    "closed": "Your request is closed. Thank you.",
}


@blueprint.get("/tickets/<ticket_id>")
def ticket(ticket_id: str):
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    try:
        return _ticket_page(grant)
    except handlers.Refused:
        return _no_access()


@blueprint.post("/tickets/<ticket_id>/messages")
def reply(ticket_id: str):
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    body = request.form.get("body", "")
    try:
        handlers.add_message(portal(), grant, body, g.get("request_id"))
    except handlers.UserError as exc:
        return _ticket_page(grant, {"body": body}, exc.errors, exc.message, exc.status)
    return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice="sent", _anchor="conversation"), 303)


@blueprint.post("/tickets/<ticket_id>/close")
def close(ticket_id: str):
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    try:
        handlers.close_ticket(portal(), grant, g.get("request_id"))
    except handlers.UserError as exc:
        return _ticket_page(grant, {}, exc.errors, exc.message, exc.status)
    return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice="closed"), 303)


@blueprint.post("/status")
def check_status():
    form = {"status_email": request.form.get("status_email", ""), "number": request.form.get("number", "")}
    try:
        handlers.request_status_link(portal(), form["status_email"], form["number"], request.remote_addr or "")
    except handlers.UserError as exc:
        page = render_template(
            "requester/home.html", topics=handlers.topics(portal()), form=form, errors=exc.errors, message=exc.message
        )
        return page, exc.status
    return render_template("requester/status_sent.html")
