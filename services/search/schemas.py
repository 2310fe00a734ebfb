"""marshmallow schemas of search's HTTP API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import STATUSES


class SearchQuerySchema(Schema):
    q = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={
            "description": 'what people type: words, "a phrase", a ticket number (1234 or #1234); '
            "empty: every ticket the asker may see, newest first"
        },
    )
    status = fields.String(validate=validate.OneOf(STATUSES))
    team = fields.String(validate=validate.Length(1, 100))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500), metadata={"description": "a next_cursor given out"})


class SimilarQuerySchema(Schema):
    limit = fields.Integer(load_default=5, validate=validate.Range(1, 50))


class SearchHitSchema(Schema):
    ticket_id = fields.String()
    number = fields.Integer()
    subject = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    team = fields.String(allow_none=True)
    requester_name = fields.String(
        allow_none=True,
        metadata={"description": "added after the contract: who asked (a name search finds it); null when unknown"},
    )
    snippet = fields.String(
        metadata={"description": "HTML: a passage of the ticket with the matched words in <mark>, the rest escaped"}
    )
    score = fields.Float(metadata={"description": "relevance (BM25); higher is better; 0 for an empty q"})


class SearchResultSchema(Schema):
    items = fields.List(fields.Nested(SearchHitSchema))
    next_cursor = fields.String(allow_none=True)
    total = fields.Integer(metadata={"description": "how many tickets the asker may see match, in all"})


class SimilarTicketSchema(Schema):
    ticket_id = fields.String()
    number = fields.Integer()
    subject = fields.String()
    resolution = fields.String(allow_none=True, metadata={"description": "what was done"})
    resolved_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    score = fields.Float(
        metadata={"description": "what ordered the answer (the words and the meaning fused, or BM25 with the "
                  "meaning off): higher first; not comparable between answers"}
    )  # fmt: skip


class SimilarListSchema(Schema):
    items = fields.List(fields.Nested(SimilarTicketSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "always null: one short list"})
