"""intake's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers (inbox: mail in), domain."""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, request
from flask.views import MethodView
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from services.intake import files, handlers, inbox
from services.intake.domain import ATTACHMENTS_MAX_BYTES
from services.intake.schemas import (
    TOPIC_ID,
    AttachmentListSchema,
    AttachmentsAddedSchema,
    AttachmentUploadSchema,
    IdempotencyHeaderSchema,
    InboundMailListSchema,
    MailListQuerySchema,
    MessageCreateSchema,
    PageQuerySchema,
    ReopenSchema,
    ThreadEntrySchema,
    TicketCreateSchema,
    TicketListQuerySchema,
    TicketListSchema,
    TicketSchema,
    TimelineSchema,
    TopicListQuerySchema,
    TopicListSchema,
    TopicPutSchema,
    TopicSchema,
)
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.errors import Invalid, Problem, TooLarge
from shared.web import (
    MAX_BODY,
    correlation_id,
    create_service_app,
    ensure_storage_once,
    principal,
    require_roles,
    too_many_parts,
)

DESCRIPTION = """Tickets of record, the requester's thread and help topics.

The web portal (role `portal`) creates tickets, reads them, adds the requester's messages and
closes them. intake keeps status, assignee, team, SLA due times and the agents' public replies
up to date from the other services' events, and records every event of every ticket for
`GET /tickets/{id}/timeline`. SLA due times are those of the clocks running, as the sla service
announces them (`sla.deadlines_changed`, a moment after the ticket is created): null until then, and while a
clock is met, paused or stopped; `next_response_due_at` (added after the contract) is a requester's message's
awaiting the agents' answer. A requester message on a resolved ticket reopens it
(status `assigned` when it has an agent, else `new`); on a closed ticket it is refused (409).
Who reads what: admins and the portal server's own token (role `portal` without `requester_email`)
every ticket; a requester-scoped portal token (with `requester_email`, maybe `ticket_id`) only its
requester's tickets (only that ticket), opens tickets only for its requester (403 otherwise; one scoped to a
ticket opens none) and reads
a timeline without recipients, webhook deliveries or delivery errors; an agent the tickets of its teams
and those assigned to it (its teams as assignment announced them in `agent.updated`). Any other ticket
answers 404 on every route, and lists leave it out (a requester-scoped list filtered by another address is empty).
`POST /tickets` with an `Idempotency-Key` answers 201 the first time and 200 with the same
ticket for a repeat with the same body (409 with another body); keys are kept 48 hours. A key is its
caller's: a requester-scoped token's requester's, else the token's role and subject (another caller's same
key is another request).

Limits. One ticket's thread holds at most 500 entries and 4 MB of text: a requester message past
either is refused (409, saying which; open a new ticket). Lists (`GET /tickets`) carry each ticket
without its thread (with `thread_count`) and its `earlier_resolutions`; `GET /tickets/{id}` has them whole. A requester
address may open at most TICKETFLOW_REQUESTER_TICKETS_PER_HOUR tickets (200) and add at most
TICKETFLOW_REQUESTER_MESSAGES_PER_HOUR messages (600) per hour (fixed windows on the hour), so intake
cannot be used to flood an address with receipts: past a limit 429 with `Retry-After` (seconds).

Tokens. A requester's link (`<portal>/t/<token>`) acts as the requester, and every agent of the team reads
the ticket: a token (any JWT, also with its letters percent-encoded, as the portal would still read it) in a
subject, a description or a message is stored as `(hidden)`, whether it came by the API, the portal or mail
(a requester pasting the link of an earlier request). Tickets stored before this rule keep what was typed.

Mail in. intake's `mail` process (an SMTP listener, and an IMAP poller when TICKETFLOW_IMAP_URL is set) turns
each inbound mail into a ticket (`source: email`), a requester message (a reply, matched by `[#number]` in the
subject or by In-Reply-To/References naming one of notify's messages, from the ticket's requester), or a record
kept with its reason: a reply from any other address is never posted as the requester; automatic mail
(Auto-Submitted, Precedence bulk/junk/list/auto_reply, bounces, notify's own mail) opens nothing and gets no
receipt. An addition to the contract, off unless set: with TICKETFLOW_INBOUND_VERIFIED_BY naming the MTAs in front,
a mail one of them found failing DMARC (its Authentication-Results) is kept too, never posted as its From nor a
ticket. `GET /tickets/{id}/mail` (agents who see the ticket, admins) and `GET /mail` (admins) show what each
mail became.

Attachments. The files that came with a ticket (with its opening mail or form, or with one of its
messages) are listed and downloaded with the ticket's read rights; one file may have 10 MiB, the files of
one mail or one upload 25 MiB together. They publish no event and are not on the timeline.
`POST /tickets/{id}/attachments` (multipart/form-data) is an addition to the contract, for the portal.
"""
UPLOAD = """multipart/form-data: one or more `file` parts, and optionally `message_id`, a message of the ticket's
thread the files come with (for a requester-scoped token, one of the requester's own messages, or none: then
they go with the ticket's opening; for agents and admins, one of the agents' replies, required: never a
requester's message or opening, where a file would read as the requester's).
Who: the ticket's requester through a requester-scoped portal token, admins, and the agents who may work on
the ticket, as for a reply: its agent, or an agent of its team while it waits unassigned (another agent who
sees it, a teammate or a lead: 403; the portal server's own token: 403; another ticket: 404). A file
over 10 MiB, or files over 25 MiB together: 413 naming the file (a body over 26 MiB is refused before it is
read); no file or an empty one, or an unknown part: 422; a closed ticket: 409. With the same
`Idempotency-Key` the files are stored once: a repeat answers 200 with the items stored the first time, and the
key with other files (another name, type, content, count or message) 409; a key is its caller's, as for
`POST /tickets`. This route is an addition to the contract (section 10 lists only the reads)."""
DOWNLOAD = """The bytes, always as `Content-Disposition: attachment; filename="<ASCII fallback>";
filename*=UTF-8''<name>` (never inline), with `X-Content-Type-Options: nosniff`,
`Content-Security-Policy: sandbox; default-src 'none'` and `Cache-Control: private, no-store`. The
Content-Type is the declared one only when the file's first bytes agree with it (pdf, png, jpeg, gif, webp,
zip and the Office and OpenDocument formats, UTF-8 text and csv); otherwise, and always for HTML, SVG, XML,
JavaScript or any other type a browser could run, `application/octet-stream`."""

