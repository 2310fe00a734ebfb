"""notify's event handlers and commands: record each notification an event causes, then send it (the dispatcher).

A notification is stored, unique per (event, channel, recipient), before anything is sent; sending is a
separate step that the worker's dispatcher takes for due notifications, so a redelivered event never
sends twice, and a worker that dies between the two leaves a pending notification another one sends.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from services.notify import mailer, messages, webhook_sender, webhooks
from services.notify.domain import (
    AWAY_COVER,
    EMAIL_AUDIENCES,
    LEARNED_FROM,
    Message,
    NotDead,
    Notification,
    SendError,
    TicketView,
    email_recipients,
    notification_id,
    reopens,
)
from services.notify.store import NotificationStore, TicketViews, WebhookStore
from shared import events, outbox
from shared.access import AgentDirectory, Stamp, TicketFacts, may_read, sees_everything
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Invalid, NotFound
from shared.idempotency import ProcessedEvents
from shared.mongo import Stale, database
from shared.redact import redact_tokens, redact_url, redact_urls
from shared.relay import OutboxFlusher, PendingOutboxes, outbox_for
from shared.saving import NO_CHANGE, read_after_first, update
from shared.smtp import Sessions

SERVICE = "notify"
# A claim lasts six send timeouts (the longer of SMTP's and webhooks'), then it is free again: a send has five of
# them (a kept connection's RSET, 2 s at most, or a connect; EHLO, MAIL, RCPT, DATA, and its end, awaited with
# what is left), and the sixth stores its outcome.
LEASE_TIMEOUTS = 6


class Sender(Protocol):
    """What records a notification may hand it to at once: the worker's dispatcher, when a sender is free."""

    def take(self, record: Notification) -> bool:
        """Claim `record`, about to be inserted, for a free sender (its lease in the insert); False: none free."""

    def taken(self, record: Notification, stored: bool) -> None:
        """After the insert of a taken record: send it, or, when it was stored already, let it be."""


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
    on_recorded: Callable[[], None]  # told when notifications were recorded: wakes the dispatcher, or nothing
    agents: AgentDirectory  # agent_id -> teams, from agent.updated: who reads which notifications
    sender: Sender | None = None  # the worker's dispatcher: takes new notifications without a pass (see _record)
    smtp: Sessions = field(default_factory=Sessions)  # the senders' SMTP connections, kept between emails

    def ensure_storage(self) -> None:
        self.notifications.ensure_indexes()
        self.views.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()


def bootstrap(settings: Settings, on_recorded: Callable[[], None] = lambda: None) -> Notify:
    """notify's stores on its own database; `on_recorded` hears of new notifications (the worker's dispatcher)."""
    db = database(settings, SERVICE)
    pending, flusher = outbox_for(settings, SERVICE, db)
    return Notify(
        settings,
        TicketViews(db),
        NotificationStore(db, flusher),
        WebhookStore(db),
        ProcessedEvents(db),
        pending,
        flusher,
        on_recorded,
        AgentDirectory(db),
    )


# --- events -> notifications -------------------------------------------------------------------------


def on_event(svc: Notify, envelope: dict) -> None:
    """Learn what the event tells about the ticket, then record its webhook deliveries and its emails."""
    ticket_id, data, at = envelope["ticket_id"], events.load_data(envelope), events.parse_time(envelope["occurred_at"])
    deliveries, kind = _webhook_deliveries(svc, envelope), envelope["type"]
    if not deliveries and kind not in EMAIL_AUDIENCES and kind not in LEARNED_FROM:
        return  # nothing to learn, to send or to record (a status change, the deadlines): the projection unread
    view = _learn(svc, ticket_id, kind, data, at)
    stamp = svc.views.stamp(view)
    if kind == "ticket.assigned":  # the ticket's notifications are read by its new team and agent
        svc.notifications.stamps.restamp({"ticket_id": ticket_id}, stamp)
    records, earlier = _record(svc, deliveries, stamp)
    # an assignment older than one notify knows (two came out of order, or a retried one came back late): its agent
    # has the ticket no more, and is not told it is theirs (a race hunter's find); its webhooks are still recorded
    stale = kind == "ticket.assigned" and view is not None and view.watermarks.get("assigned") != at
    try:  # the webhooks before the emails: a recipient not known yet must not hold up the webhooks
        emails, earlier_emails = _record(svc, [] if stale else _emails(svc, envelope, data, view), stamp)
        records, earlier = records + emails, earlier or earlier_emails
    finally:
        if records:  # an assignment stored meanwhile may have missed them: StampedRecords
            mine = {"_id": {"$in": [record.id for record in records]}}
            # some stored by an earlier delivery, which may have died before this check: their stamp is unknown
            svc.notifications.stamps.check(mine, None if earlier else stamp, svc.views.stamp_of(ticket_id))


