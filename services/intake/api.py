"""intake's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers and domain."""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from services.intake import handlers, inbox
from services.intake.schemas import (
    TOPIC_ID,
    IdempotencyHeaderSchema,
    InboundMailListSchema,
    MailListQuerySchema,
    MessageCreateSchema,
    PageQuerySchema,
    ThreadEntrySchema,
    TicketCreateSchema,
    TicketListQuerySchema,
    TicketListSchema,
    TicketSchema,
    TimelineSchema,
    TopicListSchema,
    TopicPutSchema,
    TopicSchema,
)
from shared.config import Settings, load_settings
from shared.errors import Invalid
from shared.web import correlation_id, create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """Tickets of record, the requester's thread and help topics.

The web portal (role `portal`) creates tickets, reads them, adds the requester's messages and
closes them. intake keeps status, assignee, team, SLA due times and the agents' public replies
up to date from the other services' events, and records every event of every ticket for
`GET /tickets/{id}/timeline`. SLA due times are null until the sla service has announced them
(its warnings and breaches carry them). A requester message on a resolved ticket reopens it
(status `assigned` when it has an agent, else `new`); on a closed ticket it is refused (409).
Who reads what: admins and the portal server's own token (role `portal` without `requester_email`)
every ticket; a requester-scoped portal token (with `requester_email`, maybe `ticket_id`) only its
requester's tickets (only that ticket), opens tickets only for its requester (403 otherwise) and reads
a timeline without recipients, webhook deliveries or delivery errors; an agent the tickets of its teams
and those assigned to it (its teams as assignment announced them in `agent.updated`). Any other ticket
answers 404 on every route, and lists leave it out.
`POST /tickets` with an `Idempotency-Key` answers 201 the first time and 200 with the same
ticket for a repeat with the same body (409 with another body); keys are kept 48 hours.

Limits. One ticket's thread holds at most 500 entries and 4 MB of text: a requester message past
either is refused (409, saying which; open a new ticket). Lists (`GET /tickets`) carry each ticket
without its thread, with `thread_count`; `GET /tickets/{id}` has the whole thread. A requester
address may open at most TICKETFLOW_REQUESTER_TICKETS_PER_HOUR tickets (200) and add at most
TICKETFLOW_REQUESTER_MESSAGES_PER_HOUR messages (600) per hour (fixed windows on the hour), so intake
cannot be used to flood an address with receipts: past a limit 429 with `Retry-After` (seconds).

Mail in. intake's `mail` process (an SMTP listener, and an IMAP poller when TICKETFLOW_IMAP_URL is set) turns
each inbound mail into a ticket (`source: email`), a requester message (a reply, matched by `[#number]` in the
subject or by In-Reply-To/References naming one of notify's messages, from the ticket's requester), or a record
kept with its reason: a reply from any other address is never posted as the requester; automatic mail
(Auto-Submitted, Precedence bulk/junk/list/auto_reply, bounces, notify's own mail) opens nothing and gets no
receipt. `GET /tickets/{id}/mail` (agents who see the ticket, admins) and `GET /mail` (admins) show what each
mail became.
"""

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
        address's hourly limit."""
        return handlers.add_message(intake(), ticket_id, body["body"], correlation_id(), principal())


@tickets.route("/tickets/<ticket_id>/close")
class Close(MethodView):
    @require_roles("portal", "admin")
    @tickets.response(200, TicketSchema)
    def post(self, ticket_id):
        """The requester closes the ticket; closing again answers 200 and publishes nothing."""
        return handlers.close_ticket(intake(), ticket_id, "requester", correlation_id(), principal())


@tickets.route("/tickets/<ticket_id>/timeline")
class Timeline(MethodView):
    @require_roles("portal", "agent", "admin")
    @tickets.arguments(PageQuerySchema(), location="query")
    @tickets.response(200, TimelineSchema)
    def get(self, query, ticket_id):
        """Every event of the ticket from every service, oldest first: what happened, and why."""
        items, cursor = handlers.timeline(intake(), ticket_id, query["limit"], query.get("cursor"), principal())
        return {"items": items, "next_cursor": cursor}


@topics.route("/topics")
class Topics(MethodView):
    @require_roles("portal", "agent", "admin")
    @topics.response(200, TopicListSchema)
    def get(self):
        """The help topics (a short fixed list: next_cursor is always null)."""
        return {"items": handlers.list_topics(intake()), "next_cursor": None}


@topics.route("/topics/<topic_id>")
class TopicById(MethodView):
    @require_roles("admin")
    @topics.arguments(TopicPutSchema())
    @topics.response(200, TopicSchema)
    def put(self, body, topic_id):
        """Create or rename a topic."""
        try:
            TOPIC_ID(topic_id)
        except ValidationError as err:
            raise Invalid("The topic id is not valid.", {"id": err.messages}) from None
        return handlers.put_topic(intake(), topic_id, body["name"])


@tickets.route("/tickets/<ticket_id>/mail")
class TicketMail(MethodView):
    @require_roles("agent", "admin")
    @tickets.response(200, InboundMailListSchema)
    def get(self, ticket_id):
        """The mails that came in about the ticket, oldest first: replies from the requester (also in the thread),
        and those kept for the agents (from another address than the requester's, automatic replies), each with
        its outcome and reason. An addition to the contract (section 10)."""
        return {"items": inbox.ticket_mail(intake(), ticket_id, principal()), "next_cursor": None}


@mail.route("/mail")
class Mail(MethodView):
    @require_roles("admin")
    @mail.arguments(MailListQuerySchema(), location="query")
    @mail.response(200, InboundMailListSchema)
    def get(self, query):
        """Every inbound mail, newest first, with what it became and why (`outcome`: ticket, message, kept,
        ignored). An addition to the contract (section 10): where an admin reads what mail in did not post."""
        items, cursor = inbox.mail_page(intake(), query.get("outcome"), query["limit"], query.get("cursor"))
        return {"items": items, "next_cursor": cursor}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app("intake", DESCRIPTION, settings)
    app.extensions["ticketflow.intake"] = handlers.bootstrap(settings)
    api.register_blueprint(tickets)
    api.register_blueprint(topics)
    api.register_blueprint(mail)
    ensure_storage_once(app, app.extensions["ticketflow.intake"].ensure_storage)
    return app
