"""The requester's pages: open a ticket, check a ticket's status, follow a link, read, reply and close."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, g, redirect, render_template, request, url_for

from services.portal import attachments, domain, finding, handlers, pages
from services.portal.client import Unreachable
from services.portal.pages import client_network, error_page, passed_on, portal, set_session
from shared.links import LinkError

blueprint = Blueprint("requester", __name__)
FORM_KEY = re.compile(r"[A-Za-z0-9-]{8,64}")  # the page's Idempotency-Key, as the form carries it


def _home(form=None, errors=None, message=None, status: int = 200, choose_again: bool = False):
    """The home page; `choose_again`: the form came back with files, which no page can keep (they are chosen again)."""
    form = form or {}
    form.setdefault("form_key", uuid.uuid4().hex)  # the Idempotency-Key: a resubmitted form opens one ticket
    page = render_template(
        "requester/home.html",
        topics=handlers.topics(portal()),
        form=form,
        errors=errors or {},
        message=message,
        choose_again=choose_again,
        notice=HOME_NOTICES.get(request.args.get("notice", "")) if request.method == "GET" else None,
    )
    return page, status


HOME_NOTICES = {
    "forgotten": "Done: this device no longer opens your requests. Their emails' links still do.",
    "forgotten-signed-in": "Done: this device no longer opens the requests it had. You are still signed in to the "
    "console: on a shared computer, sign out too.",
}


@blueprint.get("/")
def home():
    return _home()


OPEN_FIELDS = ("name", "email", "topic", "subject", "description")  # the form that opens a request, files apart


@blueprint.post("/new")
def new_request():
    """The form to open a request, filled in with what a closed request's page kept (a message it could not
    take): it only shows the form, so nothing is opened or sent until the person sends it."""
    form = {name: request.form.get(name, "") for name in OPEN_FIELDS}
    return _home({name: value for name, value in form.items() if value})


@blueprint.post("/tickets")
def open_ticket():
    form = request.form.to_dict()
    key = form.get("form_key") or ""
    if not FORM_KEY.fullmatch(key):
        form.pop("form_key", None)
        return _home(form, message="This form has expired. Please check your answers and send it again.", status=400)
    if portal().store.form_key_forgotten(key, handlers.now()):  # Back after "Forget": nobody's request again
        return _home({}, message=FORGOTTEN_FORM, status=409)
    files = attachments.chosen(request.files.getlist("files"))
    digest = handlers.form_digest(form, files)
    already = handlers.opened_already(g.session, digest)
    if already and _granted(already):
        return redirect(url_for("requester.ticket", ticket_id=already, notice="sent-before"), 303)
    try:
        ticket = handlers.open_ticket(portal(), form, key, g.get("request_id"), files, client_network())
    except handlers.UserError as exc:
        return _home(form, exc.errors, exc.message, exc.status, choose_again=bool(files))
    grant = {"id": ticket["id"], "email": ticket["requester"]["email"]}
    if not _granted(ticket["id"]) and portal().store.confirmed(ticket["id"]):  # the same form sent again, after
        # the address's owner followed an emailed link (which took the request from browsers without one)
        return _home({}, message=SENT_BEFORE_CONFIRMED, status=200)
    _grant(grant)
    portal().store.remember_opened(g.session["_id"], digest, ticket["id"], handlers.now(), key)
    notice = "opened"
    try:  # the form's key again: a resubmitted form attaches each file once
        handlers.attach_files(portal(), grant, files, None, key, g.get("request_id"))
    except handlers.UserError:
        notice = "opened-without-files"
    return redirect(url_for("requester.ticket", ticket_id=ticket["id"], notice=notice), 303)


def _open_ticket_again(same_site: bool):
    """The request form came with a token out of date (the browser's cookies gone, a session ended meanwhile):
    nothing was sent; the form comes back filled in, to send again, when it was this site's own."""
    fields = ("name", "email", "topic", "subject", "description", "form_key") if same_site else ()
    form = {name: request.form[name] for name in fields if request.form.get(name)}
    if not FORM_KEY.fullmatch(form.get("form_key", "")):
        form.pop("form_key", None)
    files = bool(same_site and attachments.chosen(request.files.getlist("files")))
    return _home(form, message=FORM_OUT_OF_DATE if form else FORM_GONE, status=403, choose_again=files)


pages.EXPIRED_FORMS["requester.open_ticket"] = _open_ticket_again


def _grant(grant: dict) -> None:
    """Let this browser's session open the ticket: under a new session id (never the one the browser brought, which
    someone may have planted to read what it is given: handlers.renew_session); a new session if it had none."""
    https = pages.served_over_https()  # then no other host sets the cookies: the forms' token may stay
    renewed = handlers.renew_session(portal(), g.session, grant["email"], https) if g.session else None
    if renewed is not None:
        token, g.session = renewed
        portal().store.grant_ticket(g.session["_id"], grant["id"], grant["email"])
    else:
        g.session = None  # none, or it ended meanwhile: a new one, with the browser's own forms' token over https
        token, g.session = handlers.start_session(portal(), grant=grant, csrf=pages.kept_forms_token())
    set_session(token)


@blueprint.get("/t/<token>")
def follow_link(token: str):
    try:
        grant = handlers.follow_link(portal(), token)
    except LinkError:
        page = render_template("requester/bad_link.html", form={}, errors={})
        return page, 404
    _grant(grant)
    # Following the link proves the mailbox only once a person acts on the page it opens (_confirm_link): mail
    # scanners fetch every link of a message as it arrives, and would confirm any address typed into the form.
    portal().store.note_link_followed(g.session["_id"], grant["id"])
    return redirect(url_for("requester.ticket", ticket_id=grant["id"]), 303)  # the token leaves the address bar


def _confirm_link(grant: dict) -> None:
    """A person acts on a page an emailed link opened: handlers.confirm_link."""
    if g.session:
        handlers.confirm_link(portal(), g.session, grant)


def _granted(ticket_id: str) -> dict | None:
    for grant in (g.session or {}).get("tickets", []):
        if grant["id"] == ticket_id:
            return grant
    return None


NO_ACCESS = (
    "This browser cannot open this request any more. Once someone uses one of our emails about it (follows its "
    "link, or answers it by email), only our emails' links open it, so that nobody who typed your address into our "
    "form reads what you write; or this device forgot it. The link in our latest email about it opens it here too; "
    "or ask for a fresh link below."
)


def _no_access(kept: str | None = None):
    """The page of a request this browser may not read (never had it, or lost it when a link of ours was used):
    why, and the form that emails a fresh link, with what the requester typed to copy."""
    page = render_template("requester/bad_link.html", form={}, errors={}, heading="We cannot show this request here",
                           explanation=NO_ACCESS, kept=kept)  # fmt: skip
    return page, 404


def _shown(grant: dict) -> dict:
    """What the requester's page of the ticket shows, and the digest its poller compares; Refused (404) when this
    browser may read it no longer (handlers.proven_by_mail)."""
    ticket = handlers.requester_ticket(portal(), grant)
    if handlers.proven_by_mail(portal(), g.session, grant, ticket):  # as intake's 404 for a ticket not this one's
        raise handlers.Refused(404, "Not Found", "This browser may not read the request any more.")
    files = handlers.requester_attachments(portal(), grant)
    title, explanation = domain.requester_status_words(ticket)
    return {
        "ticket": ticket,
        "files": domain.attachments_by_entry(ticket, files),
        "status_title": title,
        "status_explanation": explanation,
        "digest": domain.requester_view_digest(ticket, files),
    }


def _ticket_page(
    grant: dict, form=None, errors=None, message=None, status=200, choose_again: bool = False, draft_sent: bool = False
):
    page = render_template(
        "requester/ticket.html",
        **_shown(grant),
        rating=portal().store.rating(grant["id"]),
        ratings=domain.RATINGS,
        form=form or {},
        errors=errors or {},
        message=message,
        notice=NOTICES.get(request.args.get("notice", "")),
        choose_again=choose_again,
        draft_sent=draft_sent,
    )
    return page, status


FORM_OUT_OF_DATE = "Your request was not sent: this page had expired. Check it below and send it."
FORM_GONE = "Your request was not sent: the form had expired. To open a request, fill in the form."
FORGOTTEN_FORM = (
    "This form was sent from this device before it forgot its requests, so it is not sent again. "
    "To open a request, fill in the form."
)
SENT_BEFORE_CONFIRMED = "You sent this request already. Open it from the link in the email we sent you."
NOTICES = {  # what a redirect after a change says (a fixed text: nothing from the address is shown)
    "opened": "Thank you. We have your request and have emailed you a receipt with a link to this page.",
    "opened-without-files": "We have your request and have emailed you a receipt, but your files could not be "
    "attached. Please send them with a reply below.",
    "sent": "Your message was sent.",
    "sent-reopened": "Your message was sent, and your request is open again: an agent will look at it.",
    "sent-before": "You sent this request a moment ago: here it is. Add anything new as a message below.",
    "sent-before-message": "You sent this message a moment ago, so it was not sent again: it is in the "
    "conversation. To send the same words once more, send them from this page.",
    "closed": "Your request is closed. Thank you.",
    "rated": "Thank you for your rating: it helps us do better.",
    "rated-bad-resolved": "Thank you for telling us: the help desk reads every rating. If the problem is not solved, "
    "write to us below: your message reopens the request.",
    "rated-bad-closed": "Thank you for telling us: the help desk reads every rating. If the problem is not solved, "
    "open a new request and say what is still wrong.",
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


@blueprint.get("/tickets/<ticket_id>/live")
def live(ticket_id: str):
    """The open page's poll: 204 while what it shows is unchanged, else its changed parts (out of band); 286 (htmx:
    stop polling) once the page may no longer read the request (the session ended)."""
    grant = _granted(ticket_id)
    if grant is None:
        return "", 286
    _confirm_link(grant)  # the page asks by itself after 10 s, with JavaScript: a reader, not a scanner
    try:
        shown = _shown(grant)
    except handlers.Refused as refused:  # gone for this browser: stop; anything else (too many): the next poll
        return "", 286 if refused.status in (403, 404) else 204
    if shown["digest"] == request.args.get("shown"):
        return "", 204
    thread_seen = request.args.get("n", "")
    words = domain.requester_update_words(
        shown["ticket"],
        int(thread_seen) if thread_seen.isascii() and thread_seen.isdigit() else -1,
        request.args.get("s", ""),
    )
    ratable = domain.ratable(shown["ticket"])
    return render_template(
        "requester/_live_changed.html",
        words=words,
        rating_changed=ratable != (request.args.get("s", "") in domain.RATABLE),
        rating=portal().store.rating(ticket_id) if ratable else None,
        ratings=domain.RATINGS,
        **shown,
    )


@blueprint.post("/tickets/<ticket_id>/messages")
def reply(ticket_id: str):
    grant = _granted(ticket_id)
    body = request.form.get("body", "")
    if grant is None:  # taken from this browser while the page was open: what was typed is shown to copy
        return _no_access(kept=body.strip() or None)
    _confirm_link(grant)
    files = attachments.chosen(request.files.getlist("files"))
    said = handlers.words_digest(ticket_id, "message", request.form.get("seen", ""), body)
    once = not files and bool(body.strip())  # files chosen again: meant anew
    with handlers.sent_once(portal(), g.session, said, check=once) as send:
        if send.pending:  # the same words' first send has not ended: kept here, to send again if they never show
            return _ticket_page(grant, {"body": body}, None, handlers.STILL_GOING, 409)
        if not send.goes:
            return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice="sent-before-message",
                                    _anchor="latest"), 303)  # fmt: skip
        try:
            was_resolved = handlers.requester_ticket(portal(), grant)["status"] == "resolved"  # the message reopens it
            entry = handlers.add_message(portal(), grant, body, g.get("request_id"), files)
        except handlers.UserError as exc:
            send.undo()
            message = exc.message
            closed = exc.status == 409 and handlers.requester_ticket(portal(), grant)["status"] == "closed"
            if closed:  # closed meanwhile (another tab, the auto-close): the page offers a new request with it
                message = "This request was closed meanwhile, so your message was not sent. It is kept below."
            return _ticket_page(grant, {"body": body}, exc.errors, message, exc.status, choose_again=bool(files))
    try:  # the message's id as the key: its files are attached once
        handlers.attach_files(portal(), grant, files, entry["id"], entry["id"], g.get("request_id"))
    except handlers.UserError as exc:
        message = "Your message was sent, but its files were not attached."
        return _ticket_page(grant, {}, exc.errors, message, exc.status, choose_again=True, draft_sent=True)
    sent = "sent-reopened" if was_resolved else "sent"  # said below the conversation, under the message
    return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice=sent, _anchor="latest"), 303)


