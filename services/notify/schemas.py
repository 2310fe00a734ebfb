"""marshmallow schemas of notify's HTTP API: notifications and webhooks.

The body of POST /webhooks is checked by `webhooks.validate_webhook` before any field is read, so the API
and the handler agree on what a valid webhook is (the handler checks it again: that check is the one that
counts); the fields below describe the body for the OpenAPI document and only ever see accepted values.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from services.notify import webhooks
from services.notify.domain import STATUSES
from shared.errors import Invalid
from shared.events import CHANNELS, Timestamp
from shared.schemas import Strict

# --- notifications -------------------------------------------------------------------------------


class NotificationQuerySchema(Schema):
    ticket_id = fields.String(validate=validate.Length(1, 100), metadata={"description": "exact match"})
    recipient = fields.String(
        validate=validate.Length(1, webhooks.MAX_URL_LENGTH),
        metadata={"description": "an email address (as stored, or in lower case), or a webhook's URL (exact)"},
    )
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500), metadata={"description": "a next_cursor given out"})


class NotificationSchema(Schema):
    id = fields.String()
    event_id = fields.String(metadata={"description": "the event that caused it"})
    event_type = fields.String(metadata={"enum": list(webhooks.TICKET_EVENT_TYPES)})
    ticket_id = fields.String()
    channel = fields.String(metadata={"enum": list(CHANNELS)})
    recipient = fields.String(metadata={"description": "an email address, or the webhook's URL"})
    subject = fields.String(allow_none=True, metadata={"description": "the email's subject; null for a webhook"})
    body = fields.String(
        metadata={
            "description": "the plain-text email, or the envelope POSTed to the webhook; in an email, the token "
            "of a requester's link shows to an admin only (to others: (hidden))"
        }
    )
    status = fields.String(metadata={"enum": list(STATUSES)})
    attempts = fields.Integer(metadata={"description": "sends tried so far"})
    last_error = fields.String(allow_none=True, metadata={"description": "why the last attempt failed"})
    created_at = Timestamp()
    sent_at = Timestamp(allow_none=True)
    next_attempt_at = Timestamp(
        allow_none=True, metadata={"description": "when the next attempt is due; null once sent or dead"}
    )


class NotificationListSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    next_cursor = fields.String(allow_none=True)


# --- webhooks ------------------------------------------------------------------------------------


class WebhookCreateSchema(Strict):
    url = fields.String(
        required=True,
        validate=validate.Length(1, webhooks.MAX_URL_LENGTH),
        metadata={"description": "an http:// or https:// URL, without user name, password or #fragment"},
    )
    events = fields.List(
        fields.String(metadata={"pattern": r"^[a-z0-9_.*]{1,100}$"}),
        required=True,
        validate=validate.Length(1, webhooks.MAX_PATTERNS),
        metadata={
            "description": "event types or patterns where * matches anything (ticket.*, sla.breached, *); "
            "each must match a ticket.* or sla.* type. Repeats are dropped."
        },
    )
    secret = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(*webhooks.SECRET_LENGTH),
        metadata={"description": "the HMAC-SHA256 key of X-Ticketflow-Signature; never shown again"},
    )

    @pre_load
    def _domain_rules(self, data, **kwargs):
        """The webhook's own checks (the handler's); every problem, under its field."""
        try:
            return webhooks.validate_webhook(data)
        except Invalid as exc:
            raise ValidationError(exc.errors or {"_schema": [exc.detail]}) from None


class WebhookSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    created_at = Timestamp()


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema))
    next_cursor = fields.String(allow_none=True)
