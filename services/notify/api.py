"""notify's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers and domain."""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView

from services.notify import handlers
from services.notify.schemas import (
    NotificationListSchema,
    NotificationQuerySchema,
    NotificationSchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
)
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.web import create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """Emails and webhooks about tickets, with every delivery attempt on record.

Who gets which email: the requester on `ticket.created` (a receipt with the ticket's number and a copy of what was
sent, its first 1,000 characters, web addresses hidden: the address is nobody's proven yet), `ticket.replied`,
`ticket.resolved` and `ticket.closed`; the assigned agent on `ticket.assigned`, `ticket.message_added` (a
requester's message), `ticket.mail_kept` (a mail about the ticket that mail in kept off the conversation: another
sender's, or one a full thread cannot take), `ticket.reopened`, `sla.warning` and `ticket.closed` by its requester
before it was resolved (`previous_status`); the assigned agent and the team lead on `sla.breached` (a breach
neither would hear of, a ticket waiting in the queue of a team with no lead, goes to `NOTIFY_ESCALATION_EMAIL`, the
desk's own address, when it is set); while the
assigned agent is away (unavailable, as its last `agent.updated` said: on leave, or gone), the team lead also gets
its emails of `ticket.message_added`, `ticket.mail_kept`, `ticket.reopened` and `sla.warning`, saying so; a
reopening (and the message that caused it) goes then to the lead alone, since the ticket goes to an available agent:
someone on leave, or gone, never hears of it again. Every subject reads `[#<number>] <ticket subject>`; an SLA
alert's says what it is first: `[#<number>] First response due soon: <ticket subject>`, `... target missed: ...`.
Internal notes are never sent anywhere. Every email to the requester carries a link to the ticket's page in the portal
(`TICKETFLOW_PORTAL_URL/t/<token>`, a token of its own per email, valid TICKETFLOW_LINK_DAYS days for that
ticket and that address); no email to an agent or lead does: theirs lead to the ticket's page in the console
instead (`TICKETFLOW_PORTAL_URL/console/tickets/<id>`, behind their own sign-in).

One notification record per (event, channel, recipient), unique: a redelivered event never sends twice. A
worker killed between a send and storing its outcome sends that one again when its lease ends (a minute): the
same email with the same Message-ID (mail clients show it once), the same webhook delivery with the same
X-Ticketflow-Delivery (a receiver drops the repeat). `status` is `pending` (not tried yet, or retried by an
admin), `sent`, `failed` (the last attempt failed; it is tried again at `next_attempt_at`) or `dead` (every
retry failed). A failed send is retried after growing delays (TICKETFLOW_RETRY_DELAYS, by default 1 s, 5 s, 30
s, 2 min and 10 min); a failure after the last delay makes it `dead`, and only an admin's `POST
/notifications/{id}/retry` sends it again, its delays starting over. An email whose send finds the mail relay
unreachable (nothing answers at SMTP_URL) is not the message's failure: it stays `failed` and is tried again,
at least once a minute, until the relay answers, without using up its retries (`attempts` counts those tries
too).

Webhooks get every `ticket.*` and `sla.*` event that one of their patterns matches (never
`notification.*`, nor `ticket.mail_kept`: a third party's address and words, for the agents alone; `sla.*` takes
`sla.deadlines_changed` too, one at each change of a ticket's deadlines): a
POST of the event envelope as JSON, with the headers
`X-Ticketflow-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>`,
`X-Ticketflow-Event` (the event type) and `X-Ticketflow-Delivery` (the notification's id, the same
on every retry); and, added after the contract,
`X-Ticketflow-Signature-Timed: t=<unix seconds of this attempt>,sha256=<hex HMAC-SHA256 of "<t>.<delivery id>.<body>">`,
with which a receiver tells what someone who saw a delivery on its way posts again later (the body's signature
alone verifies a replay): refuse an attempt whose t is more than 5 minutes old, and answer 2xx without handling
it again to a delivery id it handled already (a retry has the same id: one answered too late is tried again).
Any 2xx answer is a success; a redirect is not followed and counts as a failure;
no answer within TICKETFLOW_WEBHOOK_TIMEOUT (5 s, for the whole delivery) is a failure. A webhook
whose host is or resolves to a loopback, private, link-local, multicast, reserved, unspecified or
cloud metadata address is refused: 422 at registration, and a failed attempt at delivery, where the
name is resolved once, checked, and the connection made to that checked address (unless the address
falls in TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS, empty by default). A webhook's secret is never shown
after it is registered; deliveries still due to a deleted webhook fail at their next attempt, for good (`dead`, "the
webhook was deleted").

Rights: `agent` and `admin` read notifications; only `admin` retries one and manages webhooks;
`portal` may do nothing here. An agent reads the emails of its teams' tickets and of those assigned
to it (as notify learnt them from `ticket.assigned` and `agent.updated`); any other notification, and
every webhook delivery (webhooks are the admins': an address may hold its secret in its path), answers
404, and lists leave it out. To an admin a webhook's URL shows without credentials, query or fragment. The token
of a requester's link, which acts as the requester, shows only to an admin: an agent reads the email's
`body` with every token in it as `(hidden)`.
"""