ATTACHMENTS_PATH = re.compile(r"^/tickets/[^/]+/attachments$")
UPLOAD_BODY_MAX = ATTACHMENTS_MAX_BYTES + 1024 * 1024  # the files together, and room for the parts' headers and fields
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
}

tickets = Blueprint("tickets", __name__, description="Tickets, the requester's thread and timeline")
topics = Blueprint("topics", __name__, description="Help topics a requester picks from")
mail = Blueprint("mail", __name__, description="Mail in: what each inbound mail became")


def intake() -> handlers.Intake:
    return current_app.extensions["ticketflow.intake"]


@tickets.route("/tickets")
class Tickets(MethodView):
    @require_roles("portal", "admin")
    @tickets.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @tickets.arguments(TicketCreateSchema())
    @tickets.response(201, TicketSchema, headers={"Location": {"schema": {"type": "string"}}})
    @tickets.alt_response(200, schema=TicketSchema, description="A repeat of an earlier request (Idempotency-Key)")
    @tickets.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, request, idempotency_key=None):
        """Open a ticket."""
        ticket, created = handlers.create_ticket(intake(), request, idempotency_key, correlation_id(), principal())
        return ticket, 201 if created else 200, {"Location": f"/tickets/{ticket.id}"}

    @require_roles("portal", "agent", "admin")
    @tickets.arguments(TicketListQuerySchema(), location="query")
    @tickets.response(200, TicketListSchema)
    def get(self, query):
        """List tickets, newest first, filtered by requester email, status, topic and number."""
        filters = {
            "requester.email": query.get("requester_email"),
            "status": query.get("status"),
            "topic": query.get("topic"),
            "number": query.get("number"),
        }
        items, cursor = handlers.list_tickets(intake(), filters, query["limit"], query.get("cursor"), principal())
        return {"items": items, "next_cursor": cursor}


