"""Webhooks (with their last deliveries) and the notifications that ended dead, all notify's."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from services.portal import domain
from services.portal.admin import path_id, refusal, words
from services.portal.client import Refused, Unreachable
from services.portal.console import actor
from services.portal.handlers import Portal, UserError
from shared.clock import now
from shared.redact import redact_url

DELIVERIES_SHOWN = 10  # a webhook's last deliveries on the page
DEAD_SHOWN = 100
SENT_BEFORE = (
    "This form was sent already: the webhook is added, and its secret was shown then. "
    "For a new secret, remove the webhook and add it again."
)


def webhooks(svc: Portal, session: dict) -> list[dict]:
    """Every webhook with its last deliveries, newest first (notify's notifications to its URL)."""
    who = actor(session)
    hooks = svc.services.get("notify", "/webhooks", who)["items"]
    numbers = TicketNumbers()  # looked up once for the page
    for hook in hooks:
        found = svc.services.get("notify", "/notifications", who, recipient=hook["url"], limit=DELIVERIES_SHOWN)
        hook["deliveries"] = numbered(svc, who, found["items"], numbers)
    return hooks


def add_webhook(svc: Portal, session: dict, form: dict) -> tuple[dict, str]:
    """Register a webhook with a new random secret: (the webhook, the secret, to show once).

    The form's `form_key` makes it once: the same form sent again (a reload) adds no second webhook.
    """
    key = f"webhook:{session['_id']}:{form.get('form_key', '')}"
    if svc.store.form_used(key):
        raise UserError(SENT_BEFORE, status=409)
    secret = secrets.token_urlsafe(32)
    body = {"url": form.get("url", "").strip(), "events": words(form.get("events")), "secret": secret}
    if not body["url"]:  # notify would say what a URL must be: first, that there is none
        said = "Enter the URL the events are posted to, like https://hooks.example.com/ticketflow."
        raise UserError("The webhook needs a URL.", {"url": [said]})
    if body["url"] and any(
        domain.same_url(hook["url"], body["url"])
        for hook in svc.services.get("notify", "/webhooks", actor(session))["items"]
    ):
        said = (
            "A webhook for this URL exists already: each event would go to it twice. "
            "To change its events or its secret, remove it and add it again."
        )
        raise UserError("This webhook exists already.", {"url": [said]}, 409)
    try:
        hook = svc.services.post("notify", "/webhooks", actor(session), body)
    except Refused as refused:
        raise refusal(refused) from None
    svc.store.use_form(key, now() + timedelta(days=1))
    return hook, secret


def delete_webhook(svc: Portal, session: dict, webhook_id: str) -> None:
    try:
        svc.services.call("notify", "DELETE", f"/webhooks/{path_id(webhook_id)}", actor(session))
    except Refused as refused:
        raise refusal(refused) from None


NUMBERS_LOOKED_UP = 30  # distinct tickets of a page whose numbers are asked of intake, one GET each
RETRY_ALL_SECONDS = 20.0  # then the rest are left, said as not tried: a page's request must end (gunicorn's 30 s)


def dead(svc: Portal, session: dict) -> tuple[list[dict], bool]:
    """The newest DEAD_SHOWN notifications every retry of which failed, newest first, each `numbered` and
    `retriable`; and whether older ones failed too (not listed: the page says so)."""
    who = actor(session)
    found = svc.services.get("notify", "/notifications", who, status="dead", limit=DEAD_SHOWN)
    items = found["items"]
    try:
        hooks = {redact_url(hook["url"]) for hook in svc.services.get("notify", "/webhooks", who)["items"]}
    except (Refused, Unreachable):
        hooks = None  # not known: Retry is offered, and notify refuses one whose webhook is gone
    for item in numbered(svc, who, items):
        item["retriable"] = item["channel"] != "webhook" or hooks is None or item["recipient"] in hooks
    return items, bool(found.get("next_cursor"))


@dataclass
class TicketNumbers:
    """The tickets' numbers one page asked intake for (its lists share them); `silent` once intake did not answer."""

    known: dict[str, int | None] = field(default_factory=dict)
    silent: bool = False


def numbered(svc: Portal, who, items: list[dict], numbers: TicketNumbers | None = None) -> list[dict]:
    """The notifications, each with its ticket's `number` as intake says it: one GET a ticket, for the first
    NUMBERS_LOOKED_UP tickets of `numbers` (the page's). None past them, for a ticket intake refuses, and for all
    once intake does not answer (the page then shows ids, without waiting on each)."""
    numbers = TicketNumbers() if numbers is None else numbers
    known = numbers.known
    for item in items:
        ticket_id = item["ticket_id"]
        if ticket_id not in known and len(known) < NUMBERS_LOOKED_UP and not numbers.silent:
            try:
                known[ticket_id] = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", who).get("number")
            except Refused:
                known[ticket_id] = None
            except Unreachable:
                numbers.silent = True
        item["number"] = known.get(ticket_id)
    return items


def retry_all(svc: Portal, session: dict, shown: list[str]) -> dict[str, int]:
    """Retry the failed notifications the page showed as retriable (`shown`: their ids; not any that failed
    since), one request each: {"retried", "gone" (sent, retried or removed meanwhile: notify's 404 or 409),
    "refused" (another refusal), "unanswered" (notify did not answer: that one may or may not be retried),
    "not_tried" (after a silence, or past RETRY_ALL_SECONDS)}."""
    outcome = {"retried": 0, "gone": 0, "refused": 0, "unanswered": 0, "not_tried": 0}
    who = actor(session)
    started = time.monotonic()
    for position, notification_id in enumerate(shown):
        if outcome["unanswered"] or time.monotonic() - started > RETRY_ALL_SECONDS:
            outcome["not_tried"] = len(shown) - position
            break
        try:
            svc.services.post("notify", f"/notifications/{path_id(notification_id)}/retry", who, {})
            outcome["retried"] += 1
        except Refused as refused:
            outcome["gone" if refused.status in (404, 409) else "refused"] += 1
        except Unreachable:
            outcome["unanswered"] += 1
    return outcome


def retry(svc: Portal, session: dict, notification_id: str) -> dict:
    """Send a dead notification again (notify starts its retry delays over); 409 if it is not dead."""
    try:
        return svc.services.post("notify", f"/notifications/{path_id(notification_id)}/retry", actor(session), {})
    except Refused as refused:
        raise refusal(refused) from None