@blueprint.post("/tickets/<ticket_id>/rating")
def rate(ticket_id: str):
    """How the requester rates the handling of their resolved or closed request (again: the rating changes)."""
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    _confirm_link(grant)
    form = {"rating": request.form.get("rating", ""), "comment": request.form.get("comment", "")}
    try:
        handlers.rate(portal(), grant, form["rating"], form["comment"])
    except handlers.UserError as exc:
        shown = {"rating_form": form, "rating_errors": exc.errors}  # next to the fields, in the box's own summary
        return _ticket_page(grant, shown, None, exc.message if exc.status == 409 else None, exc.status)
    except handlers.Refused:
        return _no_access()
    rated = "rated"
    if form["rating"] == "bad":  # what to do if it is not solved: reopen it with a message, or a new request
        try:  # the rating is kept: a read that fails now only leaves the plain thanks
            status = handlers.requester_ticket(portal(), grant)["status"]
        except (handlers.Refused, Unreachable):
            status = None
        rated = {"resolved": "rated-bad-resolved", "closed": "rated-bad-closed"}.get(status, rated)
    return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice=rated, _anchor="rated-notice"), 303)


@blueprint.get("/tickets/<ticket_id>/attachments/<attachment_id>")
def attachment(ticket_id: str, attachment_id: str):
    """A file of the requester's ticket, streamed from intake with intake's headers (always a download)."""
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    try:
        upstream = attachments.fetch(
            portal().services, handlers.requester(grant), ticket_id, attachment_id, g.get("request_id")
        )
    except handlers.Refused:
        return error_page(404, "We cannot find this file", "It is not attached to this request.")
    return passed_on(upstream)