notifications = Blueprint("notifications", __name__, description="Every email and webhook delivery, and its fate")
webhooks = Blueprint("webhooks", __name__, description="Endpoints that receive ticket and SLA events")


def notify() -> handlers.Notify:
    return current_app.extensions["ticketflow.notify"]


@notifications.route("/notifications")
class Notifications(MethodView):
    @require_roles("agent", "admin")
    @notifications.arguments(NotificationQuerySchema(), location="query")
    @notifications.response(200, NotificationListSchema)
    def get(self, query):
        """Notifications, newest first, filtered by ticket, recipient and status."""
        filters = {key: query.get(key) for key in ("ticket_id", "recipient", "status")}
        items, cursor = handlers.list_notifications(notify(), filters, query["limit"], query.get("cursor"), principal())
        return {"items": items, "next_cursor": cursor}


@notifications.route("/notifications/<notification_id>")
class NotificationById(MethodView):
    @require_roles("agent", "admin")
    @notifications.response(200, NotificationSchema)
    @notifications.alt_response(404, response="NOT_FOUND")
    def get(self, notification_id):
        """A notification: what was sent to whom, and how its attempts went."""
        return handlers.get_notification(notify(), notification_id, principal())


@notifications.route("/notifications/<notification_id>/retry")
class Retry(MethodView):
    @require_roles("admin")
    @notifications.response(200, NotificationSchema)
    @notifications.alt_response(404, response="NOT_FOUND")
    @notifications.alt_response(409, response="CONFLICT")
    def post(self, notification_id):
        """Send a dead notification again: pending, due now, its retry delays starting over (409 if not dead, or if
        its webhook was removed)."""
        return handlers.notification_view(handlers.retry(notify(), notification_id), principal())


@webhooks.route("/webhooks")
class Webhooks(MethodView):
    @require_roles("admin")
    @webhooks.arguments(WebhookCreateSchema())
    @webhooks.response(201, WebhookSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, body):
        """Register a webhook; the answer never shows its secret."""
        hook = handlers.webhook_view(handlers.add_webhook(notify(), body))
        return hook, 201, {"Location": f"/webhooks/{hook['id']}"}

    @require_roles("admin")
    @webhooks.response(200, WebhookListSchema)
    def get(self):
        """Every webhook, oldest first, without secrets (a short list: next_cursor is always null)."""
        return {"items": handlers.list_webhooks(notify()), "next_cursor": None}


@webhooks.route("/webhooks/<webhook_id>")
class WebhookById(MethodView):
    @require_roles("admin")
    @webhooks.response(204)
    @webhooks.alt_response(404, response="NOT_FOUND")
    def delete(self, webhook_id):
        """Remove a webhook: it gets no more deliveries."""
        handlers.delete_webhook(notify(), webhook_id)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app("notify", DESCRIPTION, settings)
    app.extensions["ticketflow.notify"] = handlers.bootstrap(settings)
    api.register_blueprint(notifications)
    api.register_blueprint(webhooks)
    ensure_storage_once(app, app.extensions["ticketflow.notify"].ensure_storage)
    return app
