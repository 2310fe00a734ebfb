"""notify's event handlers and commands: record each notification an event causes, then send it (the dispatcher).

A notification is stored, unique per (event, channel, recipient), before anything is sent; sending is a
separate step that the worker's dispatcher takes for due notifications, so a redelivered event never
sends twice, and a worker that dies between the two leaves a pending notification another one sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from services.notify import mailer, messages, webhooks
from services.notify.domain import (
    Message,
    NotDead,
    Notification,
    SendError,
    TicketView,
    email_recipients,
    notification_id,
)
from services.notify.store import NotificationStore, TicketViews, WebhookStore
from shared import events, outbox
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.relay import OutboxFlusher, PendingOutboxes

SERVICE = "notify"
SAVE_ATTEMPTS = 8
LEASE_TIMEOUTS = 6  # a claim lasts six send timeouts (connect, EHLO, MAIL, RCPT, DATA, QUIT), then it is free again


@dataclass
class Notify:
    """Everything notify's handlers need, wired once per process (see `bootstrap`)."""

    settings: Settings
    views: TicketViews
    notifications: NotificationStore
    webhooks: WebhookStore
    processed: ProcessedEvents
    pending: PendingOutboxes
    flusher: OutboxFlusher
    on_recorded: Callable[[], None] = field(default=lambda: None)  # wakes the worker's dispatcher

    def ensure_storage(self) -> None:
        self.notifications.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()


def bootstrap(settings: Settings) -> Notify:
    db = database(settings, SERVICE)
    pending = PendingOutboxes(db)
    return Notify(
        settings,
        TicketViews(db),
        NotificationStore(db),
        WebhookStore(db),
        ProcessedEvents(db),
        pending,
        OutboxFlusher(settings, SERVICE, pending),
    )


# --- events -> notifications -------------------------------------------------------------------------


def on_event(app: Notify, envelope: dict) -> None:
    """Learn what the event tells about the ticket, then record its webhook deliveries and its emails."""
    data, at = events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    view = _learn(app, envelope["ticket_id"], envelope["type"], data, at)
    records = _webhook_deliveries(app, envelope)
    _record(app, records)  # before the emails: a recipient not known yet must not hold up the webhooks
    _record(app, _emails(app, envelope, data, view))


def _learn(app: Notify, ticket_id: str, event_type: str, data: dict, at: datetime) -> TicketView | None:
    for _ in range(SAVE_ATTEMPTS):
        view = app.views.find(ticket_id)
        fresh = view is None
        view = view or TicketView(ticket_id)
        if not view.apply(event_type, data, at):
            return None if fresh else view
        try:
            if fresh:
                if not app.views.insert(view, {}):
                    continue  # created meanwhile: learn into that one
            else:
                app.views.save(view, {})
            return view
        except Stale:
            continue
    raise Conflict(f"The projection of ticket {ticket_id} is changing too fast.")


def _emails(app: Notify, envelope: dict, data: dict, view: TicketView | None) -> list[Notification]:
    found = []
    event = {"type": envelope["type"], "occurred_at": events.parse_time(envelope["occurred_at"]), "data": data}
    for audience, recipient in email_recipients(envelope["type"], data, view):
        context = {"ticket": view.context(), "event": event, "recipient": recipient}
        message = messages.render(envelope["type"], audience, context)
        found.append(_notification(envelope, "email", recipient["email"], message.subject, message.text, message.html))
    return found


def _webhook_deliveries(app: Notify, envelope: dict) -> list[Notification]:
    body = events.encode(envelope).decode()
    found = []
    for hook in app.webhooks.all():
        if webhooks.matches(hook["events"], envelope["type"]):
            record = _notification(envelope, "webhook", hook["url"], None, body, None, key=hook["_id"])
            record.webhook_id, record.endpoint = hook["_id"], urlsplit(hook["url"]).netloc
            found.append(record)
    return found


