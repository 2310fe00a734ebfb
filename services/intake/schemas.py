"""marshmallow schemas of intake's HTTP API: tickets, their thread and timeline, and help topics."""

from __future__ import annotations

import unicodedata

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from shared.events import PRIORITIES, SOURCES, STATUSES, StrictBoolean, Timestamp
from shared.schemas import FullMatch, OneLine, QueryBoolean, Strict, file_names, not_blank, shown_as_typed

TOPIC_ID = FullMatch(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="Use 1 to 40 lowercase letters, digits, - or _.")


def mailable(value: str) -> None:
    """No control character, line break or white space anywhere, quoted local part included.

    marshmallow's Email lets some through inside quotes ("a\x0bb"@example.com), and no email could
    ever be built to such an address: notify would fail on it for good.
    """
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise ValidationError("Not a valid email address: it holds a control character, line break or space.")


class RequesterSchema(Strict):
    name = OneLine(required=True, validate=[validate.Length(1, 200), not_blank])
    email = fields.Email(required=True, validate=[validate.Length(max=254), mailable])

    @pre_load
    def normalize(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip().lower()}
        return data


class TicketCreateSchema(Strict):
    subject = OneLine(required=True, validate=[validate.Length(1, 200), not_blank])
    description = fields.String(required=True, validate=[validate.Length(1, 20000), not_blank])
    requester = fields.Nested(RequesterSchema, required=True)
    topic = fields.String(required=True, validate=TOPIC_ID)
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    source = fields.String(load_default="web", validate=validate.OneOf(SOURCES))


class AssigneeSchema(Schema):
    agent_id = fields.String()
    name = fields.String()


class SlaSchema(Schema):
    first_response_due_at = Timestamp(allow_none=True)
    next_response_due_at = Timestamp(
        allow_none=True,
        dump_default=None,  # none on tickets stored before it
        metadata={"description": "added after the contract: a requester's message awaiting the agents' answer"},
    )
    resolution_due_at = Timestamp(allow_none=True)
    breached = fields.Boolean()


class AuthorSchema(Schema):
    type = fields.String()
    name = fields.String()


class ThreadEntrySchema(Schema):
    id = fields.String()
    kind = fields.String(metadata={"enum": ["message", "reply"]})
    author = fields.Nested(AuthorSchema)
    body = fields.String()
    created_at = Timestamp()
    # a requester's message that came by mail from the ticket's address (absent otherwise): an addition
    via = fields.String(metadata={"enum": ["email"]})


class EarlierResolutionSchema(Schema):
    resolution = fields.String()
    resolved_at = Timestamp(allow_none=True)


class TicketSchema(Schema):
    id = fields.String()
    number = fields.Integer()
    subject = fields.String()
    description = fields.String()
    requester = fields.Nested(RequesterSchema)
    topic = fields.String()
    priority = fields.String()
    source = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    assignee = fields.Nested(AssigneeSchema, allow_none=True)
    team = fields.String(allow_none=True)
    sla = fields.Nested(SlaSchema)
    thread = fields.List(fields.Nested(ThreadEntrySchema))
    resolution = fields.String(
        allow_none=True, metadata={"description": "what was done, while resolved or once closed after it"}
    )
    resolved_at = Timestamp(allow_none=True, metadata={"description": "when, with the resolution"})
    merged_into = fields.Integer(
        allow_none=True,
        dump_default=None,
        metadata={"description": "resolved as a duplicate: the number of the request it was merged into"},
    )
    earlier_resolutions = fields.List(
        fields.Nested(EarlierResolutionSchema),
        metadata={"description": "what was done before each time the ticket reopened, oldest first (the last 10)"},
    )
    created_at = Timestamp()
    updated_at = Timestamp()


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500))