def _learn(svc: Notify, ticket_id: str, event_type: str, data: dict, at: datetime) -> TicketView | None:
    """The ticket's projection after the event; None while notify knows nothing of the ticket.

    A ticket.created is nearly always the first news of its ticket: its first attempt inserts without a read
    (an insert that finds the projection there, a late or repeated event, reads it and learns into that).
    """
    find = read_after_first(svc.views.find, event_type == "ticket.created")

    def load() -> tuple[TicketView, bool]:
        view = find(ticket_id)
        return (TicketView(ticket_id), True) if view is None else (view, False)

    def learn(loaded: tuple[TicketView, bool]):
        return None if loaded[0].apply(event_type, data, at) else NO_CHANGE

    def save(loaded: tuple[TicketView, bool], _) -> None:
        view, fresh = loaded
        if not fresh:
            svc.views.save(view, {})
        elif not svc.views.insert(view, {}):
            raise Stale(ticket_id)  # created meanwhile: learn into that one

    busy = f"The projection of ticket {ticket_id} is changing too fast."
    (view, fresh), result = update(load, learn, save, busy)
    return None if fresh and result is NO_CHANGE else view


def _emails(svc: Notify, envelope: dict, data: dict, view: TicketView | None) -> list[Notification]:
    found = []
    event = {"type": envelope["type"], "occurred_at": events.parse_time(envelope["occurred_at"]), "data": data}
    covered = view is not None and view.agent and view.team_lead_email and envelope["type"] in AWAY_COVER
    # is its agent away? (one read, where a lead would hear of it or the agent would hear of losing the ticket)
    asks = bool(covered) or bool(view is not None and view.agent and reopens(envelope["type"], data))
    away = asks and (svc.agents.find(view.agent["id"]) or {}).get("available") is False
    escalation = svc.settings.notify_escalation_email
    for audience, recipient in email_recipients(envelope["type"], data, view, agent_away=away, escalation=escalation):
        context = {"ticket": view.context(), "event": event, "recipient": messages.greeted(recipient)}
        if audience == "requester":  # a link acts as the requester: only the requester's own emails carry one
            context["link"] = messages.requester_link(svc.settings, view.id, recipient["email"])
            context["closes_in"] = messages.period_words(svc.settings.auto_close_hours)  # a resolved one, unanswered
        else:  # agents, leads and the desk: the console's page of the ticket, behind their sign-in
            context["console_link"] = messages.console_link(svc.settings, view.id)
        message = messages.render(envelope["type"], audience, context, svc.settings.time_zone)
        record = _notification(envelope, "email", recipient["email"], message.subject, message.text, message.html)
        if audience == "requester":  # the receipt answers the mail that opened it; the later emails name it too
            record.replying_to = view.mail_message_id
        found.append(record)
    return found