@blueprint.post("/tickets/<ticket_id>/close")
def close(ticket_id: str):
    grant = _granted(ticket_id)
    if grant is None:
        return _no_access()
    _confirm_link(grant)
    try:
        handlers.close_ticket(portal(), grant, g.get("request_id"))
    except handlers.UserError as exc:
        return _ticket_page(grant, {}, exc.errors, exc.message, exc.status)
    return redirect(url_for("requester.ticket", ticket_id=ticket_id, notice="closed"), 303)


@blueprint.get("/requests")
def my_requests():
    """The requests this browser may open, and a search of their words (only theirs: see finding.py)."""
    q = request.args.get("q", "")
    found, errors, message, status = None, {}, None, 200
    if q.strip():
        try:
            found = finding.requester_search(portal(), g.session, q)
        except handlers.UserError as exc:
            errors, message, status = exc.errors, exc.message, exc.status
    requests = finding.requests_of(portal(), g.session)
    page = render_template(
        "requester/requests.html",
        requests=requests,
        form={"q": q},
        found=found,
        errors=errors,
        message=message,
        # a result's status as the list and its page say it (intake's, with who has it); search's words otherwise
        status_of={ticket["id"]: domain.requester_status_words(ticket)[0] for ticket in requests},
        status_words={name: words[0] for name, words in domain.REQUESTER_STATUS.items()},
    )
    return page, status