class TicketListQuerySchema(PageQuerySchema):
    requester_email = fields.Email(metadata={"description": "case-insensitive"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    topic = fields.String(validate=TOPIC_ID)
    number = fields.Integer(
        strict=False, validate=validate.Range(1, 2**53), metadata={"description": "the ticket number people quote"}
    )

    @pre_load
    def normalize(self, data, **kwargs):
        if "requester_email" in data and isinstance(data["requester_email"], str):
            data = {**data, "requester_email": data["requester_email"].strip().lower()}
        return data


class TicketListItemSchema(TicketSchema):
    """A ticket in a list: without its thread (GET /tickets/{id} has it), with the thread's length."""

    class Meta:
        exclude = ("thread", "earlier_resolutions")  # a ticket's page has them

    thread_count = fields.Integer(metadata={"description": "entries in the ticket's thread"})


class TicketListSchema(Schema):
    items = fields.List(fields.Nested(TicketListItemSchema))
    next_cursor = fields.String(allow_none=True)


class MessageCreateSchema(Strict):
    body = fields.String(required=True, validate=[validate.Length(1, 20000), not_blank])
    files = file_names()


class ReopenSchema(Strict):
    reason = fields.String(
        required=True,
        validate=[validate.Length(1, 1000), not_blank],  # ticket.reopened's own bound
        metadata={"description": "Why it reopens, as the timeline and the agent's email say it"},
    )


class TopicSchema(Schema):
    id = fields.String()
    name = fields.String()
    retired = fields.Boolean(metadata={"description": "Taken off the form: no new ticket takes it"})
    retirable = fields.Boolean(metadata={"description": "Whether it may be retired (not `general`)"})


class TopicListSchema(Schema):
    items = fields.List(fields.Nested(TopicSchema))
    next_cursor = fields.String(allow_none=True)


class TopicPutSchema(Strict):
    name = fields.String(
        load_default=None,
        validate=[validate.Length(1, 100), not_blank, shown_as_typed],
        metadata={"description": "needed to create a topic; left out, a topic keeps its name"},
    )
    retired = StrictBoolean(
        load_default=None,
        metadata={"description": "true takes the topic off the form (its tickets keep it), false brings it back"},
    )


class TopicListQuerySchema(Strict):
    include_retired = QueryBoolean(load_default=False, metadata={"description": "`true`: also the retired topics"})


class TimelineItemSchema(Schema):
    event_id = fields.String()
    type = fields.String()
    producer = fields.String()
    occurred_at = Timestamp()
    correlation_id = fields.String(allow_none=True)
    summary = fields.String()


class TimelineSchema(Schema):
    items = fields.List(fields.Nested(TimelineItemSchema))
    next_cursor = fields.String(allow_none=True)


class IdempotencyHeaderSchema(Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=validate.Regexp(r"^[\x21-\x7e]{1,255}$", error="Use 1 to 255 printable ASCII characters."),
    )


MAIL_OUTCOMES = ("ticket", "message", "kept", "ignored", "refused")  # refused: polled from a mailbox, too big


class MailAttachmentSchema(Schema):
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class InboundMailSchema(Schema):
    """What an inbound mail became; its text is what the sender wrote now (quotes and signature left out)."""

    id = fields.String(metadata={"description": "the mail's key: a hash of its Message-ID (or of its bytes)"})
    message_id = fields.String(allow_none=True)
    sender = fields.String(metadata={"description": "From's address; empty when the mail named none"})
    sender_name = fields.String()
    recipients = fields.List(fields.String())
    subject = fields.String()
    text = fields.String()
    attachments = fields.List(fields.Nested(MailAttachmentSchema))
    outcome = fields.String(metadata={"enum": list(MAIL_OUTCOMES)})
    reason = fields.String()
    ticket_id = fields.String(allow_none=True)
    number = fields.Integer(allow_none=True)
    whole = fields.Boolean(
        metadata={"description": "its bytes are kept: GET /tickets/{id}/mail/{mail id}/raw gives them (an addition)"}
    )
    received_at = Timestamp()


class InboundMailListSchema(Schema):
    items = fields.List(fields.Nested(InboundMailSchema))
    next_cursor = fields.String(allow_none=True)


class MailListQuerySchema(PageQuerySchema):
    outcome = fields.String(validate=validate.OneOf(MAIL_OUTCOMES))


class AttachmentSchema(Schema):
    id = fields.String()
    filename = fields.String(metadata={"description": "the sender's name for it, without folders"})
    content_type = fields.String(metadata={"description": "as the sender declared it (the download may differ)"})
    size = fields.Integer(metadata={"description": "bytes"})
    message_id = fields.String(
        allow_none=True, metadata={"description": "the thread message it came with; null: with the ticket's opening"}
    )
    created_at = Timestamp()


class AttachmentListSchema(Schema):
    items = fields.List(fields.Nested(AttachmentSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "always null: one list"})


class AttachmentsAddedSchema(Schema):
    items = fields.List(fields.Nested(AttachmentSchema), metadata={"description": "the files sent, in their order"})


class AttachmentUploadSchema(Schema):
    """The multipart/form-data body of an upload (for the document: the view reads the parts itself)."""

    file = fields.List(
        Upload(), required=True, metadata={"description": "one or more files (a `file` part each), 10 MiB at most"}
    )
    message_id = fields.String(
        validate=validate.Length(1, 64), metadata={"description": "a message of the ticket's thread they come with"}
    )
