"""Webhooks (with their last deliveries) and the notifications that ended dead, all notify's."""

from __future__ import annotations

import secrets
from datetime import timedelta

from services.portal.admin import path_id, refusal, words
from services.portal.client import Refused, Unreachable
from services.portal.console import actor
from services.portal.handlers import Portal, UserError
from shared.clock import now

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
    for hook in hooks:
        found = svc.services.get("notify", "/notifications", who, recipient=hook["url"], limit=DELIVERIES_SHOWN)
        hook["deliveries"] = numbered(svc, who, found["items"])
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


NUMBERS_LOOKED_UP = 30  # distinct tickets of a list whose numbers are asked of intake, one GET each
WEBHOOK_GONE = "webhook was deleted"  # in notify's last error of a delivery whose webhook was removed


def dead(svc: Portal, session: dict) -> list[dict]:
    """The notifications every retry of which failed, newest first, each `numbered` and `retriable`."""
    who = actor(session)
    items = svc.services.get("notify", "/notifications", who, status="dead", limit=DEAD_SHOWN)["items"]
    for item in numbered(svc, who, items):
        item["retriable"] = retriable(item)
    return items


def numbered(svc: Portal, who, items: list[dict]) -> list[dict]:
    """The notifications, each with its ticket's `number` as intake says it: one GET a ticket, for the first
    NUMBERS_LOOKED_UP tickets (None past them, or when intake does not answer: the page shows the id)."""
    numbers: dict[str, int | None] = {}
    for item in items:
        ticket_id = item["ticket_id"]
        if ticket_id not in numbers and len(numbers) < NUMBERS_LOOKED_UP:
            try:
                numbers[ticket_id] = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", who).get("number")
            except (Refused, Unreachable):
                numbers[ticket_id] = None
        item["number"] = numbers.get(ticket_id)
    return items


def retriable(item: dict) -> bool:
    """Whether Retry can do anything: not when the delivery's webhook is gone."""
    return WEBHOOK_GONE not in (item.get("last_error") or "")


def retry_all(svc: Portal, session: dict) -> dict[str, int]:
    """Retry every failed notification of the list that can be: {"retried", "gone" (sent meanwhile, or retried
    by someone else), "failed" (notify refused or did not answer)}. Each is its own request: one that fails
    leaves the others retried."""
    outcome = {"retried": 0, "gone": 0, "failed": 0}
    who = actor(session)
    for item in svc.services.get("notify", "/notifications", who, status="dead", limit=DEAD_SHOWN)["items"]:
        if not retriable(item):
            continue
        try:
            svc.services.post("notify", f"/notifications/{path_id(item['id'])}/retry", who, {})
            outcome["retried"] += 1
        except Refused as refused:
            outcome["gone" if refused.status in (404, 409) else "failed"] += 1
        except Unreachable:
            outcome["failed"] += 1
    return outcome


def retry(svc: Portal, session: dict, notification_id: str) -> dict:
    """Send a dead notification again (notify starts its retry delays over); 409 if it is not dead."""
    try:
        return svc.services.post("notify", f"/notifications/{path_id(notification_id)}/retry", actor(session), {})
    except Refused as refused:
        raise refusal(refused) from None