@blueprint.post("/forget")
def forget():
    """ "Forget my requests on this device": for a shared or public computer."""
    if handlers.forget_requests(portal(), g.session):
        set_session(None)
        return redirect(url_for("requester.home", notice="forgotten"), 303)
    return redirect(url_for("requester.home", notice="forgotten-signed-in"), 303)


@blueprint.post("/status")
def check_status():
    form = {"status_email": request.form.get("status_email", ""), "number": request.form.get("number", "")}
    try:
        handlers.request_status_link(portal(), form["status_email"], form["number"], client_network())
    except handlers.UserError as exc:
        if request.form.get("page") == "bad_link":  # the errors on the page the form was on, beside its fields
            page = render_template("requester/bad_link.html", form=form, errors=exc.errors, message=exc.message)
            return page, exc.status
        # what was typed in "Open a request" beside it comes along (portal.js, data-carry), and is kept on the page
        carried = {name: request.form.get(f"carried_{name}", "") for name in OPEN_FIELDS}
        kept = {name: value for name, value in carried.items() if value}
        return _home({**kept, **form}, exc.errors, exc.message, exc.status, choose_again=bool(request.form.get(
            "carried_files")))  # fmt: skip
    # a reload of the page shows it again, sends nothing; it says what was done for what was typed (never whether
    # the address has requests)
    return redirect(url_for("requester.status_sent", asked="one" if form["number"].strip() else "all"), 303)


@blueprint.get("/status/sent")
def status_sent():
    return render_template("requester/status_sent.html", asked=request.args.get("asked"))


@blueprint.get("/tickets")
@blueprint.get("/status")
@blueprint.get("/new")
def forms_home():
    """The address a form answered from (after an error the bar shows it): opened again, the form's page."""
    return redirect(url_for("requester.home"), 303)


@blueprint.get("/tickets/<ticket_id>/messages")
@blueprint.get("/tickets/<ticket_id>/close")
@blueprint.get("/tickets/<ticket_id>/rating")
def ticket_forms(ticket_id: str):
    return redirect(url_for("requester.ticket", ticket_id=ticket_id), 303)