@tickets.route("/tickets/<ticket_id>")
class TicketById(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.response(200, TicketSchema)
    def get(self, ticket_id):
        """A ticket, with its thread of requester messages and agents' public replies."""
        return handlers.get_ticket(intake(), ticket_id, principal())


@tickets.route("/tickets/<ticket_id>/messages")
class Messages(MethodView):
    @require_roles("portal", "admin")
    @tickets.arguments(MessageCreateSchema())
    @tickets.response(201, ThreadEntrySchema)
    @tickets.alt_response(409, response="CONFLICT")
    @tickets.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body, ticket_id):
        """The requester writes; on a resolved ticket this reopens it; on a closed or full one 409; 429 past the
        address's hourly limit. `files` (an addition to the contract): the names of the files the client attaches to
        it next; its event names them, so the agent's email says they came."""
        return handlers.add_message(intake(), ticket_id, body["body"], correlation_id(), principal(), body.get("files"))


@tickets.route("/tickets/<ticket_id>/close")
class Close(MethodView):
    @require_roles("portal", "admin")
    @tickets.response(200, TicketSchema)
    def post(self, ticket_id):
        """The requester closes the ticket; closing again answers 200 and publishes nothing."""
        return handlers.close_ticket(intake(), ticket_id, "requester", correlation_id(), principal())


@tickets.route("/tickets/<ticket_id>/reopen")
class Reopen(MethodView):
    @require_roles("agent", "admin")
    @tickets.arguments(ReopenSchema())
    @tickets.response(200, TicketSchema)
    @tickets.alt_response(409, response="CONFLICT")
    def post(self, body, ticket_id):
        """An agent who may read the ticket (its teams' and its own), or an admin, reopens a resolved ticket, with
        the reason (`ticket.reopened`, with `by`): the requester called, the fix did not hold. 409 for any other: a
        closed ticket stays closed, and an open one may be resolved in assignment a moment before intake hears of
        it (try again shortly)."""
        return handlers.reopen_ticket(intake(), ticket_id, body["reason"], correlation_id(), principal())