def _webhook_deliveries(svc: Notify, envelope: dict) -> list[Notification]:
    body, found = None, []
    if envelope["type"] not in webhooks.WEBHOOK_EVENT_TYPES:  # the agents' alone (webhooks.AGENTS_ONLY)
        return found
    for hook in svc.webhooks.all():
        if webhooks.matches(hook["events"], envelope["type"]):
            body = body or _wire_body(envelope)  # only when a webhook wants it
            record = _notification(envelope, "webhook", hook["url"], None, body, None, key=hook["_id"])
            record.webhook_id, record.endpoint = hook["_id"], urlsplit(hook["url"]).netloc
            found.append(record)
    return found


def _wire_body(envelope: dict) -> str:
    """The event as a webhook receives it: a decoded envelope is valid already, anything else is checked."""
    wire = events.serialize(envelope) if isinstance(envelope, events.Decoded) else events.encode(envelope)
    return wire.decode()


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
        correlation_id=envelope.get("correlation_id"),
    )


def _record(svc: Notify, records: list[Notification], stamp: Stamp) -> tuple[list[Notification], bool]:
    """Store each notification once, stamped with its ticket's team and agent; one already stored (a redelivered
    event) is left as it is. The records, and whether any was stored before.

    A notification the worker's dispatcher can send at once is stored claimed (its lease already running) and
    handed to a sender: no pass reads it and no claim writes it again, two store calls of its four. A worker
    that dies before sending it leaves the claim, and the next pass after the lease sends it, as after a death
    mid-send. The others are stored due, and the dispatcher is woken for them.
    """
    waiting = earlier = False
    for record in records:
        taken = svc.sender is not None and svc.sender.take(record)
        stored = False
        try:
            stored = svc.notifications.insert(record, {}, stamp.fields())  # False for one already there
        finally:
            if taken:
                svc.sender.taken(record, stored)
        waiting = waiting or not (taken and stored)
        earlier = earlier or not stored
    if waiting:
        svc.on_recorded()
    return records, earlier


# --- sending (the dispatcher's steps) ----------------------------------------------------------------


def claim(svc: Notify, notification_id: str, record: Notification | None = None) -> Notification | None:
    """Take a due notification for its lease, so that no other sender takes it meanwhile; None if not due.

    A sender that dies mid-send leaves the claim; when the lease ends, the next pass sends it again.
    `record`: as the dispatcher's query just read it (the claim is version-checked: a copy that is out of
    date claims nothing).
    """
    record = record or svc.notifications.get(notification_id)
    if record.next_attempt_at is None or record.next_attempt_at > now():
        return None
    return _leased(svc, record)


def _leased(svc: Notify, record: Notification) -> Notification | None:
    """`record` claimed for a lease from now (a version-checked write); None if another sender wrote it since."""
    record.next_attempt_at = now() + lease(svc.settings)
    try:
        svc.notifications.save(record, {})
    except Stale:
        return None
    return record


def lease(settings: Settings) -> timedelta:
    """How long a claim holds: longer than any send can take (60 s with the default timeouts)."""
    return timedelta(seconds=LEASE_TIMEOUTS * max(settings.smtp_timeout, settings.webhook_timeout))


def send(svc: Notify, record: Notification) -> None:
    """One attempt at a claimed notification; the outcome (and its event) stored with it.

    Nothing goes out once the claim may have ended: another sender may have taken the notification since
    (a pass of this worker or of another one, once the lease ran out). The send must be over one send
    timeout before the claim ends, which leaves the time to store its outcome; a claim that leaves the send
    less than half a lease (it waited for its sender) is renewed first, and one taken by another sender
    meanwhile is left to that sender.
    """
    left = _claim_left(svc.settings, record)
    if left < lease(svc.settings) / 2:
        record = _leased(svc, record)
        if record is None:  # another sender has it
            return
        left = _claim_left(svc.settings, record)
    until = time.monotonic() + left.total_seconds()
    try:
        _deliver(svc, record, until)
        record.succeeded(now())
    except SendError as exc:
        if exc.unreachable:
            record.relay_down(str(exc), now(), svc.settings.retry_delays)
        else:
            record.failed(str(exc), now(), svc.settings.retry_delays)
    except WebhookGone as exc:  # removed since: no retry would find it again
        record.failed(str(exc), now(), ())
    except ValueError as exc:  # no email can carry it (a control character in an address): no retry would mend it
        record.failed(f"cannot be built: {exc}", now(), ())
    except Exception as exc:  # any other fault while sending: tried again like a refusal, never a silent loop
        record.failed(f"{type(exc).__name__}: {exc}", now(), svc.settings.retry_delays)
    staged = outbox.stage(SERVICE, record.ticket_id, record.recorded, record.correlation_id)
    record.recorded = []
    try:
        svc.notifications.save(record, staged)
    except Stale:  # another sender took it after all: its outcome counts
        return