def _notification(envelope: dict, channel: str, recipient: str, subject, body: str, html, key=None) -> Notification:
    """A new notification; `key` (a webhook's id: two may share a URL) stands for the recipient in its id."""
    at = now()
    return Notification(
        id=notification_id(envelope["event_id"], channel, key or recipient),
        event_id=envelope["event_id"],
        event_type=envelope["type"],
        ticket_id=envelope["ticket_id"],
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        html=html,
        created_at=at,
        next_attempt_at=at,
    )


def _record(app: Notify, records: list[Notification]) -> None:
    """Store each notification once; one already stored (a redelivered event) is left as it is."""
    for record in records:
        app.notifications.insert(record, {})  # False for one already there
    if records:
        app.on_recorded()


def handlers(app: Notify) -> dict:
    return {kind: (lambda envelope: on_event(app, envelope)) for kind in webhooks.WEBHOOK_EVENT_TYPES}


# --- sending (the dispatcher's steps) ----------------------------------------------------------------


def claim(app: Notify, notification_id: str) -> Notification | None:
    """Take a due notification for its lease, so that no other sender takes it meanwhile; None if not due.

    A sender that dies mid-send leaves the claim; when the lease ends, the next pass sends it again.
    """
    record = app.notifications.get(notification_id)
    at = now()
    if record.next_attempt_at is None or record.next_attempt_at > at:
        return None
    record.next_attempt_at = at + lease(app.settings)
    try:
        app.notifications.save(record, {})
    except Stale:
        return None
    return record


def lease(settings: Settings) -> timedelta:
    """How long a claim holds: longer than any send can take (60 s with the default timeouts)."""
    return timedelta(seconds=LEASE_TIMEOUTS * max(settings.smtp_timeout, settings.webhook_timeout))


def send(app: Notify, record: Notification) -> None:
    """One attempt at a claimed notification; the outcome (and its event) stored with it."""
    try:
        _deliver(app, record)
        record.succeeded(now())
    except SendError as exc:
        record.failed(str(exc), now(), app.settings.retry_delays)
    staged = outbox.stage(SERVICE, record.ticket_id, record.recorded, None)
    record.recorded = []
    try:
        app.notifications.save(record, staged)
    except Stale:  # our lease ran out and another sender took it: its outcome counts
        return
    app.flusher.submit(app.notifications.collection, record.id, staged, record.version)


def _deliver(app: Notify, record: Notification) -> None:
    if record.channel == "email":
        message = Message(record.subject or "", record.body, record.html or "")
        email = mailer.build_email(app.settings.notify_from, record.recipient, message, record.ticket_id, record.id)
        mailer.send_email(mailer.parse_smtp_url(app.settings.smtp_url, app.settings.smtp_timeout), email)
        return
    hook = app.webhooks.find(record.webhook_id)
    if hook is None:
        raise SendError("the webhook was deleted")
    body = record.body.encode()
    headers = {
        "X-Ticketflow-Signature": webhooks.signature(hook["secret"], body),
        "X-Ticketflow-Event": record.event_type,
        "X-Ticketflow-Delivery": record.id,
    }
    webhooks.deliver(hook["url"], body, headers, app.settings.webhook_timeout)


# --- commands of the API -----------------------------------------------------------------------------


def retry(app: Notify, notification_id: str) -> Notification:
    """Send a dead notification again (its delays start over)."""
    for _ in range(SAVE_ATTEMPTS):
        record = app.notifications.get(notification_id)
        try:
            record.retry(now())
        except NotDead as exc:
            raise Conflict(str(exc)) from None
        try:
            app.notifications.save(record, {})
            return record
        except Stale:
            continue
    raise Conflict("The notification is changing too fast; try again.")


def add_webhook(app: Notify, raw: object) -> dict:
    webhook = webhooks.validate_webhook(raw)
    return app.webhooks.add({"_id": uuid.uuid4().hex, **webhook, "created_at": now()})


def delete_webhook(app: Notify, webhook_id: str) -> None:
    app.webhooks.delete(webhook_id)


def webhook_view(webhook: dict) -> dict:
    """A webhook as the API shows it: never its secret."""
    return {key: webhook[key] for key in ("url", "events", "created_at")} | {"id": webhook["_id"]}
