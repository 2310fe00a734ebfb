"""Webhooks (with their last deliveries) and the notifications that ended dead, all notify's."""

from __future__ import annotations

import secrets
from datetime import timedelta

from services.portal.admin import path_id, refusal, words
from services.portal.client import Refused
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
        hook["deliveries"] = found["items"]
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


def dead(svc: Portal, session: dict) -> list[dict]:
    """The notifications every retry of which failed, newest first."""
    return svc.services.get("notify", "/notifications", actor(session), status="dead", limit=DEAD_SHOWN)["items"]


def retry(svc: Portal, session: dict, notification_id: str) -> dict:
    """Send a dead notification again (notify starts its retry delays over); 409 if it is not dead."""
    try:
        return svc.services.post("notify", f"/notifications/{path_id(notification_id)}/retry", actor(session), {})
    except Refused as refused:
        raise refusal(refused) from None