def send_bound(settings: Settings, exits_at: float | None) -> float | None:
    """The time (`time.monotonic()`) no email's send may pass when the worker process ends at `exits_at` (None: it
    runs): the database's timeout and a second before, the time to store the outcome (the process would otherwise
    end during a send whose server has the message, and the notification, its claim run out, would be sent again).
    A webhook's delivery is bounded by its own timeout (TICKETFLOW_WEBHOOK_TIMEOUT, below the stop's bound)."""
    if exits_at is None:
        return None
    return exits_at - settings.mongo_timeout_ms / 1000 - 1


def _claim_left(settings: Settings, record: Notification) -> timedelta:
    """How long a send of the claimed `record` may last: until its claim ends, less one send timeout (the time
    to store the outcome), and never more than a lease's worth (a notification not due for long is no claim)."""
    timeout = timedelta(seconds=max(settings.smtp_timeout, settings.webhook_timeout))
    ends = record.next_attempt_at if record.next_attempt_at is not None else now()
    return min(ends - now(), lease(settings)) - timeout


class WebhookGone(Exception):
    """The delivery's webhook was removed: the delivery fails for good at its next attempt."""


def _deliver(svc: Notify, record: Notification, until: float) -> None:
    """Send it by `until` (a `time.monotonic()` time): an email is bounded by it; a webhook's delivery is bounded
    by its timeout, which `send` leaves room for."""
    if record.channel == "email":
        message = Message(record.subject or "", record.body, record.html or "")
        answers = record.event_type == "ticket.created"  # the receipt: the later emails answer the ticket's thread
        email = mailer.build_email(
            svc.settings.notify_from,
            record.recipient,
            message,
            record.ticket_id,
            record.id,
            record.replying_to,
            answers,
        )
        config = mailer.parse_smtp_url(svc.settings.smtp_url, svc.settings.smtp_timeout)
        mailer.send_email(config, email, svc.smtp, until)
        return
    hook = svc.webhooks.find(record.webhook_id)
    if hook is None:
        raise WebhookGone("the webhook was deleted")
    body = record.body.encode()
    sent_at = int(now().timestamp())
    headers = {
        "X-Ticketflow-Signature": webhooks.signature(hook["secret"], body),
        "X-Ticketflow-Signature-Timed": webhooks.timed_signature(hook["secret"], sent_at, record.id, body),
        "X-Ticketflow-Event": record.event_type,
        "X-Ticketflow-Delivery": record.id,
    }
    settings = svc.settings
    webhook_sender.deliver(hook["url"], body, headers, settings.webhook_timeout, settings.webhook_allowed_networks)


# --- commands of the API -----------------------------------------------------------------------------


def retry(svc: Notify, notification_id: str) -> Notification:
    """Send a dead notification again (its delays start over)."""

    def again(record: Notification) -> None:
        try:
            record.retry(now())
        except NotDead as exc:
            raise Conflict(str(exc)) from None
        if record.channel == "webhook" and svc.webhooks.find(record.webhook_id) is None:
            raise Conflict("Its webhook was removed: there is nothing to send it to.")

    load = lambda: svc.notifications.get(notification_id)  # noqa: E731
    save = lambda record, _: svc.notifications.save(record, {})  # noqa: E731
    return update(load, again, save, "The notification is changing too fast; try again.")[0]