@tickets.route("/tickets/<ticket_id>/timeline")
class Timeline(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.arguments(PageQuerySchema(), location="query")
    @tickets.response(200, TimelineSchema)
    def get(self, query, ticket_id):
        """Every event of the ticket from every service, oldest first: what happened, and why."""
        items, cursor = handlers.timeline(intake(), ticket_id, query["limit"], query.get("cursor"), principal())
        return {"items": items, "next_cursor": cursor}


@tickets.route("/tickets/<ticket_id>/attachments")
class Attachments(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.response(200, AttachmentListSchema)
    def get(self, ticket_id):
        """The ticket's attached files, oldest first (one list: next_cursor is always null)."""
        return {"items": handlers.list_attachments(intake(), ticket_id, principal()), "next_cursor": None}

    @require_roles("portal", "agent", "admin")
    @tickets.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @tickets.doc(
        description=UPLOAD,
        requestBody={"required": True, "content": {"multipart/form-data": {"schema": AttachmentUploadSchema}}},
    )
    @tickets.response(201, AttachmentsAddedSchema)
    @tickets.alt_response(200, schema=AttachmentsAddedSchema, description="A repeat of an upload (Idempotency-Key)")
    @tickets.alt_response(409, response="CONFLICT")
    @tickets.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, ticket_id, idempotency_key=None):
        """Attach files to the ticket (an addition to the contract, for the portal's forms)."""
        uploads, message_id = _read_upload()
        svc, who = intake(), principal()
        items, created = handlers.add_attachments(svc, ticket_id, uploads, message_id, idempotency_key, who)
        return {"items": items}, 201 if created else 200


def _read_upload() -> tuple[list[handlers.Upload], str | None]:
    """The files and message_id of a multipart/form-data body (400 for another body, 422 for unknown parts)."""
    if request.mimetype != "multipart/form-data":
        raise Problem("The body must be multipart/form-data, with the files in `file` parts.")
    try:
        parts, fields = request.files, request.form
    except RequestEntityTooLarge:
        if too_many_parts(request):
            raise TooLarge(
                f"The upload has more than {request.max_form_parts:,} parts: send fewer files at once."
            ) from None
        raise TooLarge(f"The upload is larger than {UPLOAD_BODY_MAX // (1024 * 1024)} MiB.") from None
    except ValueError:  # a body that is not what its Content-Type says
        raise Problem("The body is not valid multipart/form-data.") from None
    unknown = (set(parts) - {"file"}) | (set(fields) - {"message_id"})
    if unknown:
        raise Invalid("The request has unknown fields.", {name: ["Unknown field."] for name in sorted(unknown)})
    message_ids = fields.getlist("message_id")
    if len(message_ids) > 1 or any(not 1 <= len(value) <= 64 for value in message_ids):
        raise Invalid("The message_id is not valid.", {"message_id": ["One message id of 1 to 64 characters."]})
    uploads = [
        handlers.Upload(part.filename, part.content_type, part.read())
        for part in parts.getlist("file")
        if part.filename or part.content_length  # an empty file input sends a part with no name and no bytes
    ]
    return uploads, (message_ids[0] if message_ids else None)


FILE_DOWNLOAD = {
    "description": DOWNLOAD,
    "responses": {
        "200": {
            "description": "The file's bytes, as an attachment (see the API's description for the headers).",
            "content": {files.OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
}


def _download(name: str, data: bytes, content_type: str) -> Response:
    """A file's bytes, always as an attachment, with the download headers."""
    response = Response(data, content_type=content_type)
    response.headers.update(DOWNLOAD_HEADERS)
    response.headers["Content-Disposition"] = files.content_disposition(name)
    return response


@tickets.route("/tickets/<ticket_id>/attachments/<attachment_id>")
class AttachmentById(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.doc(**FILE_DOWNLOAD)
    @tickets.alt_response(404, response="NOT_FOUND")
    def get(self, ticket_id, attachment_id):
        """Download an attached file: always as an attachment, with a Content-Type that cannot run in a browser."""
        item, data, content_type = handlers.attachment(intake(), ticket_id, attachment_id, principal())
        return _download(item["filename"], data, content_type)


def _body_limit(method: str, path: str) -> int:
    return UPLOAD_BODY_MAX if method == "POST" and ATTACHMENTS_PATH.match(path) else MAX_BODY


@topics.route("/topics")
class Topics(MethodView):
    @require_roles("portal", "agent", "admin")
    @topics.arguments(TopicListQuerySchema(), location="query")
    @topics.response(200, TopicListSchema)
    def get(self, query):
        """The help topics a new ticket may take; `include_retired=true` also those taken off the form (a short
        list: next_cursor is always null). `retired` and `include_retired` are an addition to the contract."""
        return {"items": handlers.list_topics(intake(), query["include_retired"]), "next_cursor": None}


@topics.route("/topics/<topic_id>")
class TopicById(MethodView):
    @require_roles("admin")
    @topics.arguments(TopicPutSchema())
    @topics.response(200, TopicSchema)
    def put(self, body, topic_id):
        """Create or rename a topic; `retired` (an addition to the contract) takes it off the form (no new ticket
        takes it; its tickets keep it) or brings it back; `general` cannot be retired (422)."""
        try:
            TOPIC_ID(topic_id)
        except ValidationError as err:
            raise Invalid("The topic id is not valid.", {"id": err.messages}) from None
        return handlers.put_topic(intake(), topic_id, body["name"], body["retired"])


@tickets.route("/tickets/<ticket_id>/mail")
class TicketMail(MethodView):
    @require_roles("agent", "admin")
    @tickets.response(200, InboundMailListSchema)
    def get(self, ticket_id):
        """The mails that came in about the ticket, oldest first: replies from the requester (also in the thread),
        and those kept for the agents (from another address than the requester's, automatic replies), each with
        its outcome and reason. An addition to the contract (section 10)."""
        return {"items": inbox.ticket_mail(intake(), ticket_id, principal()), "next_cursor": None}


@tickets.route("/tickets/<ticket_id>/mail/<mail_id>/raw")
class TicketMailRaw(MethodView):
    @require_roles("admin")
    @tickets.doc(
        responses={
            "200": {
                "description": "The mail's bytes as they came, as a download",
                "content": {files.OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    )
    def get(self, ticket_id, mail_id):
        """One mail about the ticket, every byte as it came (a long mail's text is cut in the thread at 20,000
        characters): always a download, never shown by a browser. Admins only: a reply quotes the requester's
        portal link, which acts as the requester, and only admins see those (agents read the mail's text with
        them hidden). An addition to the contract (section 10)."""
        record, data = inbox.raw_mail(intake(), ticket_id, mail_id, principal())
        response = Response(data, content_type=files.OCTET_STREAM)
        response.headers.update(DOWNLOAD_HEADERS)
        name = f"mail-{record.get('number') or 'ticket'}-{record['received_at']:%Y%m%d-%H%M%S}.eml"
        response.headers["Content-Disposition"] = files.content_disposition(name)
        return response


@tickets.route("/tickets/<ticket_id>/mail/<mail_id>/text")
class TicketMailText(MethodView):
    @require_roles("agent", "admin")
    @tickets.doc(
        responses={
            "200": {
                "description": "The mail's whole text, as plain text",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self, ticket_id, mail_id):
        """One mail about the ticket, its whole text as read (what it quotes and the mails it carries included,
        never cut at 20,000 characters as in the thread), with the requester's portal links hidden as in the thread:
        for the agents who see the ticket. Plain text, shown by a browser as text, never run. An addition to the
        contract (section 10)."""
        record, text = inbox.mail_text(intake(), ticket_id, mail_id, principal())
        response = Response(text, content_type="text/plain; charset=utf-8")
        response.headers.update(DOWNLOAD_HEADERS)
        name = f"mail-{record.get('number') or 'ticket'}-{record['received_at']:%Y%m%d-%H%M%S}.txt"
        response.headers["Content-Disposition"] = files.content_disposition(name, shown=True)
        return response


@tickets.route("/tickets/<ticket_id>/mail/<mail_id>/files/<int:n>")
class TicketMailFile(MethodView):
    @require_roles("agent", "admin")
    @tickets.doc(**FILE_DOWNLOAD)
    @tickets.alt_response(404, response="NOT_FOUND")
    def get(self, ticket_id, mail_id, n):
        """The n-th file (from 1, in the order of the mail's `attachments`) of a mail about the ticket, read from the
        mail as it came: the files of a mail kept for the agents are not the ticket's (those the requester reads
        too), so they are had here, by the agents who see the ticket. A mail it carries whole (.eml) is the
        admins' (it may quote the requester's link; its text is in `.../text`). An addition to the contract."""
        name, content_type, data = inbox.mail_file(intake(), ticket_id, mail_id, n, principal())
        return _download(name, data, content_type)


@mail.route("/mail")
class Mail(MethodView):
    @require_roles("admin")
    @mail.arguments(MailListQuerySchema(), location="query")
    @mail.response(200, InboundMailListSchema)
    def get(self, query):
        """Every inbound mail, newest first, with what it became and why (`outcome`: ticket, message, kept,
        ignored, refused: polled from a mailbox and too big). An addition to the contract (section 10): where an
        admin reads what mail in did not post."""
        items, cursor = inbox.mail_page(intake(), query.get("outcome"), query["limit"], query.get("cursor"))
        return {"items": items, "next_cursor": cursor}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app(
        "intake",
        DESCRIPTION,
        settings,
        json_only=lambda path: not ATTACHMENTS_PATH.match(path),  # uploads are multipart/form-data
        body_limit=_body_limit,
    )
    app.extensions["ticketflow.intake"] = handlers.bootstrap(settings)
    api.register_blueprint(tickets)
    api.register_blueprint(topics)
    api.register_blueprint(mail)
    ensure_storage_once(app, app.extensions["ticketflow.intake"].ensure_storage)
    return app