def add_webhook(svc: Notify, raw: object) -> dict:
    """Register a webhook; Invalid (422) when its URL is or resolves to a non-public address not allowed."""
    webhook = webhooks.validate_webhook(raw)
    settings = svc.settings
    if refused := webhook_sender.refusal(webhook["url"], settings.webhook_allowed_networks, settings.webhook_timeout):
        raise Invalid("The webhook is not valid.", {"url": [refused]})
    return svc.webhooks.add({"_id": uuid.uuid4().hex, **webhook, "created_at": now()})


def delete_webhook(svc: Notify, webhook_id: str) -> None:
    svc.webhooks.delete(webhook_id)


def webhook_view(webhook: dict) -> dict:
    """A webhook as the API shows it: never its secret."""
    return {key: webhook[key] for key in ("url", "events", "created_at")} | {"id": webhook["_id"]}


def notification_view(record: Notification, principal: Principal | None = None) -> Notification:
    """A notification as the API shows it: a webhook's URL, and URLs in errors, without credentials or query.

    A requester's email carries a link that acts as the requester (reads, replies, closes). Only an admin,
    who may do all of that anyway, sees its token; anyone else (an agent of the ticket's team: the only
    other reader, since requester-scoped and portal tokens may not read notifications at all) sees the
    body with every token hidden. Otherwise an agent could post as the requester or close the ticket.
    """
    recipient = redact_url(record.recipient) if record.channel == "webhook" else record.recipient
    last_error = redact_urls(record.last_error) if record.last_error else record.last_error
    body = record.body
    if record.channel == "email" and (principal is None or principal.role != "admin"):
        body = redact_tokens(body)
    return dataclasses.replace(record, recipient=recipient, last_error=last_error, body=body)


def _may_read(svc: Notify, principal: Principal | None, ticket_id: str) -> bool:
    """shared.access's rule on notify's projection of the ticket (agents: their teams' tickets and their own)."""
    if principal is None or sees_everything(principal):
        return True
    view = svc.views.find(ticket_id)
    facts = None
    if view is not None:
        email = view.requester.get("email") if view.requester else None
        facts = TicketFacts(ticket_id, email, view.team, view.agent["id"] if view.agent else None)
    agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
    return may_read(principal, facts, agent)


def list_notifications(
    svc: Notify, filters: dict, limit: int, cursor: str | None, principal: Principal | None = None
) -> tuple[list[Notification], str | None]:
    """Newest first; an agent's list holds only the emails of the tickets it may see (webhooks are the admins': a
    webhook's address may carry its secret in its path, as chat services' do)."""
    if principal is not None and not sees_everything(principal):
        filters = {**filters, "channel": "email"}
        agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
        scope = svc.notifications.stamps.agent_scope(agent, svc.views.ids_visible_to)
        items, next_cursor = svc.notifications.page(filters, limit, cursor, **scope)
        return [notification_view(item, principal) for item in items], next_cursor
    items, next_cursor = svc.notifications.page(filters, limit, cursor)
    return [notification_view(item, principal) for item in items], next_cursor


def get_notification(svc: Notify, notification_id: str, principal: Principal | None = None) -> Notification:
    record = svc.notifications.get(notification_id)
    admins_only = record.channel == "webhook" and principal is not None and not sees_everything(principal)
    if admins_only or not _may_read(svc, principal, record.ticket_id):
        raise NotFound(f"No notification {notification_id}.")
    return notification_view(record, principal)


def list_webhooks(svc: Notify) -> list[dict]:
    return [webhook_view(hook) for hook in svc.webhooks.all()]


def on_agent_updated(svc: Notify, envelope: dict) -> None:
    """An agent's teams, for deciding whose notifications it reads (nothing is sent for it)."""
    svc.agents.learn(events.load_data(envelope), events.parse_time(envelope["occurred_at"]))


HANDLERS = {event_type: on_event for event_type in webhooks.TICKET_EVENT_TYPES} | {"agent.updated": on_agent_updated}
